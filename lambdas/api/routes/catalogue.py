"""``GET /movies`` (title search, popular lists), ``GET /model`` (the model card) and ``GET /openapi.json``: answered
from small files published with the model and the API's own document, with no model loaded."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Annotated, cast

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from lambdas.api.answers import INTERNAL, error
from lambdas.api.models import MAX_GENRES, ModelCard, MovieList
from lambdas.service import model_files
from lambdas.service.aws import get_services
from lambdas.service.movie_index import MAX_LIMIT, MAX_QUERY

OPENAPI_PATH = Path(__file__).resolve().parents[1] / "openapi.json"
router = Router()


@router.get(
    "/movies",
    summary="Search the served catalogue by title, or list its most-rated movies",
    description=(
        "With `q`: movies whose title matches, best first (the whole title, then its start, then a word's start, "
        "then all words in any order, then anywhere; ties go to the more-rated movie). Case and diacritics do not "
        'matter, and MovieLens\'s trailing articles are found both ways ("the matrix" finds "Matrix, The"). '
        "Without `q`: the most-rated movies. `genres` keeps movies with at least one of them, `exclude_genres` drops "
        "movies with any of them. Answered from a small index published with the model: no model is loaded."
    ),
    operation_id="listMovies",
    tags=["catalogue"],
    responses={
        200: {"description": "One page of movies", "content": {content_types.APPLICATION_JSON: {"model": MovieList}}},
        422: error("A parameter is out of range or names an unknown genre (`validation_error`, `unknown_genre`)"),
        503: error("No model is published, or its index cannot be read now", retry_after=True),
        500: error(INTERNAL),
    },
)
def list_movies(
    q: Annotated[str | None, Query(max_length=MAX_QUERY, description="Title words (any case, accents optional)")] = (
        None
    ),
    genres: Annotated[list[str] | None, Query(max_length=MAX_GENRES, description="Keep these genres")] = None,
    exclude_genres: Annotated[list[str] | None, Query(max_length=MAX_GENRES, description="Drop these")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Movies per page")] = 10,
    offset: Annotated[int, Query(ge=0, le=100_000, description="Movies to skip (paging)")] = 0,
) -> Response[MovieList]:
    document = model_files.movies(get_services(), q, genres, exclude_genres, limit, offset)
    # a dict in the model's shape: Powertools validates it against MovieList on the way out
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=cast(MovieList, document))


@router.get(
    "/model",
    summary="The served model: version, training data, held-out metrics, genres",
    description="From the served artifact's manifest; no model is loaded.",
    operation_id="getModel",
    tags=["catalogue"],
    responses={
        200: {"description": "The model card", "content": {content_types.APPLICATION_JSON: {"model": ModelCard}}},
        503: error("No model is published, or its files cannot be read now", retry_after=True),
        500: error(INTERNAL),
    },
)
def get_model() -> Response[ModelCard]:
    document = model_files.model_card(get_services())
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=cast(ModelCard, document))


@router.get("/openapi.json", include_in_schema=False)
def openapi_document() -> dict:
    return _openapi()


@cache
def _openapi() -> dict:
    return json.loads(OPENAPI_PATH.read_text())
