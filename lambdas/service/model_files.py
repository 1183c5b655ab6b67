"""What the API answers without the model: movie search and popular lists (``GET /movies``), the model card
(``GET /model``).

Both read small files published with each model version (``<model_prefix><version>/movies.json.gz`` and
``manifest.json``) from the model bucket, once per version and container; the version is the worker's (the SSM
parameter, or ``MODEL_VERSION``). No numpy: this runs in the API function.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from contract import MANIFEST, movie_index
from contract.movie_index import MovieIndexError
from lambdas.service import model_store
from lambdas.service.aws import Services
from lambdas.service.errors import ServiceError, Unavailable
from lambdas.service.logs import logger
from lambdas.service.movie_index import MovieIndex
from lambdas.settings import UNPUBLISHED

METRIC_KEYS = ("rmse", "mae", "ndcg@10", "recall@10", "precision@10", "map@10", "coverage")

# One model version per container: (bucket, prefix, version) -> {file name: what was made of it}.
_cache: dict[tuple[str, str, str], dict[str, Any]] = {}
_lock = threading.Lock()


class UnknownGenre(ServiceError):
    status = 422


def _version(services: Services) -> tuple[str, str, str]:
    s = services.settings
    try:
        version = model_store.model_version(services)
    except (BotoCoreError, ClientError) as exc:
        raise Unavailable("model_unavailable", "the served model version cannot be read now; retry") from exc
    if not version or not s.bucket_name or version == UNPUBLISHED:
        raise Unavailable("model_unavailable", "no model is published yet", headers={"Retry-After": "30"})
    return s.bucket_name, s.model_prefix, version


def _read(services: Services, key: tuple[str, str, str], name: str) -> bytes:
    bucket, prefix, version = key
    try:
        return services.s3.get_object(Bucket=bucket, Key=f"{prefix}{version}/{name}")["Body"].read()
    except (BotoCoreError, ClientError) as exc:
        code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""
        # without s3:ListBucket a missing key answers AccessDenied, not NoSuchKey
        if code in ("NoSuchKey", "404", "AccessDenied"):
            message = f"the served model {version} has no {name}: export and publish it again with this version"
            raise Unavailable("catalogue_unavailable", message) from exc
        logger.exception("model file unreadable", extra={"file": name})
        raise Unavailable("catalogue_unavailable", f"{name} cannot be read now; retry", {"Retry-After": "1"}) from exc


def _cached(services: Services, name: str, parse: Callable[[bytes], Any]) -> tuple[str, Any]:
    """(served version, ``parse`` of its file ``name``), read from S3 once per version and container."""
    key = _version(services)
    with _lock:
        found = _cache.get(key, {}).get(name)
    if found is None:
        found = parse(_read(services, key, name))
        with _lock:
            if key not in _cache:
                _cache.clear()  # a newer version replaces the old one
            _cache.setdefault(key, {})[name] = found
    return key[2], found


def _parse_index(data: bytes) -> MovieIndex:
    try:
        found = MovieIndex.from_bytes(data)
    except MovieIndexError as exc:
        raise Unavailable("catalogue_unavailable", f"the served model's movie index is unusable: {exc}") from exc
    logger.info("movie index loaded", extra={"movies": len(found)})
    return found


def _parse_manifest(data: bytes) -> dict:
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise Unavailable("catalogue_unavailable", "the served model's manifest is unreadable") from exc


def index(services: Services) -> tuple[str, MovieIndex]:
    """(model version, its movie index)."""
    return _cached(services, movie_index.FILENAME, _parse_index)


def manifest(services: Services) -> dict:
    """The served version's manifest."""
    return _cached(services, MANIFEST, _parse_manifest)[1]


def movies(
    services: Services,
    q: str | None = None,
    genres: list[str] | None = None,
    exclude_genres: list[str] | None = None,
    limit: int = 10,
    offset: int = 0,
) -> dict[str, Any]:
    """``GET /movies``: title matches for ``q``, else the most-rated movies; genre filters on both."""
    version, idx = index(services)
    wanted, unknown = idx.genre_mask(genres)
    avoided, unknown_too = idx.genre_mask(exclude_genres)
    if unknown or unknown_too:
        name = (unknown or unknown_too)[0]
        raise UnknownGenre("unknown_genre", f"unknown genre {name!r}; known: {', '.join(idx.genre_names)}")
    query = (q or "").strip()
    page = idx.search(query, limit, offset, wanted, avoided) if query else idx.popular(limit, offset, wanted, avoided)
    out: dict[str, Any] = {
        "model_version": version,
        "order": "title_match" if query else "popular",
        "total": page.total,
        "offset": offset,
        "movies": page.movies,
    }
    if query:
        out["query"] = query
    return out


def model_card(services: Services) -> dict[str, Any]:
    """``GET /model``: what is served, trained on what, how well it tested, and the catalogue's genres."""
    found = manifest(services)
    version, idx = index(services)
    training = found.get("training") or {}
    dataset = training.get("dataset") or {}
    metrics = training.get("metrics") or {}
    card: dict[str, Any] = {
        "model_version": version,
        "created": found.get("created"),
        "trained": training.get("created"),
        "model_kind": (found.get("model") or {}).get("kind"),
        "n_users": (found.get("model") or {}).get("n_users"),
        "n_movies": (found.get("model") or {}).get("n_items"),
        "dataset": _dataset(dataset),
        "split": _split(training.get("split")),
        "metrics": {k: float(v) for k, v in metrics.items() if k in METRIC_KEYS and isinstance(v, int | float)},
        "rating_scale": (found.get("scoring") or {}).get("rating_scale"),
        "genres": idx.genre_names,
        "example_users": idx.example_users,
    }
    similarity = found.get("similarity")
    if isinstance(similarity, dict) and similarity.get("method"):
        card["similarity"] = str(similarity["method"])
    return {k: v for k, v in card.items() if v is not None}


def _dataset(dataset: Any) -> dict[str, Any] | None:
    if not isinstance(dataset, dict):
        return None
    keep = {k: dataset[k] for k in ("name", "n_ratings", "n_users", "n_items", "rating_scale") if k in dataset}
    return keep or None


def _split(split: Any) -> str | None:
    if isinstance(split, dict):
        return ", ".join(f"{k}={v}" for k, v in split.items() if isinstance(v, str | int | float))
    return str(split) if split else None


def clear_cache() -> None:
    """Forget cached manifests and indexes (tests, the local stack)."""
    with _lock:
        _cache.clear()
