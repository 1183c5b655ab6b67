"""Load and verify an artifact directory written by ``model_export.export``.

Every file listed in the manifest must exist with its recorded size and sha256, the manifest's
``model_version`` must be the hash of those files, and the ONNX graphs must declare the inputs the
manifest names. A truncated, tampered or mismatched artifact is refused with :class:`ArtifactError`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MANIFEST = "manifest.json"
SUPPORTED_FORMAT = 1
REQUIRED_FILES = ("catalogue.onnx", "pairwise.onnx", "weights.npz", "catalogue.npz")


class ArtifactError(RuntimeError):
    """The artifact is missing, incomplete, corrupted or of an unsupported format."""


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


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(directory: str | Path) -> dict:
    """Check the manifest and every file's size and checksum; returns the manifest."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.exists():
        raise ArtifactError(f"{directory}: not a model artifact ({MANIFEST} missing)")
    try:
        manifest = json.loads(path.read_text())
        files = manifest["files"]
        version = manifest["model_version"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{path}: unreadable manifest ({exc})") from exc
    if manifest.get("format") != SUPPORTED_FORMAT:
        raise ArtifactError(f"{path}: artifact format {manifest.get('format')!r}, this engine reads {SUPPORTED_FORMAT}")
    missing = [f for f in REQUIRED_FILES if f not in files]
    if missing:
        raise ArtifactError(f"{path}: manifest lists no {', '.join(missing)}")
    for name, meta in files.items():
        f = directory / name
        if not f.exists():
            raise ArtifactError(f"{f}: missing")
        size = f.stat().st_size
        if size != meta["bytes"]:
            raise ArtifactError(f"{f}: {size} bytes, manifest says {meta['bytes']} (truncated or replaced)")
        digest = _sha256(f)
        if digest != meta["sha256"]:
            raise ArtifactError(f"{f}: sha256 {digest[:12]}..., manifest says {meta['sha256'][:12]}... (modified)")
    text = "\n".join(f"{name}:{files[name]['sha256']}" for name in sorted(files))
    if hashlib.sha256(text.encode()).hexdigest()[:16] != version:
        raise ArtifactError(f"{path}: model_version {version} does not match the files (manifest edited?)")
    return manifest


def load_artifact(directory: str | Path) -> Artifact:
    """Verify then load the arrays of an artifact directory."""
    directory = Path(directory)
    manifest = verify(directory)
    try:
        with np.load(directory / "weights.npz", allow_pickle=False) as z:
            weights = {k: z[k] for k in z.files}
        with np.load(directory / "catalogue.npz", allow_pickle=False) as z:
            cat = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{directory}: cannot read arrays ({exc})") from exc
    n_items = manifest["model"]["n_items"]
    if weights["item_mf"].shape[0] != n_items or cat["item_ids"].shape[0] != n_items:
        raise ArtifactError(f"{directory}: arrays do not match the manifest's {n_items} movies")
    return Artifact(directory, manifest, weights, cat)
