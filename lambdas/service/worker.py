"""Process one queued request: score it with the engine, store COMPLETED or FAILED exactly once.

* Permanent errors (an invalid request, an unknown movie or genre, a rating outside the model's scale) finish the
  request FAILED and the record counts as processed: retrying cannot help.
* Anything else is transient: the exception propagates, the record is reported in ``batchItemFailures`` and SQS
  delivers it again after the visibility timeout. On the last allowed receive (``max_receive_count``) the request is
  marked FAILED (``retries_exhausted``) before the record is reported failed once more, so SQS moves it to the DLQ
  and the client never polls a PENDING request forever.
* Every write is conditional on PENDING, so a duplicate delivery never overwrites a finished result.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contract.api import COMPLETED, FAILED, PENDING
from contract.ids import canonical_id
from contract.serving import SERVED, Serving, assign
from lambdas.api.models import UUID_PATTERN, RecommendationRequest
from lambdas.service import events, lists, model_store, store
from lambdas.service.aws import Services
from lambdas.service.logs import logger

HISTORY_SIZE = 10
PROFILE_HISTORY_SIZE = 20
METADATA_KEYS = ("title", "year", "genres")


class WorkMessage(BaseModel):
    """The SQS message body the API sends. Only the id is used: the stored item is the source of truth."""

    model_config = ConfigDict(extra="ignore")

    request_id: str = Field(pattern=UUID_PATTERN)
    request: dict[str, Any] | None = None  # a copy, for whoever inspects the queue or the DLQ


def describe(exc: ValidationError) -> str:
    """``loc: message`` for the first few errors of a pydantic ValidationError."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:3])


class UnreadableMessage(ValueError):
    """A message that is not a ``WorkMessage``: no request to mark, so it is retried into the DLQ for a human."""


def process_message(services: Services, body: str, receive_count: int) -> str:
    """Handle one message body; returns ``completed``, ``failed`` or ``skipped``; raises on transient errors."""
    try:
        message = WorkMessage.model_validate_json(body)
    except ValidationError as exc:
        logger.error("unreadable message: reported failed, it will end in the DLQ", extra={"error": describe(exc)})
        raise UnreadableMessage(f"not a work message: {describe(exc)}") from exc
    with logger.append_context_keys(request_id=message.request_id):
        return _process(services, message, receive_count)


def _process(services: Services, message: WorkMessage, receive_count: int) -> str:
    """Check the item, score its request, store the outcome; raises (for a retry) on transient errors."""
    request_id = message.request_id
    item = store.get(services, request_id)
    if item is None:
        logger.warning("no such request (expired, or never stored); message dropped")
        return "skipped"
    if item["status"] != PENDING:
        logger.info("duplicate delivery of a finished request; nothing written", extra={"status": item["status"]})
        return "skipped"
    try:
        request = stored_request(item["request"])
    except ValidationError as exc:
        return _fail(services, request_id, "invalid_request", f"invalid request: {describe(exc)}")
    except ValueError as exc:
        return _fail(services, request_id, "invalid_request", f"invalid request: {exc}")

    from lambdas.engine import RequestError  # lazily: the engine package imports numpy and onnxruntime

    engine = None
    try:
        serving = model_store.serving(services)
        if request.user_ids is not None:
            engine = model_store.get_engine(services, serving.served)
            result = run_batch(lambda version: model_store.get_engine(services, version), serving, request)
        else:
            variant = assign(serving, _user_of(request))
            engine = model_store.get_engine(services, serving.version_of(variant))
            user_events = None
            if request.user_id is not None:
                # a known user's events up to the model's events_through are in it: the Query skips them (an
                # unknown user's all count, as the engine's cold start takes them)
                known = engine.user_index(request.user_id) >= 0
                user_events = events.for_user(services, request.user_id, engine.events_through if known else None)
            result = labelled(run_request(engine, request, user_events), variant, serving)
        lists.log(services, request_id, result)  # first: a failure retries both, a repeat rewrites the same items
        _complete(services, request_id, item["request"], result)
    except RequestError as exc:
        return _fail(services, request_id, exc.code, exc.message, engine.model_version if engine else None)
    except Exception as exc:
        logger.warning("transient failure", extra={"receive_count": receive_count}, exc_info=True)
        if receive_count >= services.settings.max_receive_count:
            exhausted(services, request_id, exc, receive_count)
        raise
    return "completed"


def stored_request(text: str) -> RecommendationRequest:
    """The request stored with the item. Items written before the request kinds became non-nullable carry null for
    the absent kinds (and every other unset field): nulls are dropped, so those requests still validate."""
    stored = json.loads(text)
    if not isinstance(stored, dict):
        raise ValueError("the stored request is not a JSON object")
    return RecommendationRequest.model_validate({k: v for k, v in stored.items() if v is not None})


def exhausted(services: Services, request_id: str, exc: BaseException | str, receive_count: int | None = None) -> bool:
    """Mark a request FAILED with ``retries_exhausted`` (last receive, or found in the DLQ); False if finished."""
    reason = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    message = f"processing failed on every attempt; last error: {reason}"[:1000]
    done = store.finish(services, request_id, FAILED, error={"code": "retries_exhausted", "message": message})
    if done:
        logger.error("retries exhausted; request marked FAILED", extra={"receive_count": receive_count})
    else:
        logger.info("retries exhausted for a request already finished; nothing written")
    return done


