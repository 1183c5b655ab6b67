"""Load a verified artifact directory written by ``model_export.export`` (the format: :mod:`.contract`).

Every file listed in the manifest must exist with its recorded size and sha256 and the manifest's
``model_version`` must be the hash of those files (:func:`~contract.verify`); the arrays must match
the manifest's catalogue. A truncated, tampered or mismatched artifact is refused with :class:`ArtifactError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from contract import CATALOGUE_ARRAYS, MANIFEST, WEIGHTS, ArtifactError, verify

__all__ = ["MANIFEST", "Artifact", "ArtifactError", "load_artifact", "verify"]


@dataclass
class Artifact:
    """A verified artifact: its manifest, directory and arrays (read with ``allow_pickle=False``)."""

    directory: Path
    manifest: dict
    weights: dict[str, np.ndarray]
    catalogue: dict[str, np.ndarray]

    @property
    def model_version(self) -> str:
        return self.manifest["model_version"]


def load_artifact(directory: str | Path) -> Artifact:
    """Verify then load the arrays of an artifact directory."""
    directory = Path(directory)
    manifest = verify(directory)
    try:
        with np.load(directory / WEIGHTS, allow_pickle=False) as z:
            weights = {k: z[k] for k in z.files}
        with np.load(directory / CATALOGUE_ARRAYS, allow_pickle=False) as z:
            cat = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{directory}: cannot read arrays ({exc})") from exc
    n_items = manifest["model"]["n_items"]
    if weights["item_mf"].shape[0] != n_items or cat["item_ids"].shape[0] != n_items:
        raise ArtifactError(f"{directory}: arrays do not match the manifest's {n_items} movies")
    return Artifact(directory, manifest, weights, cat)
