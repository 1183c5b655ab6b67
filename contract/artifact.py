"""The artifact format: the one place that says what ``model_export`` writes and ``lambdas.engine`` reads.

An artifact is a directory:

* ``manifest.json`` (:data:`MANIFEST`): ``format`` (:data:`FORMAT`), ``model_version`` (:func:`content_version` of
  the files), ``files`` (name -> ``{"sha256", "bytes"}``, :func:`file_entry`), ``scoring`` (``candidates``,
  ``rating_scale``, ``scalars``: the names of ``weights.npz``'s ``scalars`` array in order), ``onnx``, ``training``
  and reports;
* the files of :data:`REQUIRED_FILES`, plus the API's movie index.

The catalogue graph's inputs and outputs are :data:`CATALOGUE_INPUTS` and :data:`CATALOGUE_OUTPUTS`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

FORMAT = 1
MANIFEST = "manifest.json"
CATALOGUE_ONNX = "catalogue.onnx"
PAIRWISE_ONNX = "pairwise.onnx"
WEIGHTS = "weights.npz"
CATALOGUE_ARRAYS = "catalogue.npz"
REQUIRED_FILES = (CATALOGUE_ONNX, PAIRWISE_ONNX, WEIGHTS, CATALOGUE_ARRAYS)

# Stage 1 keeps this many movies per user for the full model's rating (training.scoring, the catalogue graph).
CANDIDATES = 300
CATALOGUE_INPUTS = ("user_rank", "user_mf", "user_bias", "user_deep", "exclude", "candidates", "k")
CATALOGUE_OUTPUTS = ("scores", "top_scores", "top_items", "top_ratings", "logits")
# Artifacts exported before 2026-12-07 lack the last, "logits"; the engine reads them too (lambdas.engine.ranking).
# weights.npz "scalars", in this order (the manifest's scoring.scalars names them; artifacts older than that field
# were written in this order too).
SCALARS = ("gamma", "mu", "mf_weight", "deep_weight")
VERSION_LENGTH = 16
DEFAULT_RATING_SCALE = (0.5, 5.0)


class ArtifactError(RuntimeError):
    """The artifact is missing, incomplete, corrupted or of an unsupported format."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_entry(path: Path) -> dict:
    """A manifest ``files`` entry."""
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}


def content_version(files: dict[str, dict]) -> str:
    """``model_version``: a hash over every file's name and sha256 (so any change gives a new version)."""
    text = "\n".join(f"{name}:{files[name]['sha256']}" for name in sorted(files))
    return hashlib.sha256(text.encode()).hexdigest()[:VERSION_LENGTH]


def read_manifest(directory: str | Path) -> dict:
    """The manifest of an artifact directory, unverified (:func:`verify` checks the files too)."""
    path = Path(directory) / MANIFEST
    if not path.exists():
        raise ArtifactError(f"{directory}: not a model artifact ({MANIFEST} missing)")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: unreadable manifest ({exc})") from exc
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{path}: unreadable manifest (not a JSON object)")
    return manifest


def is_artifact(directory: str | Path) -> bool:
    return (Path(directory) / MANIFEST).exists()


def verify(directory: str | Path) -> dict:
    """Check the manifest and every file's size and checksum; returns the manifest."""
    directory = Path(directory)
    path = directory / MANIFEST
    manifest = read_manifest(directory)
    try:
        files = manifest["files"]
        version = manifest["model_version"]
    except KeyError as exc:
        raise ArtifactError(f"{path}: unreadable manifest (no {exc})") from exc
    if manifest.get("format") != FORMAT:
        raise ArtifactError(f"{path}: artifact format {manifest.get('format')!r}, this engine reads {FORMAT}")
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
        digest = sha256_file(f)
        if digest != meta["sha256"]:
            raise ArtifactError(f"{f}: sha256 {digest[:12]}..., manifest says {meta['sha256'][:12]}... (modified)")
    if content_version(files) != version:
        raise ArtifactError(f"{path}: model_version {version} does not match the files (manifest edited?)")
    return manifest


def scoring(candidates: int, rating_scale: Sequence[float], **extra: object) -> dict:
    """The manifest's ``scoring`` section."""
    return {"candidates": int(candidates), "rating_scale": list(rating_scale), "scalars": list(SCALARS), **extra}


def training(cutoff: int | None, events_through: int | None) -> dict:
    """The manifest's ``training`` fields about time: ``cutoff`` (the newest training rating, epoch seconds) and
    ``events_through`` (the newest stored event the model was trained on, ``received_at`` in epoch ms); each only
    when known."""
    out = {}
    if cutoff is not None:
        out["cutoff"] = int(cutoff)
    if events_through is not None:
        out["events_through"] = int(events_through)
    return out


def events_through(manifest: dict) -> int | None:
    """``received_at`` (epoch ms) of the newest stored event the model was trained on; None: trained on none."""
    value = manifest.get("training", {}).get("events_through")
    return None if value is None else int(value)


def rating_scale(manifest: dict) -> tuple[float, float]:
    """The served model's rating scale (MovieLens's 0.5-5 for a manifest that names none)."""
    lo, hi = manifest.get("scoring", {}).get("rating_scale") or DEFAULT_RATING_SCALE
    return float(lo), float(hi)


def candidates(manifest: dict) -> int:
    """Stage 1's candidate count the artifact was exported (and its parity checked) with."""
    return int(manifest.get("scoring", {}).get("candidates", CANDIDATES))


def scalars(manifest: dict, values: Sequence[float]) -> dict[str, float]:
    """``weights.npz``'s ``scalars`` array by name."""
    names = manifest.get("scoring", {}).get("scalars", list(SCALARS))
    if sorted(names) != sorted(SCALARS) or len(values) != len(names):
        raise ArtifactError(f"scalars {names} ({len(values)} values); this engine reads {list(SCALARS)}")
    return {name: float(v) for name, v in zip(names, values, strict=True)}