def _fail(services: Services, request_id: str, code: str, message: str, model_version: str | None = None) -> str:
    error = {"code": code, "message": message}
    done = store.finish(services, request_id, FAILED, error=error, model_version=model_version)
    logger.info("request FAILED (permanent error)", extra={"code": code, "error": message, "written": done})
    return "failed"


def _complete(services: Services, request_id: str, request_json: str, result: dict) -> None:
    s = services.settings
    result_json = store.dumps(result)
    size = len(result_json.encode()) + len(request_json.encode())
    fields: dict[str, Any] = {"model_version": result["model_version"]}
    if size > s.inline_result_max_bytes:
        key = f"{s.results_prefix}{request_id}.json"
        services.s3.put_object(Bucket=s.bucket_name, Key=key, Body=result_json.encode(), ContentType="application/json")
        fields["result_s3_key"] = key
    else:
        fields["result_json"] = result_json
    written = store.finish(services, request_id, COMPLETED, **fields)
    if not written and store.get(services, request_id) is None:
        # deleted meanwhile (DELETE /users/{id}): leave nothing of it behind, neither the result object nor the
        # lists logged for it (a request finished by another delivery keeps both: the same keys, the same content)
        lists.forget(services, request_id, result)
        if "result_s3_key" in fields:
            services.s3.delete_object(Bucket=s.bucket_name, Key=fields["result_s3_key"])
    logger.info(
        "request COMPLETED" if written else "request finished meanwhile by another delivery; nothing written",
        extra={"bytes": size, "in_s3": "result_s3_key" in fields, "model_version": result["model_version"]},
    )


# ---------------------------------------------------------------------------------------------- scoring


def run_request(engine: Any, request: RecommendationRequest, user_events: list[dict] | None = None) -> dict:
    """The result document of one request (see ``lambdas.api.models`` for its shape); ``user_events``: the
    ``user_id``'s stored events (``lambdas.service.events.for_user``), folded in by the engine."""
    filters = {"genres": request.genres, "exclude_genres": request.exclude_genres}
    opts = {"k": request.k, "exclude_seen": request.exclude_seen, **filters, "explain": request.explain}
    if request.user_id is not None:
        result = engine.recommend(request.user_id, **opts, events=user_events)
        if request.include_history:
            result["history"] = engine.history(request.user_id, HISTORY_SIZE)
        if request.include_popular:
            result["popular"] = engine.popular_for(request.user_id, **opts)
    elif request.ratings is not None:
        result = engine.cold_start(request.ratings, **opts)
    elif request.similar_to is not None:
        result = engine.similar_movies(request.similar_to, k=request.k, **filters, explain=request.explain)
    elif request.profile_of is not None:
        result = engine.profile(request.profile_of, PROFILE_HISTORY_SIZE)
    else:
        results = engine.recommend_batch(request.user_ids, **opts)
        if request.include_history:
            for res, user_id in zip(results, request.user_ids, strict=True):
                res["history"] = engine.history(user_id, HISTORY_SIZE)
        result = {"strategy": "batch", "results": results, "model_version": engine.model_version}
    return result if request.include_metadata else _strip_metadata(result)


def _user_of(request: RecommendationRequest) -> str | None:
    """The user an experiment assigns a request by (its ``user_id`` or ``profile_of``; none for ratings sent
    inline or similar movies: those get the served model)."""
    user = request.user_id if request.user_id is not None else request.profile_of
    return None if user is None else canonical_id(user)


def labelled(result: dict, variant: str, serving: Serving) -> dict:
    """``result`` with the variant that produced it, and the experiment while one runs."""
    out = {**result, "variant": variant}
    if serving.experiment is not None:
        out["experiment"] = serving.experiment.experiment
    return out


def run_batch(engine_for: Callable[[str], Any], serving: Serving, request: RecommendationRequest) -> dict:
    """A batch whose users may be split between an experiment's two variants: each variant's users scored together
    by its version's engine (``engine_for``), the lists back in request order, each labelled; the batch's own
    version is the served one."""
    users = request.user_ids or []
    rows: dict[str, list[int]] = {}
    for i, u in enumerate(users):
        rows.setdefault(assign(serving, canonical_id(u)), []).append(i)
    made: dict[int, dict] = {}
    for variant, picked in rows.items():
        engine = engine_for(serving.version_of(variant))
        part = run_request(engine, request.model_copy(update={"user_ids": [users[i] for i in picked]}))
        for i, one in zip(picked, part["results"], strict=True):
            made[i] = labelled(one, variant, serving)
    result = {"strategy": "batch", "results": [made[i] for i in range(len(users))], "model_version": serving.served}
    return labelled(result, SERVED, serving)


def _strip_metadata(value: Any) -> Any:
    """Drop titles, years and genres from every movie record (``include_metadata: false``)."""
    if isinstance(value, list):
        return [_strip_metadata(v) for v in value]
    if isinstance(value, dict):
        is_movie = "movie_id" in value
        return {k: _strip_metadata(v) for k, v in value.items() if not (is_movie and k in METADATA_KEYS)}
    return value
