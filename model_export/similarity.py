"""Item-item neighbour tables from the training histories ("movies similar to this one"), numpy and scipy only.

Every method starts from the co-occurrence of two movies in the users' training histories (the arrays the
artifact stores in ``catalogue.npz``: ``history_indptr``, ``history_items``, ``history_ratings``). With
``x_ui`` the weight of user ``u``'s rating of movie ``i`` (0 when not rated) and ``X`` the sparse
[users, movies] matrix of those weights:

* ``co(i, j) = sum_u x_ui x_uj`` (``X^T X``) and ``n_i = co(i, i)``;
* ``score(i, j) = co(i, j) / (n_i^alpha n_j^(1 - alpha))``: the plain cosine at ``alpha = 0.5``; a larger
  ``alpha`` discounts popular neighbours less (``alpha = 1`` is P(j | i), the "people who watched this also
  watched" list, which is mostly the most-rated films), a smaller one discounts them more;
* times ``co / (co + shrink)`` with ``shrink > 0``: pairs supported by a few users count less (``shrink`` is in
  the units of ``co``, so with ``user_exponent > 0`` it is large against it and acts as a weight on the support);
* ``(1 - factor_blend) score + factor_blend cos(q_i, q_j)`` with ``factor_blend > 0``: mixed with the cosine of
  the model's interaction-head item factors;
* times ``J(i, j)^genre_exponent`` with ``genre_exponent > 0``, ``J = (|G_i & G_j| + 1) / (|G_i | G_j| + 1)`` the
  smoothed Jaccard overlap of the two movies' genre sets (1 for the same genres, never 0: a pair with no genre in
  common is discounted, not dropped).

The weights: which ratings count (``min_rating``: only ratings >= it, e.g. 4 for "liked"; None: every rating),
and how much each user counts: every user adds ``n_u^-user_exponent`` to ``co`` for each pair, ``n_u`` being
their number of counted ratings (0: one vote per user and pair; heavy raters, who co-rate everything with
everything, dominate the plain count).

A pair no user supports (``co = 0``) has no score: it is never a neighbour. The table holds, per movie, its
``k`` best-scored neighbours (the movie itself excluded), best first, ties by the lower index; rows with fewer
than ``k`` supported neighbours are padded with index -1 and score -inf.

Cost: ``X^T X`` is computed a chunk of movies at a time (a sparse product, then a dense [chunk, movies] block,
then ``argpartition`` for the top k). Per counted rating of a user with ``n_u`` of them: ``n_u`` multiply-adds
(``sum_u n_u^2`` in all); per movie: a few passes over a row of all movies (movies^2 floats in all, 3.8e9 for
62,000 movies), whatever the number of ratings. Memory: the sparse matrix (8 bytes per counted rating, twice) plus
one block of about ``CHUNK_BYTES``; the table is ``8 k`` bytes per movie. At ml-25m size (62,000 movies, 24 M
ratings) the table takes about two minutes on two cores (docs/serving.md, "Similar movies").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp

# The dense block's size per chunk of movies (a few temporaries of [chunk, movies] float32 live at once).
CHUNK_BYTES = 128 << 20


@dataclass(frozen=True)
class SimilarityConfig:
    """One neighbour-scoring method; see the module docstring for the formula."""

    min_rating: float | None = None  # count only ratings >= this (None: every rating)
    user_exponent: float = 0.0  # each user adds n_u^-user_exponent to co(i, j)
    alpha: float = 0.5  # co / (n_i^alpha n_j^(1 - alpha)); 0.5 = cosine
    shrink: float = 0.0  # times co / (co + shrink)
    factor_blend: float = 0.0  # weight of the interaction-factor cosine (needs item factors)
    genre_exponent: float = 0.0  # times the smoothed genre Jaccard overlap to this power (needs item genres)

    def __post_init__(self) -> None:
        ok = 0.0 <= self.alpha <= 1.0 and 0.0 <= self.factor_blend <= 1.0
        if not (ok and self.shrink >= 0.0 and self.genre_exponent >= 0.0):
            raise ValueError(f"need 0 <= alpha, factor_blend <= 1 and shrink, genre_exponent >= 0, got {self}")

    def as_dict(self) -> dict:
        """The parameters as plain JSON values (what the manifest records)."""
        return asdict(self)


# What export serves, chosen with ``python -m bench.similar`` (docs/serving.md, "Similar movies"): of the settings
# tried, the best NDCG@10 on u1 and ml-latest-small among those that pass its sanity list. Liked ratings only, heavy
# raters discounted (n_u^-0.5 per pair), support-weighted (the weighted co-occurrence is far below the shrink, so its
# exact value, 20-100, changes nothing), movies of other genres discounted. Without the genre factor the lists rank
# better on the held-out protocol but lack Toy Story 3 for Toy Story and the prequels for each other; with exponent
# 1.1 Toy Story 2 still lacks Toy Story 3, from 1.75 Episode I lacks Episode II (1.25-1.6 pass; NDCG falls with it).
SERVED = SimilarityConfig(min_rating=4.0, user_exponent=0.5, shrink=50.0, genre_exponent=1.25)
TABLE_K = 100  # neighbours stored per movie (the API's largest k)


def genre_matrix(genre_indptr: np.ndarray, genre_ids: np.ndarray, n_genres: int) -> np.ndarray:
    """Bool [movies, genres] multi-hot from the artifact's CSR genre lists (``genre_indptr``, ``genre_ids``)."""
    indptr = np.asarray(genre_indptr, np.int64)
    out = np.zeros((len(indptr) - 1, n_genres), bool)
    out[np.repeat(np.arange(len(indptr) - 1), np.diff(indptr)), np.asarray(genre_ids, np.int64)] = True
    return out


