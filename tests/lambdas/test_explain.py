"""Reasons: the shares come from the model's own solution, add up to the score, and predict what removing a rating
does; the match figure never increases down a list; similar and popular lists say what they are."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from lambdas.engine import Engine


@pytest.fixture(scope="module")
def engine(small_artifact) -> Engine:
    return Engine(small_artifact)


def total(rec: dict) -> float:
    return sum(r["share"] for r in rec["reasons"]) + rec["share_other_ratings"] + rec["share_baseline"]


def rated_by(engine: Engine, user: int) -> dict:
    lo, hi = engine.h_indptr[user], engine.h_indptr[user + 1]
    return {
        engine.movie_key(int(i)): float(r) for i, r in zip(engine.h_items[lo:hi], engine.h_ratings[lo:hi], strict=True)
    }


def test_every_personalised_kind_carries_reasons_that_add_up_to_the_score(engine):
    user_id = engine.user_ids[3].item()
    mine = rated_by(engine, 3)
    known = engine.recommend(user_id, k=5)
    events = engine.recommend(user_id, k=5, events=[{"movie_id": engine.movie_key(7), "rating": 5.0}])
    cold = engine.cold_start({engine.movie_key(i): 4.5 for i in (1, 2, 3, 4)}, k=5)
    batch = engine.recommend_batch([user_id, "nobody"], k=5)
    for result, rated in (
        (known, mine),
        (events, {**mine, engine.movie_key(7): 5.0}),
        (cold, {engine.movie_key(i): 4.5 for i in (1, 2, 3, 4)}),
        (batch[0], mine),
    ):
        assert result["items"]
        for rec in result["items"]:
            assert 1 <= len(rec["reasons"]) <= 3
            assert all(r["kind"] == "rated" and rated[r["movie_id"]] == r["rating"] for r in rec["reasons"])
            assert len({r["movie_id"] for r in rec["reasons"]}) == len(rec["reasons"])
            assert total(rec) == pytest.approx(rec["score"], abs=1e-4)
    assert events["events_used"] == 1
    assert batch[1]["strategy"] == "popular" and batch[1]["items"][0]["reasons"][0]["kind"] == "popular"


def test_the_match_figure_never_increases_down_a_list_and_follows_the_score(engine):
    for u in range(0, 40, 7):
        items = engine.recommend(engine.user_ids[u].item(), k=10)["items"]
        matches = [rec["match"] for rec in items]
        assert all(0.0 <= m <= 100.0 for m in matches)
        assert matches == sorted(matches, reverse=True)
        scores = [rec["score"] for rec in items]
        assert scores == sorted(scores, reverse=True)


def test_the_match_figure_is_the_share_of_the_catalogue_scored_below(engine):
    """Counted by brute force over every movie, ties included (a tie is not below)."""
    rng = np.random.default_rng(5)
    stage1 = rng.normal(0, 1, (3, 500)).astype(np.float32)
    stage1[:, :50] = stage1[:, [0]]  # a block of equal scores
    bias = rng.normal(0, 0.1, 3).astype(np.float32)
    ref = stage1 + (engine.gamma * (engine.mu + bias))[:, None]
    top = np.sort(ref[:, 40:60], axis=1)[:, ::-1][:, :10]  # listed scores, some equal to the block's
    expected = 100.0 * (ref[:, None, :] < top[:, :, None]).sum(axis=2) / 500
    assert engine.match(stage1, bias, top) == pytest.approx(expected)


def test_explain_false_leaves_reasons_and_match_out(engine):
    user_id = engine.user_ids[3].item()
    for result in (
        engine.recommend(user_id, k=3, explain=False),
        engine.cold_start({engine.movie_key(1): 5.0}, k=3, explain=False),
        engine.similar_movies(engine.movie_key(1), k=3, explain=False),
        engine.recommend("nobody", k=3, explain=False),
    ):
        assert all(not ({"reasons", "match", "share_baseline"} & set(rec)) for rec in result["items"])


def test_a_rated_movies_share_predicts_what_removing_it_does_to_the_score(engine):
    """First order, checked against the real refit: drop each rating in turn, fold the user in again, and compare
    the item's score change with the share the explanation gave that rating (interaction and rating heads)."""
    rated = {
        engine.movie_key(i): r for i, r in zip(range(10, 22), [5, 4.5, 4, 2, 5, 3.5, 4, 1.5, 5, 4, 3, 4.5], strict=True)
    }
    item = engine.cold_start(rated, k=1)["items"][0]
    i = engine.item_index(item["movie_id"])
    user_items = np.array([engine.item_index(m) for m in rated], np.int64)
    values = np.array(list(rated.values()), np.float64)
    pr, p, _ = engine.fold_in(user_items, values)
    shares = engine.shares(engine.new_user(pr, p, user_items, values), np.array([i]))[:, 0]

    def stage1(items: np.ndarray, ratings: np.ndarray) -> float:
        """The user-dependent part of the item's score the shares explain: q'.p' + gamma w_mf q.p."""
        pr, p, _ = engine.fold_in(items, ratings)
        w = engine.w
        return float(w["item_rank"][i] @ pr + engine.gamma * engine.mf_weight * (w["item_mf"][i] @ p))

    full = stage1(user_items, values)
    drops = np.array([full - stage1(np.delete(user_items, j), np.delete(values, j)) for j in range(len(values))])
    assert np.corrcoef(drops, shares)[0, 1] > 0.8
    assert np.sign(drops[np.argmax(shares)]) == 1  # removing the first reason lowers the score


