"""The base data: the ratings (and movies) an operator uploads once, versioned in the data bucket, and rewritten
without the users ``DELETE /users/{id}`` forgot.

A version is the first 16 hex digits of the files' sha256, its files are written before the pointer
(``base.json``) names it, and a version the pointer no longer names is deleted: the bucket holds one copy of anyone's
ratings (and S3's noncurrent copies, which the stack's lifecycle rule expires).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from contract import canonical_id
from lambdas.loop.layout import MOVIES, RATINGS, Layout

USER_COLUMNS = ("userid", "user_id", "user")
REQUIRED = {"rating"}


class BaseDataError(RuntimeError):
    """Bad base data (naming the file and line), or none uploaded yet."""


def check_ratings(path: Path) -> int:
    """Check a ratings CSV as the training job will need it (a header naming the user, movie and rating columns, a
    number for each rating); returns its row count. Errors name the file and line."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = [h.strip().lower() for h in next(reader, [])]
        if not any(c in header for c in USER_COLUMNS) or ("movieid" not in header and "movie_id" not in header):
            raise BaseDataError(f"{path}:1: the header names no user and movie columns (userId,movieId,rating,...)")
        if not set(header) >= REQUIRED:
            raise BaseDataError(f"{path}:1: the header names no rating column")
        at = header.index("rating")
        rows = 0
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise BaseDataError(f"{path}:{line}: {len(row)} fields, the header has {len(header)}")
            try:
                float(row[at])
            except ValueError:
                raise BaseDataError(f"{path}:{line}: rating {row[at]!r} is not a number") from None
            rows += 1
    if not rows:
        raise BaseDataError(f"{path}: no ratings")
    return rows


def read_pointer(s3: Any, bucket: str, layout: Layout) -> dict | None:
    """The current base data's pointer, or None when none was uploaded."""
    from botocore.exceptions import ClientError

    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=layout.pointer)["Body"].read())
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
            return None
        raise


def _version(files: list[Path]) -> str:
    h = hashlib.sha256()
    for path in files:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def _write_version(s3: Any, bucket: str, layout: Layout, ratings: Path, movies: Path | None, **extra: Any) -> dict:
    """Upload one version's files, then point ``base.json`` at it; returns the new pointer."""
    files = [ratings] + ([movies] if movies else [])
    version = _version(files)
    prefix = layout.base(version)
    s3.upload_file(str(ratings), bucket, prefix + RATINGS)
    if movies:
        s3.upload_file(str(movies), bucket, prefix + MOVIES)
    pointer = {
        "version": version,
        "prefix": prefix,
        "files": [RATINGS] + ([MOVIES] if movies else []),
        "written_at": int(time.time() * 1000),
        **extra,
    }
    s3.put_object(Bucket=bucket, Key=layout.pointer, Body=json.dumps(pointer, indent=1).encode())
    return pointer


def _delete_version(s3: Any, bucket: str, pointer: dict) -> None:
    s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": pointer["prefix"] + name} for name in pointer["files"]]}
    )


def upload(s3: Any, bucket: str, layout: Layout, ratings: Path, movies: Path | None = None) -> dict:
    """Check and upload base data as the new current version (the one it replaces is deleted); returns the
    pointer."""
    rows = check_ratings(ratings)
    before = read_pointer(s3, bucket, layout)
    pointer = _write_version(s3, bucket, layout, ratings, movies, rows=rows, forgotten_through=0)
    if before and before["version"] != pointer["version"]:
        _delete_version(s3, bucket, before)
    return pointer


def forget(s3: Any, bucket: str, layout: Layout, pointer: dict, users: dict[str, int]) -> dict:
    """Rewrite the base data without ``users`` (canonical ids -> when forgotten, epoch ms) as a new version and
    delete the old one; returns the new pointer (its ``forgotten_through``: the newest time applied). Streams the
    ratings through a temporary file: memory stays flat at ml-25m's 650 MB."""
    through = max([pointer.get("forgotten_through", 0), *users.values()])
    with tempfile.TemporaryDirectory(prefix="base-forget-") as tmp:
        src = s3.get_object(Bucket=bucket, Key=pointer["prefix"] + RATINGS)["Body"]
        out, dropped = Path(tmp) / RATINGS, 0
        with open(out, "w", newline="", encoding="utf-8") as f:
            reader = csv.reader(io.TextIOWrapper(src, encoding="utf-8", newline=""))
            writer = csv.writer(f, lineterminator="\n")
            header = next(reader)
            writer.writerow(header)
            lower = [h.strip().lower() for h in header]
            at = next(lower.index(c) for c in USER_COLUMNS if c in lower)
            for row in reader:
                if row and canonical_id(row[at]) in users:
                    dropped += 1
                    continue
                writer.writerow(row)
        movies = None
        if MOVIES in pointer["files"]:
            movies = Path(tmp) / MOVIES
            s3.download_file(bucket, pointer["prefix"] + MOVIES, str(movies))
        if not dropped:  # none of them was in the base data: the same version, marked as checked
            new = {**pointer, "forgotten_through": through}
            s3.put_object(Bucket=bucket, Key=layout.pointer, Body=json.dumps(new, indent=1).encode())
            return new
        rows = pointer.get("rows", 0) - dropped
        new = _write_version(s3, bucket, layout, out, movies, rows=rows, forgotten_through=through)
    if new["version"] != pointer["version"]:
        _delete_version(s3, bucket, pointer)
    return new
