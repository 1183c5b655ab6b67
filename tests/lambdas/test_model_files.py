"""GET /movies and GET /model through the API handler (moto): read from the published artifact, no model loaded."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from lambdas.api import handler as api
from lambdas.service import model_files
from lambdas.service.aws import Services, configure
from tests.lambdas.conftest import load_event
from tests.openapi_contract import assert_matches


@pytest.fixture(autouse=True)
def fresh_cache():
    model_files.clear_cache()
    yield
    model_files.clear_cache()


def call(context, path: str, query: dict[str, list[str]] | None = None) -> tuple[int, dict]:
    event = load_event("api_get_recommendation.json")
    event.update(
        resource=path,
        path=path,
        pathParameters=None,
        queryStringParameters={k: v[-1] for k, v in (query or {}).items()} or None,
        multiValueQueryStringParameters=query or None,
    )
    event["requestContext"].update(path=f"/prod{path}", resourcePath=path)
    response = api.lambda_handler(event, context)
    return response["statusCode"], json.loads(response["body"])


def test_popular_movies_by_genre_with_paging(flow, lambda_context):
    status, body = call(lambda_context, "/movies", {"genres": ["Drama", "comedy"], "limit": ["5"], "offset": ["2"]})
    assert status == 200, body
    assert_matches("GET", "/movies", 200, body)
    assert body["order"] == "popular" and body["offset"] == 2 and len(body["movies"]) == 5
    assert all({"Drama", "Comedy"} & set(m["genres"]) for m in body["movies"])
    counts = [m["n_ratings"] for m in body["movies"]]
    assert counts == sorted(counts, reverse=True)
    _, first = call(lambda_context, "/movies", {"genres": ["Drama", "Comedy"], "limit": ["50"]})
    _, rest = call(lambda_context, "/movies", {"genres": ["Drama", "Comedy"], "limit": ["50"], "offset": ["50"]})
    assert first["total"] == body["total"] == len(first["movies"]) + len(rest["movies"])
    assert first["movies"][2:7] == body["movies"]


def test_title_search_finds_the_trailing_article_form(flow, lambda_context):
    status, body = call(lambda_context, "/movies", {"q": ["the movie 12"], "limit": ["3"]})
    assert status == 200, body
    assert_matches("GET", "/movies", 200, body)
    assert body["order"] == "title_match" and body["query"] == "the movie 12"
    assert body["movies"][0]["title"] == "Movie 12, The (1962)"


@pytest.mark.parametrize(
    ("query", "code", "fragment"),
    [
        ({"genres": ["Western"]}, "unknown_genre", "unknown genre 'Western'; known: Action, Comedy"),
        ({"exclude_genres": ["Western"]}, "unknown_genre", "unknown genre 'Western'"),
        ({"limit": ["0"]}, "validation_error", "query.limit"),
        ({"limit": ["51"]}, "validation_error", "query.limit"),
        ({"limit": ["ten"]}, "validation_error", "query.limit"),
        ({"offset": ["-1"]}, "validation_error", "query.offset"),
        ({"q": ["x" * 101]}, "validation_error", "query.q"),
    ],
)
def test_bad_parameters_are_refused_in_words(flow, lambda_context, query, code, fragment):
    status, body = call(lambda_context, "/movies", query)
    assert status == 422, body
    assert_matches("GET", "/movies", 422, body)
    assert body["error"]["code"] == code and fragment in body["error"]["message"]


def test_model_card_comes_from_the_manifest(flow, lambda_context, small_artifact):
    status, body = call(lambda_context, "/model")
    assert status == 200, body
    assert_matches("GET", "/model", 200, body)
    manifest = json.loads((small_artifact / "manifest.json").read_text())
    assert body["model_version"] == manifest["model_version"] == flow.settings.model_version
    assert body["n_movies"] == manifest["model"]["n_items"] and body["n_users"] == manifest["model"]["n_users"]
    assert body["metrics"]["ndcg@10"] == pytest.approx(manifest["training"]["metrics"]["ndcg@10"])
    assert body["genres"] == ["Action", "Comedy", "Drama", "Horror", "Sci-Fi"]
    assert len(body["example_users"]) == 8 and body["dataset"]["name"] == "ratings.csv"


def test_without_a_published_model_the_answer_is_503_in_json(flow, lambda_context):
    configure(Services(replace(flow.settings, model_version="")))
    status, body = call(lambda_context, "/movies")
    assert status == 503, body
    assert_matches("GET", "/movies", 503, body)
    assert body["error"]["code"] == "model_unavailable"


def test_an_artifact_without_the_index_is_named_in_the_error(flow, lambda_context):
    s = flow.settings
    flow.services.s3.delete_object(Bucket=s.bucket_name, Key=f"{s.model_prefix}{s.model_version}/movies.json.gz")
    status, body = call(lambda_context, "/movies", {"q": ["movie"]})
    assert status == 503, body
    assert body["error"]["code"] == "catalogue_unavailable" and "movies.json.gz" in body["error"]["message"]


def test_the_index_is_read_once_per_version(flow, lambda_context, monkeypatch):
    reads = []
    real = model_files._read
    monkeypatch.setattr(model_files, "_read", lambda *a: reads.append(a[2]) or real(*a))
    for _ in range(3):
        assert call(lambda_context, "/movies", {"q": ["movie 1"]})[0] == 200
        assert call(lambda_context, "/model")[0] == 200
    assert sorted(reads) == ["manifest.json", "movies.json.gz"]