def test_similar_movies_say_how_many_people_liked_both(engine):
    result = engine.similar_movies(engine.movie_key(5), k=5)
    liked = engine.h_ratings >= 4.0
    users = np.repeat(np.arange(len(engine.h_indptr) - 1), np.diff(engine.h_indptr))
    fans = {int(u) for u in users[liked & (engine.h_items == 5)]}
    for rec in result["items"]:
        (reason,) = rec["reasons"]
        j = engine.item_index(rec["movie_id"])
        both = {int(u) for u in users[liked & (engine.h_items == j)]} & fans
        assert reason == {"kind": "liked_together", "users": len(both)}


def test_the_reasons_logits_are_the_factors_own_from_the_graph_and_from_an_older_artifact(engine):
    """The reasons read the user's softmax from the catalogue graph's "logits" output; an artifact exported before
    the graph had it recovers them from the stage-1 scores. Both are the interaction head's own logits."""
    u = 5
    own = engine.w["item_rank"] @ engine.w["user_rank"][u] + engine.w["item_rank_bias"]
    assert engine.graph_logits
    _, extras, row = engine.ranked_rows(np.array([u]), 5, True, None)[0]
    assert extras.logits[row] == pytest.approx(own, abs=1e-4)
    older = copy.copy(engine)
    older.graph_logits = False
    listed, extras, row = older.ranked_rows(np.array([u]), 5, True, None)[0]
    assert extras.logits[row] == pytest.approx(own, abs=1e-4)
    user = engine.rated_user(u)
    idx = np.array([engine.item_index(r["movie_id"]) for r in listed])
    assert engine.shares(user, idx, extras.logits[row]) == pytest.approx(engine.shares(user, idx), abs=1e-4)


def test_the_first_reason_is_the_rating_that_would_move_the_movie_furthest_down():
    """Hand-made shares over a ranked list of four movies (scores 10, 9.5, 9, 5): rating 0 has the largest share of
    movie 0's score but lifts movie 1 even more, so taking it away drops movie 0 below movie 2 only; rating 1's
    smaller share is movie 0's alone, and taking it away drops movie 0 below movies 1 and 2. Rating 2 lifts every
    movie alike and moves none."""
    from lambdas.engine.explain import Explain

    scores = np.array([10.0, 9.5, 9.0, 5.0])
    shares = np.array(
        [
            [3.0, 3.5, 0.0, 0.0],  # rating 0
            [1.2, 0.0, 0.0, 0.0],  # rating 1
            [0.1, 0.1, 0.1, 0.1],  # rating 2
        ]
    )
    rows = Explain.reason_rows(shares, scores, k=2)
    assert rows[:, 0].tolist() == [1, 0, 2]
    # movie 1: taking rating 0 away drops it below movie 2 (9.5 - 3.5 < 9); rating 1 lifts it over movie 0
    assert rows[0, 1] == 0
    assert Explain.reason_rows(shares[:0], scores, k=2).shape == (0, 2)


