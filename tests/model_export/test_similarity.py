"""Neighbour tables (model_export/similarity.py) on hand-built histories, and the engine serving them."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from model_export.similarity import (
    SERVED,
    TABLE_K,
    ItemSimilarity,
    SimilarityConfig,
    genre_matrix,
    neighbour_table,
    top_k_rows,
    user_item_matrix,
)

# Three users, four movies (per user: items, ratings):
#   user 0: movies 0, 1, 2 rated 5, 4, 2;  user 1: movies 0, 1 rated 4, 5;  user 2: movies 1, 3 rated 3, 4.
# Co-occurrence (every rating counts): co(0,1) = 2, co(0,2) = co(1,2) = co(1,3) = 1, co(0,3) = co(2,3) = 0;
# rating counts n = 2, 3, 1, 1.
INDPTR = np.array([0, 3, 5, 7])
ITEMS = np.array([0, 1, 2, 0, 1, 1, 3])
RATINGS = np.array([5, 4, 2, 4, 5, 3, 4], np.float32)
N_ITEMS = 4
C01, C02, C12 = 2 / np.sqrt(6), 1 / np.sqrt(2), 1 / np.sqrt(3)  # cosines; co(1,3) gives C12 too


def table(config: SimilarityConfig = SimilarityConfig(), k: int = 3, **kw):
    return neighbour_table(INDPTR, ITEMS, RATINGS, N_ITEMS, config, k, **kw)


def test_cosine_known_answer_excludes_the_movie_itself_and_pads_rows_without_neighbours():
    idx, scores = table()
    assert idx.dtype == np.int32 and scores.dtype == np.float32 and idx.shape == scores.shape == (4, 3)
    np.testing.assert_array_equal(idx, [[1, 2, -1], [0, 2, 3], [0, 1, -1], [1, -1, -1]])
    expected = [[C01, C02, -np.inf], [C01, C12, C12], [C02, C12, -np.inf], [C12, -np.inf, -np.inf]]
    np.testing.assert_allclose(scores, expected, rtol=1e-6)


def test_equal_scores_are_ordered_by_index():
    # Movie 1's neighbours 2 and 3 tie (1/sqrt(3)): the lower index comes first, and with k = 2 only movie 2 fits.
    idx, _ = table(k=2)
    np.testing.assert_array_equal(idx[1], [0, 2])
    block = np.array([[1.0, 3.0, 3.0, 2.0, 3.0, -np.inf]], np.float32)
    np.testing.assert_array_equal(top_k_rows(block, 2)[0], [[1, 2]])
    np.testing.assert_array_equal(top_k_rows(block, 4)[0], [[1, 2, 4, 3]])
    idx, vals = top_k_rows(block, 6)
    np.testing.assert_array_equal(idx, [[1, 2, 4, 3, 0, -1]])
    assert vals[0, -1] == -np.inf


def test_liked_only_counts_ratings_of_four_or_more():
    # Liked: user 0 -> 0, 1; user 1 -> 0, 1; user 2 -> 3. Movie 2 was never liked, movie 3 shares no user.
    idx, scores = table(SimilarityConfig(min_rating=4.0))
    np.testing.assert_array_equal(idx, [[1, -1, -1], [0, -1, -1], [-1, -1, -1], [-1, -1, -1]])
    np.testing.assert_allclose(scores[:2, 0], [1.0, 1.0], rtol=1e-6)


def test_user_exponent_makes_each_user_add_n_u_to_the_minus_exponent():
    x = user_item_matrix(INDPTR, ITEMS, RATINGS, N_ITEMS, user_exponent=1.0)
    co = (x.T @ x).toarray()
    assert co[0, 1] == pytest.approx(1 / 3 + 1 / 2)  # users 0 (3 ratings) and 1 (2 ratings)
    assert co[1, 1] == pytest.approx(1 / 3 + 1 / 2 + 1 / 2)
    _, scores = table(SimilarityConfig(user_exponent=1.0))
    assert scores[0, 0] == pytest.approx((5 / 6) / np.sqrt(5 / 6 * 4 / 3), rel=1e-6)


def test_asymmetric_cosine_shrink_genres_and_factor_blend():
    # alpha = 1: co(i, j) / n_i, P(j | i).
    _, scores = table(SimilarityConfig(alpha=1.0))
    np.testing.assert_allclose(scores[0, :2], [1.0, 0.5], rtol=1e-6)
    # Shrink 1: times co / (co + 1).
    _, scores = table(SimilarityConfig(shrink=1.0))
    np.testing.assert_allclose(scores[0, :2], [C01 * 2 / 3, C02 * 1 / 2], rtol=1e-6)
    # Genres {A}, {A, B}, {B}, {}: smoothed Jaccard (|both| + 1) / (|either| + 1) = 2/3 for (0, 1), 1/3 for (0, 2).
    genres = genre_matrix(np.array([0, 1, 3, 4, 4]), np.array([0, 0, 1, 1]), 2)
    idx, scores = table(SimilarityConfig(genre_exponent=1.0), item_genres=genres)
    np.testing.assert_allclose(scores[0, :2], [C01 * 2 / 3, C02 / 3], rtol=1e-6)
    # Factor blend 0.5 with cos(q0, q1) = 0 and cos(q0, q2) = 1: movie 2 overtakes movie 1; movie 3 stays unsupported.
    factors = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [1.0, 1.0]])
    idx, scores = table(SimilarityConfig(factor_blend=0.5), item_factors=factors)
    np.testing.assert_array_equal(idx[0], [2, 1, -1])
    np.testing.assert_allclose(scores[0, :2], [0.5 * C02 + 0.5, 0.5 * C01], rtol=1e-6)


def test_methods_that_need_factors_or_genres_say_so():
    x = user_item_matrix(INDPTR, ITEMS, RATINGS, N_ITEMS)
    with pytest.raises(ValueError, match="factor"):
        ItemSimilarity(x, SimilarityConfig(factor_blend=0.3))
    with pytest.raises(ValueError, match="genres"):
        ItemSimilarity(x, SimilarityConfig(genre_exponent=1.0))
    with pytest.raises(ValueError):
        SimilarityConfig(alpha=1.5)


def random_histories(n_users=60, n_items=45, seed=3):
    rng = np.random.default_rng(seed)
    items, ratings, indptr = [], [], [0]
    for _ in range(n_users):
        rated = rng.choice(n_items, size=rng.integers(1, 15), replace=False)
        items.append(rated)
        ratings.append(rng.integers(1, 11, len(rated)) / 2)
        indptr.append(indptr[-1] + len(rated))
    return np.array(indptr), np.concatenate(items), np.concatenate(ratings).astype(np.float32), n_items


def test_any_chunk_size_gives_the_same_table_as_one_block_and_as_a_dense_reference():
    indptr, items, ratings, n = random_histories()
    genres = np.random.default_rng(4).random((n, 5)) < 0.4
    for config in (SimilarityConfig(), SERVED):
        sim = ItemSimilarity.from_histories(indptr, items, ratings, n, config, item_genres=genres)
        whole = sim.table(10, chunk=n)
        for chunk in (1, 7, 16):
            parts = sim.table(10, chunk=chunk)
            np.testing.assert_array_equal(parts[0], whole[0])
            np.testing.assert_array_equal(parts[1], whole[1])
    # Plain cosine against numpy on the dense 0/1 matrix.
    dense = np.zeros((len(indptr) - 1, n))
    dense[np.repeat(np.arange(len(indptr) - 1), np.diff(indptr)), items] = 1.0
    co = dense.T @ dense
    norms = np.sqrt(np.diag(co))
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = np.where(co > 0, co / np.outer(norms, norms), -np.inf)
    np.fill_diagonal(cos, -np.inf)
    idx, scores = neighbour_table(indptr, items, ratings, n, SimilarityConfig(), 10)
    for i in range(n):
        ref = sorted((-cos[i, j], j) for j in range(n) if np.isfinite(cos[i, j]))[:10]
        valid = idx[i] >= 0
        # The same scores best first (equal cosines may differ in the last float32 bit, so not the indices).
        np.testing.assert_allclose(scores[i][valid], [-s for s, _ in ref], rtol=1e-5)
        np.testing.assert_allclose(scores[i][valid], cos[i, idx[i][valid]], rtol=1e-5)
        assert i not in idx[i]


def test_the_table_is_deterministic():
    indptr, items, ratings, n = random_histories(seed=5)
    a = neighbour_table(indptr, items, ratings, n, SimilarityConfig(min_rating=4.0, user_exponent=0.5), 8)
    b = neighbour_table(indptr, items, ratings, n, SimilarityConfig(min_rating=4.0, user_exponent=0.5), 8)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


# ------------------------------------------------------------------ the exported table and the engine


@pytest.fixture(scope="module")
def engine(small_artifact):
    pytest.importorskip("onnxruntime")
    from lambdas.engine import Engine

    return Engine(small_artifact)


def test_export_stores_the_served_table_and_records_its_method(engine):
    cat, manifest = engine.artifact.catalogue, engine.artifact.manifest
    n = engine.n_items
    assert cat["similar_items"].shape == cat["similar_scores"].shape == (n, TABLE_K)
    assert cat["similar_items"].dtype == np.int32 and cat["similar_scores"].dtype == np.float32
    assert manifest["similarity"]["k"] == TABLE_K and manifest["similarity"]["params"] == SERVED.as_dict()
    assert engine.similar_k == TABLE_K
    from model_export.similarity import catalogue_table

    idx, scores = catalogue_table(cat, SERVED, TABLE_K, engine.w["item_rank"])
    np.testing.assert_array_equal(idx, cat["similar_items"])
    np.testing.assert_array_equal(scores, cat["similar_scores"])


def test_engine_serves_the_table(engine):
    cat = engine.artifact.catalogue
    i = 10
    row, row_scores = cat["similar_items"][i], cat["similar_scores"][i]
    res = engine.similar_movies(engine.item_ids[i].item(), k=5)
    assert res["strategy"] == "similar" and res["movie"]["movie_id"] == engine.item_ids[i]
    assert [m["movie_id"] for m in res["items"]] == engine.item_ids[row[:5]].tolist()
    np.testing.assert_allclose([m["score"] for m in res["items"]], row_scores[:5], atol=1e-6)


def test_past_the_table_the_list_continues_in_factor_cosine_order_with_score_0(engine):
    cat = engine.artifact.catalogue
    # A movie with the fewest stored neighbours (synthetic ratings: every row may be full, then nothing to extend).
    i = int(np.argmin((cat["similar_items"] >= 0).sum(axis=1)))
    valid = cat["similar_items"][i][cat["similar_items"][i] >= 0]
    items = engine.similar_movies(engine.item_ids[i].item(), k=engine.n_items)["items"]
    ids = [m["movie_id"] for m in items]
    assert len(ids) == len(set(ids)) == engine.n_items - 1 and engine.item_ids[i] not in ids
    assert ids[: len(valid)] == engine.item_ids[valid].tolist()
    assert all(m["score"] == 0.0 for m in items[len(valid) :])


def test_an_artifact_without_a_table_falls_back_to_the_factor_cosine(small_artifact, tmp_path):
    pytest.importorskip("onnxruntime")
    from contract import content_version, sha256_file
    from lambdas.engine import Engine

    old = tmp_path / "old-artifact"
    shutil.copytree(small_artifact, old)
    with np.load(old / "catalogue.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if not k.startswith("similar_")}
    with open(old / "catalogue.npz", "wb") as f:
        np.savez(f, **arrays)
    manifest = json.loads((old / "manifest.json").read_text())
    manifest.pop("similarity")
    path = old / "catalogue.npz"
    manifest["files"]["catalogue.npz"] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    manifest["model_version"] = content_version(manifest["files"])
    (old / "manifest.json").write_text(json.dumps(manifest))
    e = Engine(old)
    assert e.similar_k == e.n_items
    rank = e.w["item_rank"] / np.linalg.norm(e.w["item_rank"], axis=1, keepdims=True)
    cos = rank @ rank[10]
    cos[10] = -np.inf
    res = e.similar_movies(e.item_ids[10].item(), k=5)
    assert [m["movie_id"] for m in res["items"]] == e.item_ids[np.argsort(-cos, kind="stable")[:5]].tolist()
    np.testing.assert_allclose([m["score"] for m in res["items"]], np.sort(cos)[::-1][:5], atol=1e-5)
