"""A user's ratings since training (events), folded in by the engine at request time."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from lambdas.engine import Engine


@pytest.fixture(scope="module")
def engine(small_artifact) -> Engine:
    return Engine(small_artifact)


def _user_with_many_ratings(engine: Engine) -> tuple[int, int]:
    counts = np.diff(engine.h_indptr)
    u = int(np.argmax(counts))
    return u, int(engine.user_ids[u])


def _unseen(engine: Engine, u: int, n: int) -> list[int]:
    seen = set(engine._seen(u).tolist())
    return [int(engine.item_ids[i]) for i in range(engine.n_items) if i not in seen][:n]


def test_a_model_trained_without_events_records_none_and_folds_every_event_in(engine):
    assert engine.events_through is None
    assert "events_through" not in engine.artifact.manifest["training"]
    assert engine.artifact.manifest["training"]["cutoff"] > 0  # the newest training rating, for the model card


def test_no_events_change_nothing(engine):
    _, uid = _user_with_many_ratings(engine)
    assert engine.recommend(uid, k=10) == engine.recommend(uid, k=10, events=[])
    assert "events_used" not in engine.recommend(uid, k=10)


def test_one_event_nudges_a_known_user_and_counts_as_seen(engine):
    u, uid = _user_with_many_ratings(engine)
    before = engine.recommend(uid, k=10)
    target = before["items"][0]["movie_id"]
    after = engine.recommend(uid, k=10, events=[{"movie_id": target, "rating": 1.0, "received_at": 1}])
    assert after["strategy"] == "personalized" and after["events_used"] == 1
    ids = [m["movie_id"] for m in after["items"]]
    assert target not in ids  # rated now: seen
    # a nudge, not a replacement: the rated movie's predicted rating moves towards the new rating by less than
    # half the gap (the user's training ratings weigh more than one new one), and the interaction factors move less
    # than half their length
    i = engine.item_index(target)
    pr, p, b, _ = engine.update(u, np.array([i]), np.array([1.0]))
    w = engine.w

    def predicted(p_u: np.ndarray, b_u: float) -> float:
        return engine.mu + b_u + float(w["item_bias"][i]) + engine.mf_weight * float(p_u @ w["item_mf"][i])

    before_r = predicted(w["user_mf"][u], float(w["user_bias"][u]))
    after_r = predicted(p, float(b))
    assert 1.0 < after_r < before_r and before_r - after_r < 0.5 * (before_r - 1.0)
    moved = np.linalg.norm(pr - w["user_rank"][u])
    assert 0 < moved < 0.5 * np.linalg.norm(w["user_rank"][u])


def test_a_user_with_fewer_training_ratings_moves_more(engine):
    counts = np.diff(engine.h_indptr)
    many, few = int(np.argmax(counts)), int(np.argmin(counts))
    assert counts[many] > 2 * counts[few]
    rated = set(engine._seen(many).tolist()) | set(engine._seen(few).tolist())
    i = np.array([next(j for j in range(engine.n_items) if j not in rated)])  # new to both

    def moved(u: int) -> float:
        return float(np.linalg.norm(engine.update(u, i, np.array([5.0]))[1] - engine.w["user_mf"][u]))

    assert moved(few) > moved(many)


def test_liked_events_raise_those_movies_and_their_neighbours(engine):
    u, uid = _user_with_many_ratings(engine)
    w = engine.w
    unseen = [engine.item_index(m) for m in _unseen(engine, u, engine.n_items)]
    liked = np.array(unseen[:6])
    pr, _, _, _ = engine.update(u, liked, np.full(len(liked), 5.0))
    step = pr - w["user_rank"][u]
    gain = w["item_rank"] @ step  # each movie's interaction logit change
    assert gain[liked].mean() > gain.mean()
    # the movies nearest the liked ones (factor cosine), not themselves rated, gain more than the average movie
    near = {int(j) for i in liked for j in np.argsort(-(engine._similar @ engine._similar[i]))[1:4]} - set(liked)
    assert gain[sorted(near)].mean() > gain.mean()
    before = engine.recommend(uid, k=10)["items"]
    events = [{"movie_id": int(engine.item_ids[i]), "rating": 5.0} for i in liked]
    assert engine.recommend(uid, k=10, events=events)["items"] != before


def test_a_known_users_events_stored_up_to_events_through_are_in_the_model_already(small_artifact):
    engine = Engine(small_artifact)
    engine.events_through = 5_000  # as if trained on an export whose newest event was stored at 5 s
    u, uid = _user_with_many_ratings(engine)
    movie = _unseen(engine, u, 1)[0]
    old = engine.recommend(uid, k=5, events=[{"movie_id": movie, "rating": 5.0, "received_at": 5_000}])
    assert old["events_used"] == 0
    assert old["items"] == engine.recommend(uid, k=5)["items"]
    # whatever the client's timestamp says: storage time decides
    new = [{"movie_id": movie, "rating": 5.0, "received_at": 5_001, "timestamp": 0}]
    assert engine.recommend(uid, k=5, events=new)["events_used"] == 1
    # an unknown user's events are never in the model: all of them give the cold start
    visitor = engine.recommend("visitor-9", k=5, events=[{"movie_id": movie, "rating": 5.0, "received_at": 1}])
    assert visitor["strategy"] == "cold_start" and visitor["events_used"] == 1


def test_one_movie_under_two_spellings_counts_once_and_replaces_its_training_rating(engine):
    u, uid = _user_with_many_ratings(engine)
    movie = _unseen(engine, u, 1)[0]
    twice = [{"movie_id": movie, "rating": 2.0}, {"movie_id": str(movie), "rating": 4.0}]
    assert engine.new_ratings(twice) == {movie: 4.0}
    assert engine.recommend(uid, k=5, events=twice)["events_used"] == 1
    # a movie rated in training and again now: the event replaces it in the prior (same step as a fresh movie)
    lo = engine.h_indptr[u]
    rated, old = int(engine.h_items[lo]), float(engine.h_ratings[lo])
    again = engine.update(u, np.array([rated]), np.array([old]))
    assert np.all(np.isfinite(again[0])) and np.all(np.isfinite(again[1]))
    hist = engine.h_items[engine.h_indptr[u] : engine.h_indptr[u + 1]]
    assert rated in hist


def test_the_last_rating_of_a_movie_wins_and_unknown_movies_or_scales_are_ignored(engine):
    assert engine.new_ratings(
        [
            {"movie_id": 3, "rating": 1.0},
            {"movie_id": 4, "rating": 9.0},
            {"movie_id": 3, "rating": 4.5},
        ]
    ) == {3: 4.5}
    _, uid = _user_with_many_ratings(engine)
    res = engine.recommend(uid, k=5, events=[{"movie_id": "no such movie", "rating": 4.0}])
    assert res["events_used"] == 0 and res["items"] == engine.recommend(uid, k=5)["items"]


def test_an_unknown_user_with_events_gets_the_cold_start_of_those_ratings(engine):
    ratings = {int(engine.item_ids[i]): r for i, r in [(0, 5.0), (3, 4.0), (7, 1.0)]}
    events = [{"movie_id": m, "rating": r} for m, r in ratings.items()]
    via_events = engine.recommend("visitor-1", k=10, events=events)
    inline = engine.cold_start(ratings, k=10)
    assert via_events["strategy"] == "cold_start" and via_events["events_used"] == 3
    assert via_events["user_id"] == "visitor-1"
    assert via_events["items"] == inline["items"]
    assert engine.recommend("visitor-2", k=10)["strategy"] == "popular"


def test_a_visitors_unknown_movies_are_reported_as_they_were_sent(engine):
    known = int(engine.item_ids[0])
    events = [
        {"movie_id": known, "rating": 5.0},
        {"movie_id": 424242, "rating": 3.0},
        {"movie_id": "not-a-movie", "rating": 3.0},
    ]
    res = engine.recommend("visitor-2", k=5, events=events)
    assert res["strategy"] == "cold_start" and res["events_used"] == 1
    assert res["unknown_movies"] == [424242, "not-a-movie"]