def test_the_reasons_are_chosen_among_the_ratings_that_lower_the_movie_most():
    """With more ratings than the pool, each listed movie's first reason is the one among the REASON_POOL ratings that
    lower its score most that would move it furthest down (counted here by brute force)."""
    from lambdas.engine.explain import REASON_POOL, Explain

    rng = np.random.default_rng(3)
    removal = rng.normal(0, 0.3, (REASON_POOL * 3, 20))
    scores = np.sort(rng.normal(3, 0.2, 20))[::-1]
    rows = Explain.reason_rows(removal, scores, k=10)
    assert rows.shape == (3, 10)
    for c in range(10):
        after = scores[None, :] - removal
        place = (after > after[:, [c]]).sum(axis=1)
        pool = np.argsort(-removal[:, c])[:REASON_POOL]
        assert rows[0, c] in pool and place[rows[0, c]] == place[pool].max()
        assert place[rows[1, c]] <= place[rows[0, c]]


def test_principal_directions_span_the_factors_largest_variance():
    from lambdas.engine.explain import principal_directions

    rng = np.random.default_rng(4)
    scales = np.array([5.0, 4.0, 3.0, 2.0, 0.3, 0.2, 0.1, 0.1, 0.05, 0.05])
    mixing = np.linalg.qr(rng.normal(size=(10, 10)))[0]
    factors = (rng.normal(size=(2000, 10)) * scales) @ mixing.T + 7.0  # an offset the covariance leaves out
    basis = principal_directions(factors.astype(np.float32), 4)
    assert basis.shape == (10, 4) and basis.dtype == np.float32
    assert basis.T @ basis == pytest.approx(np.eye(4), abs=1e-5)
    top = mixing[:, :4]  # the four directions with the largest spread
    assert basis @ basis.T == pytest.approx(top @ top.T, abs=0.02)
    assert principal_directions(factors.astype(np.float32), 64).shape == (10, 10)  # never more than R


def test_the_interaction_shares_go_through_the_inverse_hessian_in_the_principal_directions(engine):
    """The interaction head's removal effects are g_j^T H^-1 q'_i with H = W Cov + rank_l2 I under the user's
    softmax (here over the whole 80-movie catalogue): exact when the principal directions span the factors (R = 8
    here), and with r < R directions H^-1 is B (B^T H B)^-1 B^T + (I - B B^T) / rank_l2, computed independently."""

    from lambdas.engine.explain import principal_directions

    u = 7
    user = engine.rated_user(u)
    items = np.arange(10, 30)
    w, d = engine.w, engine.fold_in_defaults
    q = w["item_rank"].astype(np.float64)
    logits = q @ user.user_rank + w["item_rank_bias"]
    p = np.exp(logits - logits.max())
    p /= p.sum()
    weights = np.where(user.ratings >= d["liked_threshold"], d["liked_weight"], 1.0)
    weights = weights / weights.mean()
    mean = p @ q
    cov = (q - mean).T @ ((q - mean) * p[:, None])
    hess = weights.sum() * cov + user.rank_l2 * np.eye(q.shape[1])
    grads = (q[user.items] - mean) * weights[:, None]
    exact = grads @ np.linalg.solve(hess, q[items].T)

    basis = principal_directions(w["item_rank"], 3).astype(np.float64)
    approx_inv = basis @ np.linalg.inv(basis.T @ hess @ basis) @ basis.T + (np.eye(q.shape[1]) - basis @ basis.T) / (
        user.rank_l2
    )
    reduced = copy.copy(engine)
    reduced.use_basis(basis.astype(np.float32))
    full_shares, full_removal = engine.tables(user, items)
    shares, removal = reduced.tables(user, items)
    # The rating head's part is the same in both, so the difference is the interaction heads' difference.
    expected = exact - grads @ approx_inv @ q[items].T
    assert full_shares - shares == pytest.approx(expected, rel=1e-3, abs=1e-8)
    assert full_removal - removal == pytest.approx(expected, rel=1e-3, abs=1e-8)
    assert np.abs(expected).max() > 0.002 * np.abs(exact).max()  # three directions of eight do change the shares


