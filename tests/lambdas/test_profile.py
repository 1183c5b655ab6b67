"""The profile request kind and the personalised-vs-popular comparison, on the engine and through the worker."""

from __future__ import annotations

import numpy as np
import pytest

from lambdas.api.models import RecommendationRequest
from lambdas.service.worker import run_request

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def engine(small_artifact):
    from lambdas.engine import Engine

    return Engine(small_artifact)


def test_profile_counts_shares_and_means_per_genre_from_the_training_ratings(engine):
    u = engine.user_index(3)
    lo, hi = engine.h_indptr[u], engine.h_indptr[u + 1]
    items, ratings = engine.h_items[lo:hi], engine.h_ratings[lo:hi]
    profile = engine.profile(3)
    assert profile["n_ratings"] == len(items)
    assert profile["mean_rating"] == pytest.approx(ratings.mean(), abs=1e-4)
    by_genre = {g["genre"]: g for g in profile["genres"]}
    for j, name in enumerate(engine.genre_names):
        rated = engine.genres[items, j]
        if not rated.any():
            assert name not in by_genre
            continue
        g = by_genre[name]
        assert g["count"] == rated.sum()
        assert g["share"] == pytest.approx(rated.sum() / len(items), abs=1e-4)
        assert g["mean_rating"] == pytest.approx(ratings[rated].mean(), abs=1e-4)
        assert g["liked"] == int((ratings[rated] >= 4).sum())
    counts = [g["count"] for g in profile["genres"]]
    assert counts == sorted(counts, reverse=True)
    assert [m["rating"] for m in profile["history"]] == sorted((m["rating"] for m in profile["history"]), reverse=True)


def test_profile_of_an_unknown_user_is_a_permanent_error(engine):
    from lambdas.engine import RequestError

    with pytest.raises(RequestError) as raised:
        engine.profile("nobody")
    assert raised.value.code == "unknown_user"


def test_popular_for_a_user_leaves_out_what_they_rated_and_follows_the_filters(engine):
    u = engine.user_index(3)
    seen = set(engine.h_items[engine.h_indptr[u] : engine.h_indptr[u + 1]].tolist())
    listed = engine.popular_for(3, k=10, genres=["Comedy"])
    assert len(listed) == 10
    assert all("Comedy" in m["genres"] for m in listed)
    assert not {engine.item_index(m["movie_id"]) for m in listed} & seen
    scores = [m["score"] for m in listed]
    assert scores == sorted(scores, reverse=True)
    everyone = engine.popular(k=len(seen) + 10)
    assert [m["movie_id"] for m in engine.popular_for(3, k=5, exclude_seen=False)] == [
        m["movie_id"] for m in everyone[:5]
    ]


def test_the_worker_answers_both_with_the_documented_shapes(engine):
    from tests.openapi_contract import assert_matches

    doc = {"request_id": "0" * 8 + "-0000-0000-0000-" + "0" * 12, "status": "COMPLETED", "kind": "user"}
    stamps = {"created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-01T00:00:00.000Z"}
    stamps["expires_at"] = stamps["created_at"]
    request = RecommendationRequest(user_id=3, k=4, include_popular=True)
    result = run_request(engine, request)
    assert len(result["items"]) == 4 and len(result["popular"]) == 4
    assert_matches("GET", "/recommendations/{request_id}", 200, {**doc, **stamps, "result": result})
    profile = run_request(engine, RecommendationRequest(profile_of="3"))
    assert profile["strategy"] == "profile" and profile["user_id"] == 3
    assert len(profile["history"]) == min(20, int(np.diff(engine.h_indptr)[engine.user_index(3)]))
    assert_matches("GET", "/recommendations/{request_id}", 200, {**doc, **stamps, "kind": "profile", "result": profile})


@pytest.mark.parametrize(
    "body",
    [{"profile_of": 3, "user_id": 3}, {"profile_of": None}, {"profile_of": True}, {"profile_of": ""}],
)
def test_a_profile_request_is_one_kind_with_a_valid_id(body):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        RecommendationRequest.model_validate(body)
