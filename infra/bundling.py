"""Lambda code assets built on this machine, never in a container: ``model_export.package.build`` as CDK local bundling.

There is no Docker engine here (nor in many small teams' CI), so :class:`LocalPackageBundling` always succeeds
locally and the ``image`` CDK insists on is never pulled. The asset hash is computed from the inputs (the
``lambdas`` sources, the requirements, the packaging code, the architecture), not from the 100 MB output, so
an unchanged function is neither rebuilt nor re-uploaded; the pip install itself is cached per architecture
and requirement set under ``build/.deps-cache``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

from model_export import package

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = ROOT / "build" / ".deps-cache"
# The API function only validates, stores and enqueues: it never loads the model.
MODEL_ONLY_DEPENDENCIES = ("numpy", "onnxruntime")


def _sources() -> list[Path]:
    """What goes into a package besides the wheels: the code packages, the requirements, the packaging code."""
    code = [
        p
        for name in package.CODE_PACKAGES
        for p in sorted((ROOT / name).rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    ]
    return [*code, Path(package.__file__).resolve()]


def inputs_hash(arch: str, exclude: Iterable[str] = (), files: Iterable[Path] | None = None) -> str:
    """A hash of everything the package is built from (sources, requirements, Python version, arch, exclusions)."""
    h = hashlib.sha256()
    h.update(f"{package.PYTHON_VERSION}|{arch}|{','.join(sorted(exclude))}".encode())
    for path in files if files is not None else _sources():
        rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else Path(path.name)
        h.update(str(rel).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _deps_key(arch: str, exclude: Iterable[str]) -> str:
    # The pip install depends only on the requirements, the packaging code and the platform, not on our code.
    files = [ROOT / "lambdas" / "requirements.txt", Path(package.__file__).resolve()]
    return inputs_hash(arch, exclude, files)[:16]


@jsii.implements(cdk.ILocalBundling)
class LocalPackageBundling:
    """Builds a function's package with ``model_export.package.build`` into CDK's bundling output directory."""

    def __init__(self, arch: str = "x86_64", exclude: Iterable[str] = (), cache_dir: Path | None = DEFAULT_CACHE):
        self.arch = arch
        self.exclude = tuple(exclude)
        self.deps_cache = None
        if cache_dir is not None:
            name = "-".join(["lambda", arch, *self.exclude]) + "-" + _deps_key(arch, self.exclude)
            self.deps_cache = Path(cache_dir) / name
        self.sizes: dict | None = None

    def try_bundle(self, output_dir: str, *, image: Any = None, **kwargs: Any) -> bool:
        """Build into ``output_dir``; True tells CDK that no container is needed."""
        self.sizes = package.build(Path(output_dir), None, self.arch, self.deps_cache, exclude=self.exclude)
        return True


def lambda_code(arch: str, exclude: Iterable[str] = (), cache_dir: Path | None = DEFAULT_CACHE) -> lambda_.Code:
    """A function's code asset: the ``lambdas`` package plus its wheels for the Lambda platform, built locally."""
    exclude = tuple(exclude)
    return lambda_.Code.from_asset(
        str(ROOT / "lambdas"),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        asset_hash=inputs_hash(arch, exclude),
        bundling=cdk.BundlingOptions(
            # Required by the API but never used: local bundling always succeeds, so nothing is pulled or run.
            image=cdk.DockerImage.from_registry("unused"),
            local=LocalPackageBundling(arch, exclude, cache_dir),
        ),
    )
