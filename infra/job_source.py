"""The SageMaker training job's source tarball (``sagemaker_submit_directory``), built at synth from this checkout:
the packages the job imports (``contract``, ``training``, ``model_export`` and the engine of ``lambdas``) and, as its
``requirements.txt``, ``requirements-job.txt`` (the image's toolkit installs it before running
``model_export/sagemaker_job.py``). Byte-for-byte the same for the same sources (sorted entries, fixed times and
owners), so an unchanged job is not uploaded again."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("contract", "training", "model_export", "lambdas/engine")
EXTRA = ("lambdas/__init__.py",)
REQUIREMENTS = ROOT / "requirements-job.txt"
PROGRAM = "model_export/sagemaker_job.py"  # sagemaker_program: the job's entry point, relative to the tarball


def files() -> list[tuple[str, Path]]:
    """(name in the tarball, file here), sorted."""
    found = [
        (p.relative_to(ROOT).as_posix(), p)
        for pkg in PACKAGES
        for p in (ROOT / pkg).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    ]
    found += [(name, ROOT / name) for name in EXTRA]
    found.append(("requirements.txt", REQUIREMENTS))
    return sorted(found)


def build(out: Path) -> Path:
    """Write the tarball to ``out`` (a temporary file of this process's own, renamed: never half written, and two
    synths at once, e.g. test workers, each rename a whole file); returns ``out``."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path in files():
            data = path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    tmp = Path(name)
    try:
        with os.fdopen(handle, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as gz:
            gz.write(raw.getvalue())
        os.chmod(tmp, 0o644)
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out