def user_item_matrix(
    indptr: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    n_items: int,
    min_rating: float | None = None,
    user_exponent: float = 0.0,
) -> sp.csr_matrix:
    """The sparse [users, movies] weight matrix ``X`` of the histories (CSR, float32).

    ``indptr`` [users + 1] delimits each user's ``items`` / ``ratings``. Kept ratings (all, or those >=
    ``min_rating``) weigh ``n_u^(-user_exponent / 2)``, so that each user adds ``n_u^-user_exponent`` to
    ``X^T X`` per pair.
    """
    indptr = np.asarray(indptr, np.int64)
    n_users = len(indptr) - 1
    users = np.repeat(np.arange(n_users), np.diff(indptr))
    items = np.asarray(items, np.int64)
    keep = np.ones(len(items), bool) if min_rating is None else np.asarray(ratings) >= min_rating
    users, items = users[keep], items[keep]
    counts = np.bincount(users, minlength=n_users).astype(np.float64)
    weights = counts[users] ** (-user_exponent / 2.0) if user_exponent else np.ones(len(users))
    return sp.csr_matrix((weights.astype(np.float32), (users, items)), shape=(n_users, n_items), dtype=np.float32)


def top_k_rows(block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``block`` [rows, n], the ``k`` largest entries: (indices int32, scores float32) [rows, k].

    Sorted by score descending, ties by the lower index; -inf entries (no score) become index -1.
    """
    rows, n = block.shape
    k = min(k, n)
    if k == 0 or rows == 0:
        return np.full((rows, k), -1, np.int32), np.full((rows, k), -np.inf, np.float32)
    kth = -np.partition(-block, k - 1, axis=1)[:, k - 1 : k]  # the k-th largest value per row
    above = block > kth
    tied = block == kth
    # Of the entries equal to the k-th value, keep the lowest indices, as many as the row still needs.
    need = k - above.sum(axis=1, keepdims=True)
    chosen = above | (tied & (np.cumsum(tied, axis=1) <= need))
    idx = np.nonzero(chosen)[1].reshape(rows, k)  # ascending index within each row
    vals = np.take_along_axis(block, idx, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")  # stable: equal scores stay in index order
    idx, vals = np.take_along_axis(idx, order, axis=1), np.take_along_axis(vals, order, axis=1)
    missing = ~np.isfinite(vals)
    idx[missing], vals[missing] = -1, -np.inf
    return idx.astype(np.int32), vals.astype(np.float32)


class ItemSimilarity:
    """Scores of every movie against chosen movies by one :class:`SimilarityConfig`.

    Build it once from the histories (``from_histories``); ``rows`` gives dense score rows (what the
    evaluation ranks) and ``table`` the top-k neighbour table (what export stores).
    """

    def __init__(
        self,
        x: sp.csr_matrix,
        config: SimilarityConfig,
        item_factors: np.ndarray | None = None,
        item_genres: np.ndarray | None = None,
    ) -> None:
        if config.factor_blend and item_factors is None:
            raise ValueError("factor_blend needs the item factors")
        if config.genre_exponent and item_genres is None:
            raise ValueError("genre_exponent needs the item genres")
        self.config = config
        self.x = x.tocsr()
        self.xt = self.x.T.tocsr()  # [movies, users]: a chunk of movies is a row slice
        self.n_items = x.shape[1]
        self.norms = np.asarray(self.x.multiply(self.x).sum(axis=0)).ravel().astype(np.float64)
        self.factors = self.genres = None
        if config.factor_blend:
            f = np.asarray(item_factors, np.float64)
            norms = np.linalg.norm(f, axis=1, keepdims=True)
            self.factors = (f / np.where(norms > 0, norms, 1.0)).astype(np.float32)
        if config.genre_exponent:
            self.genres = np.asarray(item_genres, bool).astype(np.float32)  # [movies, genres] multi-hot
            self.genre_counts = self.genres.sum(axis=1)

    @classmethod
    def from_histories(
        cls,
        indptr: np.ndarray,
        items: np.ndarray,
        ratings: np.ndarray,
        n_items: int,
        config: SimilarityConfig,
        item_factors: np.ndarray | None = None,
        item_genres: np.ndarray | None = None,
    ) -> ItemSimilarity:
        """The scorer for the per-user histories (the ``catalogue.npz`` arrays); ``item_factors`` [movies, d] and
        ``item_genres`` (bool [movies, genres]) are needed only by the methods that use them."""
        x = user_item_matrix(indptr, items, ratings, n_items, config.min_rating, config.user_exponent)
        return cls(x, config, item_factors, item_genres)

    def rows(self, movies: np.ndarray) -> np.ndarray:
        """Dense float32 [len(movies), n_items] scores against ``movies``; -inf for the movie itself and for
        pairs no user supports."""
        movies = np.asarray(movies, np.int64)
        c = self.config
        co = (self.xt[movies] @ self.x).toarray()
        with np.errstate(divide="ignore", invalid="ignore"):
            left = self.norms[movies] ** c.alpha
            right = self.norms ** (1.0 - c.alpha)
            score = co / left[:, None].astype(np.float32)
            score /= right[None, :].astype(np.float32)
            if c.shrink:
                score *= co / (co + np.float32(c.shrink))
            if self.factors is not None:
                score *= np.float32(1.0 - c.factor_blend)
                score += np.float32(c.factor_blend) * (self.factors[movies] @ self.factors.T)
            if self.genres is not None:
                both = self.genres[movies] @ self.genres.T
                either = self.genre_counts[movies][:, None] + self.genre_counts[None, :] - both
                score *= ((both + 1.0) / (either + 1.0)) ** np.float32(c.genre_exponent)
        score[co <= 0] = -np.inf
        score[np.arange(len(movies)), movies] = -np.inf
        return score

    def chunk_size(self, chunk_bytes: int = CHUNK_BYTES) -> int:
        """Movies per dense block for about ``chunk_bytes`` of temporaries (four [chunk, movies] float32)."""
        return max(1, min(self.n_items, chunk_bytes // (16 * max(self.n_items, 1))))

    def table(self, k: int, chunk: int | None = None, progress=None) -> tuple[np.ndarray, np.ndarray]:
        """The top-``k`` neighbour table: (indices int32, scores float32) [n_items, k], padded with -1 / -inf.

        ``chunk`` movies are scored per block (default: :meth:`chunk_size`); any chunk size gives the same
        table. ``progress(done, total)`` is called after each block.
        """
        n = self.n_items
        chunk = chunk or self.chunk_size()
        indices = np.full((n, k), -1, np.int32)
        scores = np.full((n, k), -np.inf, np.float32)
        for start in range(0, n, chunk):
            movies = np.arange(start, min(start + chunk, n))
            idx, vals = top_k_rows(self.rows(movies), k)
            indices[movies, : idx.shape[1]], scores[movies, : vals.shape[1]] = idx, vals
            if progress is not None:
                progress(movies[-1] + 1, n)
        return indices, scores


def neighbour_table(
    indptr: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    n_items: int,
    config: SimilarityConfig,
    k: int,
    item_factors: np.ndarray | None = None,
    item_genres: np.ndarray | None = None,
    chunk: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each movie's ``k`` best neighbours from the per-user histories: (indices int32, scores float32)
    [n_items, k], best first, ties by the lower index, the movie itself excluded, padded with -1 / -inf."""
    sim = ItemSimilarity.from_histories(indptr, items, ratings, n_items, config, item_factors, item_genres)
    return sim.table(k, chunk)


def liked_together(
    indptr: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    table: np.ndarray,
    min_rating: float = 4.0,
    chunk_bytes: int = CHUNK_BYTES,
) -> np.ndarray:
    """For each movie and each of its ``table`` neighbours, how many users rated both ``min_rating`` or more:
    int32 [n_items, k], 0 where the table has no neighbour (-1). What a similar-movies list says links the two.

    Cost: one sparse product per chunk of movies, as for the table (unweighted, liked ratings only).
    """
    n_items, k = table.shape
    x = user_item_matrix(indptr, items, ratings, n_items, min_rating, 0.0)
    xt = x.T.tocsr()
    chunk = max(1, min(n_items, chunk_bytes // (8 * max(n_items, 1))))
    out = np.zeros((n_items, k), np.int32)
    for start in range(0, n_items, chunk):
        movies = np.arange(start, min(start + chunk, n_items))
        co = (xt[movies] @ x).toarray()
        cols = table[movies]
        counts = np.take_along_axis(co, np.maximum(cols, 0).astype(np.int64), axis=1)
        out[movies] = np.where(cols >= 0, np.rint(counts), 0).astype(np.int32)
    return out


def catalogue_table(
    catalogue: dict[str, np.ndarray], config: SimilarityConfig, k: int, item_factors: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`neighbour_table` from the ``catalogue.npz`` arrays (histories, and genres if the method uses them)."""
    n_items = len(catalogue["item_ids"])
    genres = None
    if config.genre_exponent:
        genres = genre_matrix(catalogue["genre_indptr"], catalogue["genre_ids"], len(catalogue["genre_names"]))
    return neighbour_table(
        catalogue["history_indptr"],
        catalogue["history_items"],
        catalogue["history_ratings"],
        n_items,
        config,
        k,
        item_factors,
        genres,
    )
