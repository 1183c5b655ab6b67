"""The served artifact in S3: published under ``<model_prefix><model_version>/``, loaded once per container.

The version comes from the settings: ``MODEL_VERSION``, or the SSM parameter named by ``MODEL_VERSION_PARAMETER``
(re-read every ``model_version_cache_s``, so publishing a model needs no code deploy); while an experiment runs the
parameter names two versions (:mod:`contract.serving`). The worker keeps an
:class:`~lambdas.engine.Engine` in memory per version served (one, or two during an experiment) and the files under
``model_cache_dir`` (``/tmp`` survives between
invocations of a warm container, so a re-created engine skips the download). The engine is imported lazily: the API
handler imports this package without numpy or onnxruntime.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

import contract
from contract.serving import Serving, parse
from lambdas.service.aws import Services
from lambdas.service.logs import logger

if TYPE_CHECKING:
    from lambdas.engine import Engine

_engines: dict[tuple[str, str, str], Engine] = {}
_versions: dict[str, tuple[float, Serving]] = {}  # parameter name -> (monotonic time read, its value parsed)
_lock = threading.Lock()


class ModelConfigError(RuntimeError):
    """The worker has no model version or bucket configured, or the artifact in S3 is not that version."""


def publish(services: Services, artifact_dir: str | Path) -> str:
    """Upload an artifact directory under ``<model_prefix><model_version>/``; returns the version."""
    artifact_dir = Path(artifact_dir)
    version = contract.read_manifest(artifact_dir)["model_version"]
    prefix = f"{services.settings.model_prefix}{version}/"
    for path in sorted(p for p in artifact_dir.iterdir() if p.is_file()):
        services.s3.upload_file(str(path), services.settings.bucket_name, prefix + path.name)
    return version


def model_version(services: Services) -> str:
    """The version served to everyone not in an experiment's candidate share."""
    return serving(services).served


def serving(services: Services) -> Serving:
    """What is served: the SSM parameter's value if one is configured (cached), else ``model_version``."""
    s = services.settings
    name = s.model_version_parameter
    if not name:
        return Serving(s.model_version)
    cached = _versions.get(name)
    if cached is not None and time.monotonic() - cached[0] < s.model_version_cache_s:
        return cached[1]
    try:
        value = parse(services.ssm.get_parameter(Name=name)["Parameter"]["Value"])
    except (BotoCoreError, ClientError, ValueError):
        if cached is None:
            raise
        # a throttled or unreachable SSM (or a value that does not parse) must not stop a worker that knows one
        logger.warning("model version parameter unreadable; keeping the last value", exc_info=True)
        return cached[1]
    _versions[name] = (time.monotonic(), value)
    return value


def get_engine(services: Services, version: str | None = None) -> Engine:
    """The engine for ``version`` (default: the served one), which must be one the parameter serves now: from
    memory, else ``model_cache_dir``, else S3. Engines of versions no longer served are dropped."""
    s = services.settings
    with _lock:
        now = serving(services)
        version = version or now.served
        if not version or not s.bucket_name:
            raise ModelConfigError("no model version (MODEL_VERSION or MODEL_VERSION_PARAMETER) or no BUCKET_NAME")
        if version not in now.versions:
            raise ModelConfigError(f"version {version} is not served now (serving {', '.join(now.versions)})")
        key = (s.bucket_name, s.model_prefix, version)
        engine = _engines.get(key)
        if engine is None:
            engine = _load(services, version, keep=now.versions)
            for stale in [k for k in _engines if k[2] not in now.versions]:
                del _engines[stale]  # at most the versions served now stay in memory
            _engines[key] = engine
        return engine


def clear_cache() -> None:
    """Forget loaded engines and parameter values (tests, or a container switching model version)."""
    with _lock:
        _engines.clear()
        _versions.clear()


def _load(services: Services, version: str, keep: tuple[str, ...] = ()) -> Engine:
    from lambdas.engine import ArtifactError, Engine

    t0 = time.perf_counter()
    local = Path(services.settings.model_cache_dir) / version
    downloaded = False
    if not contract.is_artifact(local):
        _download(services, version, local, keep)
        downloaded = True
    try:
        engine = Engine(local)
    except ArtifactError:
        if downloaded:
            raise
        logger.warning("cached artifact failed verification; downloading again", extra={"path": str(local)})
        _download(services, version, local, keep)
        engine = Engine(local)
    if engine.model_version != version:
        raise ModelConfigError(f"artifact under {version} reports model_version {engine.model_version}")
    logger.info(
        "model loaded",
        extra={
            "model_version": engine.model_version,
            "downloaded": downloaded,
            "seconds": round(time.perf_counter() - t0, 3),
            "engine_seconds": round(engine.load_seconds, 3),
        },
    )
    return engine


def _download(services: Services, version: str, local: Path, keep: tuple[str, ...] = ()) -> None:
    """Download every object of the version into a staging folder, then rename (never a half-written cache).

    Other versions cached under the same folder are deleted, but those in ``keep`` (the other version of an
    experiment): /tmp is small, and a container serves one model, or two during an experiment.
    """
    s = services.settings
    prefix = f"{s.model_prefix}{version}/"
    staging = local.parent / f".staging-{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    try:
        pages = services.s3.get_paginator("list_objects_v2").paginate(Bucket=s.bucket_name, Prefix=prefix)
        keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
        if not keys:
            raise ModelConfigError(f"no artifact at s3://{s.bucket_name}/{prefix}")
        for key in keys:
            services.s3.download_file(s.bucket_name, key, str(staging / key[len(prefix) :]))
        for old in local.parent.iterdir():
            if old.is_dir() and old != staging and old.name not in keep:
                shutil.rmtree(old, ignore_errors=True)
        staging.rename(local)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