def test_the_softmax_tail_enters_the_hessian_and_the_gradients_at_the_other_movies_plain_mean(engine, monkeypatch):
    """With a catalogue larger than the Hessian's movies (here 16 of 80), E[q'] is exact over the most probable ones
    and the rest's probability sits at their plain mean; the interaction shares follow, computed independently."""
    import lambdas.engine.explain as explain

    u, items = 3, np.arange(20, 40)
    user = engine.rated_user(u)
    w, d = engine.w, engine.fold_in_defaults
    q = w["item_rank"].astype(np.float64)
    basis = engine.rank_basis.astype(np.float64)
    weights = np.where(user.ratings >= d["liked_threshold"], d["liked_weight"], 1.0)
    weights = weights / weights.mean()

    def interaction(n_top: int) -> np.ndarray:
        logits = q @ user.user_rank + w["item_rank_bias"]
        p = np.exp(logits - logits.max())
        p /= p.sum()
        top = np.argsort(-logits)[:n_top]
        rest = np.setdiff1d(np.arange(len(q)), top)
        tail = (1.0 - p[top].sum()) / max(len(rest), 1)
        mean = p[top] @ q[top] + tail * q[rest].sum(axis=0)
        centred = (q[top] - mean) @ basis
        hess = weights.sum() * (centred.T * p[top]) @ centred + user.rank_l2 * np.eye(basis.shape[1])
        inverse = basis @ np.linalg.inv(hess) @ basis.T + (np.eye(q.shape[1]) - basis @ basis.T) / user.rank_l2
        return ((q[user.items] - mean) * weights[:, None]) @ inverse @ q[items].T

    whole, _ = engine.tables(user, items)  # all 80 movies: no tail
    monkeypatch.setattr(explain, "HESSIAN_TOP", 16)
    with_tail, _ = engine.tables(user, items)
    expected = interaction(16) - interaction(len(q))
    assert np.abs(expected).max() > 1e-3 * np.abs(whole).max()  # the tail does change the shares
    assert with_tail - whole == pytest.approx(expected, rel=1e-3, abs=1e-6)


def test_an_artifact_exported_before_the_graph_had_logits_is_detected_and_explained_the_same(small_artifact, tmp_path):
    """The catalogue graph of an older artifact has no "logits" output: the engine sees it and recovers them."""
    import shutil

    import onnx

    import contract
    from contract.artifact import file_entry

    older = tmp_path / "older"
    shutil.copytree(small_artifact, older)
    graph = onnx.load(older / contract.CATALOGUE_ONNX)
    kept = [o for o in graph.graph.output if o.name != "logits"]
    del graph.graph.output[:]
    graph.graph.output.extend(kept)
    onnx.save(graph, older / contract.CATALOGUE_ONNX)
    manifest = contract.read_manifest(older)
    manifest["files"][contract.CATALOGUE_ONNX] = file_entry(older / contract.CATALOGUE_ONNX)
    manifest["model_version"] = contract.content_version(manifest["files"])
    (older / contract.MANIFEST).write_text(json.dumps(manifest))

    new, old = Engine(small_artifact), Engine(older)
    assert new.graph_logits and not old.graph_logits
    for u in (1, 5, 9):
        a, b = new.recommend(new.user_ids[u].item(), k=5), old.recommend(old.user_ids[u].item(), k=5)
        assert [r["movie_id"] for r in a["items"]] == [r["movie_id"] for r in b["items"]]
        for x, y in zip(a["items"], b["items"], strict=True):
            assert [r["movie_id"] for r in x["reasons"]] == [r["movie_id"] for r in y["reasons"]]
            assert [r["share"] for r in x["reasons"]] == pytest.approx([r["share"] for r in y["reasons"]], abs=1e-4)
