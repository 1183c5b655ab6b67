"""Build the worker's deployment package without Docker: pip for the Lambda platform, then trim.

``python -m model_export.package --out build/worker [--artifact DIR] [--arch x86_64|arm64]``

Installs ``lambdas/requirements.txt`` as binary wheels for CPython 3.12 on manylinux (the Lambda
``python3.12`` runtime), copies the ``lambdas`` and ``contract`` packages, removes what serving never loads (tests,
typing stubs, numpy's f2py and build helpers, onnxruntime's Python tools, caches) and reports the
unzipped size, checked against Lambda's 250 MB limit.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAMBDA_LIMIT_MB = 250.0
PYTHON_VERSION = "3.12"
PLATFORMS = {
    "x86_64": ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"],
    "arm64": ["manylinux_2_28_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64"],
}
# Paths (relative to the package root, glob patterns) that the engine and handlers never import.
TRIM = [
    "**/__pycache__",
    "**/tests",
    "**/*.pyi",
    "numpy/f2py",
    "numpy/_pyinstaller",
    "numpy/typing",
    "numpy/doc",
    "numpy/distutils",
    "numpy/_core/include",
    "numpy/_core/lib/pkgconfig",
    "onnxruntime/tools",
    "onnxruntime/transformers",
    "onnxruntime/quantization",
    "onnxruntime/datasets",
    "onnxruntime/backend",
    "onnxruntime/capi/onnxruntime_providers_shared*",
    "bin",
]


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def requirement_name(line: str) -> str | None:
    """The normalised distribution name of a requirements line (None for comments and blank lines)."""
    line = line.split("#", 1)[0].strip()
    if not line or line.startswith("-"):
        return None
    return re.split(r"[\s<>=!~;\[@]", line, maxsplit=1)[0].lower().replace("_", "-")


def filtered_requirements(requirements: Path, exclude: Iterable[str], dest: Path) -> Path:
    """Write ``requirements`` without the distributions named in ``exclude`` to ``dest``; returns ``dest``."""
    drop = {e.lower().replace("_", "-") for e in exclude}
    lines = [ln for ln in requirements.read_text().splitlines() if requirement_name(ln) not in drop]
    dest.write_text("\n".join(lines) + "\n")
    return dest


def install(dest: Path, requirements: Path, arch: str = "x86_64") -> None:
    """pip-install ``requirements`` into ``dest`` as wheels for the Lambda platform (no compilation)."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--no-deps",
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        "--target",
        str(dest),
        "-r",
        str(requirements),
    ]
    for platform in PLATFORMS[arch]:
        cmd += ["--platform", platform]
    subprocess.run(cmd, check=True)


def trim(dest: Path) -> int:
    """Delete what serving never loads; returns the bytes removed."""
    before = dir_size(dest)
    for pattern in TRIM:
        for path in sorted(dest.glob(pattern), reverse=True):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists():
                path.unlink()
    return before - dir_size(dest)


# The code a function runs: the serving package and the contract it reads artifacts by.
CODE_PACKAGES = ("lambdas", "contract")


def copy_code(dest: Path) -> None:
    for name in CODE_PACKAGES:
        shutil.copytree(
            ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "requirements*.txt")
        )


def _fill_cache(dest: Path, deps_cache: Path, removed: int) -> None:
    """Copy the installed dependencies to ``deps_cache`` whole or not at all: staged in a folder of this process's
    own and renamed, so that two builds at once (test workers synthesizing the stack) never mix their copies; the
    second rename fails on the first's complete cache, which is as good, and its staging is dropped."""
    deps_cache.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{deps_cache.name}.", dir=deps_cache.parent))
    shutil.copytree(dest, staging, dirs_exist_ok=True)
    (staging / ".complete").write_text(str(removed))
    if deps_cache.exists() and not (deps_cache / ".complete").exists():
        shutil.rmtree(deps_cache, ignore_errors=True)  # a leftover of a build that died half-way
    try:
        staging.rename(deps_cache)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)


def build(
    dest: Path,
    artifact: Path | None = None,
    arch: str = "x86_64",
    deps_cache: Path | None = None,
    *,
    exclude: Iterable[str] = (),
) -> dict:
    """Assemble the worker package in ``dest``; returns sizes in MB.

    ``exclude`` leaves distributions of ``lambdas/requirements.txt`` out (the API function needs no numpy or
    onnxruntime). ``deps_cache`` must be specific to ``arch`` and ``exclude``: it is reused as it is.
    """
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    if deps_cache is not None and (deps_cache / ".complete").exists():
        shutil.copytree(deps_cache, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".complete"))
        removed = int((deps_cache / ".complete").read_text() or 0)  # what trimming saved when the cache was built
    else:
        requirements = ROOT / "lambdas" / "requirements.txt"
        with tempfile.TemporaryDirectory() as tmp:
            if exclude:
                requirements = filtered_requirements(requirements, exclude, Path(tmp) / "requirements.txt")
            install(dest, requirements, arch)
        removed = trim(dest)
        if deps_cache is not None:
            _fill_cache(dest, deps_cache, removed)
    deps = dir_size(dest)
    copy_code(dest)
    code = dir_size(dest) - deps
    art = 0
    if artifact is not None:
        shutil.copytree(artifact, dest / "model")
        art = dir_size(dest / "model")
    mb = 1024 * 1024
    sizes = {
        "dependencies_mb": round(deps / mb, 1),
        "trimmed_mb": round(removed / mb, 1),
        "code_mb": round(code / mb, 2),
        "artifact_mb": round(art / mb, 1),
        "total_mb": round((deps + code + art) / mb, 1),
        "limit_mb": LAMBDA_LIMIT_MB,
    }
    if sizes["total_mb"] >= LAMBDA_LIMIT_MB:
        raise RuntimeError(f"worker package is {sizes['total_mb']} MB unzipped, over Lambda's {LAMBDA_LIMIT_MB} MB")
    return sizes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m model_export.package", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("build/worker"))
    p.add_argument("--artifact", type=Path, help="also copy this artifact into the package (as model/)")
    p.add_argument("--arch", choices=sorted(PLATFORMS), default="x86_64")
    a = p.parse_args(argv)
    sizes = build(a.out, a.artifact, a.arch)
    print(" ".join(f"{k}={v}" for k, v in sizes.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
