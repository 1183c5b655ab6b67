"""Every engine capability on a small artifact, and serving without TensorFlow, Keras or pandas."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from lambdas.engine import Engine, RequestError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def engine(small_artifact) -> Engine:
    return Engine(small_artifact)


def test_engine_imports_and_serves_with_tensorflow_keras_and_pandas_blocked(small_artifact):
    code = textwrap.dedent(
        f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("tensorflow", "keras", "pandas", "tf2onnx"):
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Block())
        from lambdas.engine import Engine
        e = Engine({str(small_artifact)!r})
        assert len(e.recommend(0, k=3)["items"]) == 3
        assert not [m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "pandas")]
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_recommend_ranks_unseen_movies_with_metadata(engine):
    res = engine.recommend(5, k=10)
    items = res["items"]
    assert res["strategy"] == "personalized" and res["user_id"] == 5 and res["model_version"] == engine.model_version
    assert len(items) == 10
    scores = [m["score"] for m in items]
    assert scores == sorted(scores, reverse=True)
    seen = {int(engine.item_ids[i]) for i in engine._seen(engine.user_index(5))}
    assert not seen & {m["movie_id"] for m in items}
    first = items[0]
    assert {"movie_id", "title", "year", "genres", "score", "predicted_rating"} <= set(first)
    assert first["title"].startswith("Movie") and 1950 <= first["year"] <= 2030 and first["genres"]
    assert 0.5 <= first["predicted_rating"] <= 5.0
    # string and integer spellings of an id are the same user
    assert engine.recommend("5", k=10)["items"] == items


def test_predict_gives_the_ratings_the_lists_are_ranked_by_with_events_folded_in(engine, monkeypatch):
    """Engine.predict (the gate's RMSE): a known user's ratings of any movies, in one catalogue call per 300, equal to
    the predicted ratings the recommendations carry, with and without events; NaN where nothing is known."""
    user = engine.user_ids[3]
    for events in (None, [{"movie_id": engine.item_ids[0], "rating": 0.5, "received_at": 10**13}]):
        listed = engine.recommend(user, k=8, events=events, explain=False)["items"]
        got = engine.predict(user, [m["movie_id"] for m in listed] + ["no-such-movie"], events=events)
        assert np.allclose(got[:-1], [m["predicted_rating"] for m in listed], atol=1e-4) and np.isnan(got[-1])
    everything = engine.predict(user, list(engine.item_ids))
    monkeypatch.setattr(engine, "candidates", 7)  # many chunks give the same ratings
    assert np.allclose(engine.predict(user, list(engine.item_ids)), everything, atol=1e-5)
    assert np.isnan(engine.predict("nobody", [engine.item_ids[0]])).all()


def test_exclude_seen_off_can_return_rated_movies(engine):
    u = engine.user_index(5)
    seen = {int(engine.item_ids[i]) for i in engine._seen(u)}
    everything = engine.recommend(5, k=engine.n_items, exclude_seen=False)["items"]
    assert len(everything) == engine.n_items and seen <= {m["movie_id"] for m in everything}


def test_genre_filters(engine):
    only = engine.recommend(3, k=8, genres=["comedy", "Drama"])["items"]
    assert only and all({"Comedy", "Drama"} & set(m["genres"]) for m in only)
    without = engine.recommend(3, k=8, exclude_genres=["Action"])["items"]
    assert without and all("Action" not in m["genres"] for m in without)
    with pytest.raises(RequestError) as err:
        engine.recommend(3, genres=["Western"])
    assert err.value.code == "unknown_genre" and "Comedy" in err.value.message


def test_unknown_user_gets_the_popularity_fallback(engine):
    res = engine.recommend("somebody-new", k=5)
    assert res["strategy"] == "popular"
    ids = [engine.item_index(m["movie_id"]) for m in res["items"]]
    assert ids == engine.popularity[:5].tolist()


def test_k_is_validated_and_may_exceed_the_catalogue(engine):
    for bad in (0, -3, 2.5, True):
        with pytest.raises(RequestError) as err:
            engine.recommend(1, k=bad)
        assert err.value.code == "invalid_k"
    u = engine.user_index(1)
    all_unseen = engine.recommend(1, k=10_000)["items"]
    assert len(all_unseen) == engine.n_items - len(engine._seen(u))


def test_cold_start_folds_in_a_new_user_and_reports_unknown_movies(engine):
    res = engine.cold_start({"3": 5.0, 7: 4.5, 11: 1.0, "no-such-movie": 4.0, 99999: 3.0}, k=5)
    assert res["strategy"] == "cold_start" and res["unknown_movies"] == ["no-such-movie", 99999]
    got = {m["movie_id"] for m in res["items"]}
    assert len(got) == 5 and not got & {3, 7, 11}
    with pytest.raises(RequestError, match="outside"):
        engine.cold_start({3: 9.0})
    only_unknown = engine.cold_start({"nope": 4.0}, k=3)
    assert only_unknown["strategy"] == "popular" and only_unknown["unknown_movies"] == ["nope"]


def test_cold_start_of_an_existing_users_ratings_resembles_their_recommendations(engine):
    # Folding a known user back in from their own ratings should land near their trained vector.
    u = engine.user_index(8)
    lo, hi = engine.h_indptr[u], engine.h_indptr[u + 1]
    ratings = {
        int(engine.item_ids[i]): float(r) for i, r in zip(engine.h_items[lo:hi], engine.h_ratings[lo:hi], strict=True)
    }
    folded = {m["movie_id"] for m in engine.cold_start(ratings, k=10)["items"]}
    trained = {m["movie_id"] for m in engine.recommend(8, k=10)["items"]}
    popular = {m["movie_id"] for m in engine.popular(10, exclude=engine._seen(u))}
    assert len(folded & trained) >= len(popular & trained)


def test_cold_start_weighs_well_rated_movies_as_training_did(engine):
    # A movie rated 5 pulls the new user's interaction vector harder than one rated 1 (liked_weight from training).
    assert engine.fold_in_defaults["liked_weight"] > 1.0
    items = np.array([engine.item_index(3), engine.item_index(11)])
    pr, _, _ = engine.fold_in(items, np.array([5.0, 1.0]))
    q = engine.w["item_rank"][items]
    flat, _, _ = engine.fold_in(items, np.array([5.0, 1.0]), liked_weight=1.0)
    assert pr @ q[0] - pr @ q[1] > flat @ q[0] - flat @ q[1]


def test_the_fold_in_prior_grows_with_the_number_of_ratings(engine):
    from lambdas.engine.fold_in import FOLD_IN_RANK_L2_MIN, FOLD_IN_RANK_L2_PER_RATING

    for n in (1, 40):
        u = engine.user_index(8)
        items = engine.h_items[engine.h_indptr[u] : engine.h_indptr[u + 1]][:n]
        ratings = np.full(len(items), 4.5)
        prior = max(FOLD_IN_RANK_L2_MIN, FOLD_IN_RANK_L2_PER_RATING * len(items))
        default, _, _ = engine.fold_in(items, ratings)
        np.testing.assert_allclose(default, engine.fold_in(items, ratings, rank_l2=prior)[0])
        assert not np.allclose(default, engine.fold_in(items, ratings, rank_l2=prior * 10)[0])


def test_cold_start_evaluation_protocol(engine, small_model_dir):
    # bench.cold_start: the users it keeps and its figures are well defined on the small model.
    from bench.cold_start import evaluate, test_users

    users = test_users(engine, small_model_dir / "test.csv", n=5)
    assert users and all(len(engine._seen(u)) >= 5 and rel for u, rel in users)
    pop = evaluate(engine, users, 5, popular=True)
    folded = evaluate(engine, users, 5, seed=0)
    assert folded == evaluate(engine, users, 5, seed=0)  # seeded
    assert all(0.0 <= r[m] <= 1.0 for r in (pop, folded) for m in ("ndcg@10", "recall@10"))


def test_similar_movies(engine):
    res = engine.similar_movies(10, k=5)
    ids = [m["movie_id"] for m in res["items"]]
    assert res["movie"]["movie_id"] == 10 and 10 not in ids and len(ids) == 5
    sims = [m["score"] for m in res["items"]]
    assert sims == sorted(sims, reverse=True) and all(-1.0 <= s <= 1.0 for s in sims)
    assert len(engine.similar_movies(10, k=1000)["items"]) == engine.n_items - 1
    with pytest.raises(RequestError) as err:
        engine.similar_movies("unknown")
    assert err.value.code == "unknown_movie"


def test_batch_equals_single_requests(engine):
    batch = engine.recommend_batch([1, "ghost", 2, 3], k=4, genres=["Drama"])
    assert [b["strategy"] for b in batch] == ["personalized", "popular", "personalized", "personalized"]
    for user, res in zip([1, 2, 3], [batch[0], batch[2], batch[3]], strict=True):
        assert res["items"] == engine.recommend(user, k=4, genres=["Drama"])["items"]


def test_history_and_user_features(engine):
    hist = engine.history(4, n=5)
    assert len(hist) == 5 and [h["rating"] for h in hist] == sorted((h["rating"] for h in hist), reverse=True)
    feats = engine.user_features(4)
    assert feats["n_ratings"] > 0 and len(feats["embedding"]) == 8 and isinstance(feats["bias"], float)
    assert all(g["liked"] > 0 for g in feats["top_genres"])
    assert engine.history("ghost") == [] and engine.user_features("ghost") is None
