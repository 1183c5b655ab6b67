"""The served artifact in S3: published under ``<model_prefix><model_version>/``, loaded once per container.

The version comes from the settings: ``MODEL_VERSION``, or the SSM parameter named by ``MODEL_VERSION_PARAMETER``
(re-read every ``model_version_cache_s``, so publishing a model needs no code deploy). The worker keeps one
:class:`~lambdas.engine.Engine` in memory and the files under ``model_cache_dir`` (``/tmp`` survives between
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
from lambdas.service.aws import Services
from lambdas.service.logs import logger

if TYPE_CHECKING:
    from lambdas.engine import Engine

_engines: dict[tuple[str, str, str], Engine] = {}
_versions: dict[str, tuple[float, str]] = {}  # parameter name -> (monotonic time read, value)
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
    """The version to serve: the SSM parameter's value if one is configured (cached), else ``model_version``."""
    s = services.settings
    name = s.model_version_parameter
    if not name:
        return s.model_version
    cached = _versions.get(name)
    if cached is not None and time.monotonic() - cached[0] < s.model_version_cache_s:
        return cached[1]
    try:
        value = services.ssm.get_parameter(Name=name)["Parameter"]["Value"].strip()
    except (BotoCoreError, ClientError):
        if cached is None:
            raise
        # a throttled or unreachable SSM must not stop a worker that already knows a version
        logger.warning("model version parameter unreadable; keeping the last value", exc_info=True)
        return cached[1]
    _versions[name] = (time.monotonic(), value)
    return value


def get_engine(services: Services) -> Engine:
    """The engine for the configured model version: from memory, else ``model_cache_dir``, else S3."""
    s = services.settings
    with _lock:
        version = model_version(services)
        if not version or not s.bucket_name:
            raise ModelConfigError("no model version (MODEL_VERSION or MODEL_VERSION_PARAMETER) or no BUCKET_NAME")
        key = (s.bucket_name, s.model_prefix, version)
        engine = _engines.get(key)
        if engine is None:
            engine = _load(services, version)
            _engines.clear()  # one model per container
            _engines[key] = engine
        return engine


def clear_cache() -> None:
    """Forget loaded engines and parameter values (tests, or a container switching model version)."""
    with _lock:
        _engines.clear()
        _versions.clear()


def _load(services: Services, version: str) -> Engine:
    from lambdas.engine import ArtifactError, Engine

    t0 = time.perf_counter()
    local = Path(services.settings.model_cache_dir) / version
    downloaded = False
    if not contract.is_artifact(local):
        _download(services, version, local)
        downloaded = True
    try:
        engine = Engine(local)
    except ArtifactError:
        if downloaded:
            raise
        logger.warning("cached artifact failed verification; downloading again", extra={"path": str(local)})
        _download(services, version, local)
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


def _download(services: Services, version: str, local: Path) -> None:
    """Download every object of the version into a staging folder, then rename (never a half-written cache).

    Other versions cached under the same folder are deleted: /tmp is small, and a container serves one model.
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
            if old.is_dir() and old != staging:
                shutil.rmtree(old, ignore_errors=True)
        staging.rename(local)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
