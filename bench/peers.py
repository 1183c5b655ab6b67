"""Peer models for the quality benchmark, in integer index space.

Every model here works on users ``0..n_users-1`` and items ``0..n_items-1`` only, so it does not
depend on our loaders; a score function is ``score(user_idx) -> (len(user_idx), n_items)`` as
:data:`training.metrics.ScoreFn` expects.

* :class:`EASE`: Steck (2019) closed-form item-item model, numpy (scipy used when present).
* :class:`ImplicitPeer`: ALS / BPR from the ``implicit`` package (CPU models).
* :class:`SurprisePeer`: SVD / SVD++ from ``scikit-surprise``.

``implicit`` and ``surprise`` are imported lazily, inside the classes, so this module imports
without ``requirements-bench.txt`` installed.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from training.interactions import Interactions
from training.interface import RecommenderModel

__all__ = ["EASE", "ImplicitPeer", "SurprisePeer"]


def _as_index(a: np.ndarray | list[int], name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integer indices, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _check_pairs(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    users, items = _as_index(users, "users"), _as_index(items, "items")
    if users.shape != items.shape:
        raise ValueError(f"users and items differ in length: {users.shape} vs {items.shape}")
    if users.size and (users.min() < 0 or users.max() >= n_users):
        raise ValueError(f"user indices must lie in [0, {n_users})")
    if items.size and (items.min() < 0 or items.max() >= n_items):
        raise ValueError(f"item indices must lie in [0, {n_items})")
    return users, items


def _default_threads() -> int:
    """Worker threads for the peers: at most 2, the size of the benchmark machine."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(2, cores))


class EASE(RecommenderModel):
    """Embarrassingly Shallow Autoencoder (Steck, WWW 2019) on the binary user-item matrix.

    ``B = I - P diagMat(1 / diag(P))`` with ``P = (X^T X + lam I)^{-1}``, i.e. ``B_ij = -P_ij / P_jj``
    off the diagonal and ``diag(B) = 0``; scores are ``X_u B``. Repeated (user, item) pairs count once.
    The Gram matrix and its inverse are dense float64 (n_items^2 each: 0.76 GB at 9,742 items).
    """

    ranks = True

    def __init__(self, lam: float = 400.0) -> None:
        self.n_users = 0
        self.n_items = 0
        self.lam = float(lam)
        self.name = f"EASE (lambda {lam:g})"
        self.B: np.ndarray | None = None
        self._indptr = np.zeros(1, dtype=np.int64)
        self._indices = np.zeros(0, dtype=np.int64)

    def fit(self, train: Interactions) -> EASE:
        return self.fit_pairs(train.users, train.items, train.n_users, train.n_items)

    def fit_pairs(
        self, users: np.ndarray, items: np.ndarray, n_users: int, n_items: int, lam: float | None = None
    ) -> EASE:
        """Fit on interaction pairs (any rating counts as a positive); ``lam`` defaults to the constructor's."""
        lam = self.lam if lam is None else lam
        users, items = _check_pairs(users, items, n_users, n_items)
        if lam <= 0:
            raise ValueError("lam must be positive")
        # Distinct (user, item) pairs, sorted by user: a CSR view of the binary matrix X.
        keys = np.unique(users * n_items + items)
        u, i = keys // n_items, keys % n_items
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.add.at(indptr, u + 1, 1)
        self._indptr, self._indices = np.cumsum(indptr), i
        self.n_users, self.n_items, self.lam = n_users, n_items, float(lam)

        gram = self._gram(u, i)
        gram[np.diag_indices_from(gram)] += lam
        p = self._inv_spd(gram)
        del gram
        p /= -np.diag(p)[None, :]  # B_ij = -P_ij / P_jj
        p[np.diag_indices_from(p)] = 0.0
        self.B = p
        return self

    def _gram(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        """Dense X^T X (float64) for the distinct pairs (u, i)."""
        try:
            import scipy.sparse as sp
        except ImportError:  # numpy only: accumulate dense row blocks
            gram = np.zeros((self.n_items, self.n_items), dtype=np.float64)
            block = max(1, min(self.n_users, 2**25 // max(self.n_items, 1)))
            for start in range(0, self.n_users, block):
                x = self._rows(np.arange(start, min(start + block, self.n_users)))
                gram += x.T @ x
            return gram
        x = sp.csr_matrix((np.ones(len(u)), (u, i)), shape=(self.n_users, self.n_items), dtype=np.float64)
        return np.asarray((x.T @ x).toarray(), dtype=np.float64)

    @staticmethod
    def _inv_spd(a: np.ndarray) -> np.ndarray:
        """Inverse of a symmetric positive definite matrix (Cholesky via LAPACK when scipy is present)."""
        try:
            from scipy.linalg import lapack
        except ImportError:
            return np.linalg.inv(a)
        # a is symmetric, so its transpose is the same matrix in Fortran order: LAPACK works in place.
        c, info = lapack.dpotrf(a.T, lower=False, overwrite_a=True, clean=False)
        if info != 0:
            raise np.linalg.LinAlgError(f"dpotrf failed, info={info}")
        inv, info = lapack.dpotri(c, lower=False, overwrite_c=True)
        if info != 0:
            raise np.linalg.LinAlgError(f"dpotri failed, info={info}")
        upper = np.triu(inv)  # dpotri fills one triangle only
        return upper + np.triu(upper, 1).T

    def _rows(self, user_idx: np.ndarray) -> np.ndarray:
        """Dense binary rows of X for ``user_idx``."""
        x = np.zeros((len(user_idx), self.n_items), dtype=np.float64)
        for r, u in enumerate(user_idx):
            x[r, self._indices[self._indptr[u] : self._indptr[u + 1]]] = 1.0
        return x

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        """Scores ``X[user_idx] @ B``, shape (len(user_idx), n_items); training items are not masked."""
        if self.B is None:
            raise RuntimeError("EASE is not fitted")
        user_idx = _as_index(user_idx, "user_idx")
        if user_idx.size and (user_idx.min() < 0 or user_idx.max() >= self.n_users):
            raise ValueError(f"user indices must lie in [0, {self.n_users})")
        return self._rows(user_idx) @ self.B


class ImplicitPeer(RecommenderModel):
    """ALS or BPR from the ``implicit`` package (CPU models) on the binary user-item matrix.

    ``alpha`` scales the confidence of ALS (``C = 1 + alpha * X`` in implicit's notation) and
    ``learning_rate`` is BPR's step size. BLAS is held to one thread during ``fit``, as implicit
    recommends; ``num_threads`` (default: ``min(2, cores)``) are implicit's own worker threads.
    """

    def __init__(
        self,
        algorithm: str = "als",
        factors: int = 64,
        iterations: int | None = None,
        regularization: float | None = None,
        random_state: int | None = 0,
        alpha: float = 1.0,
        learning_rate: float = 0.01,
        num_threads: int | None = None,
    ) -> None:
        if algorithm not in ("als", "bpr"):
            raise ValueError(f"algorithm must be 'als' or 'bpr', got {algorithm!r}")
        self.algorithm = algorithm
        self.name = f"implicit {algorithm.upper()}"
        self.factors = int(factors)
        # implicit's own defaults when not given: ALS 15 iterations, BPR 100; regularization 0.01.
        self.iterations = int(iterations) if iterations is not None else (15 if algorithm == "als" else 100)
        self.regularization = float(regularization) if regularization is not None else 0.01
        self.random_state = random_state
        self.alpha = float(alpha)
        self.learning_rate = float(learning_rate)
        self.num_threads = int(num_threads) if num_threads is not None else _default_threads()
        self.n_users = 0
        self.n_items = 0
        self.user_factors: np.ndarray | None = None
        self.item_factors: np.ndarray | None = None

    ranks = True

    def fit(self, train: Interactions) -> ImplicitPeer:
        return self.fit_pairs(train.users, train.items, train.n_users, train.n_items)

    def fit_pairs(self, users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> ImplicitPeer:
        """Fit on interaction pairs; the user x item CSR passed to implicit has all n_users x n_items."""
        import scipy.sparse as sp
        from implicit.cpu.als import AlternatingLeastSquares
        from implicit.cpu.bpr import BayesianPersonalizedRanking
        from threadpoolctl import threadpool_limits

        users, items = _check_pairs(users, items, n_users, n_items)
        x = sp.csr_matrix(
            (np.ones(len(users), dtype=np.float32), (users, items)), shape=(n_users, n_items), dtype=np.float32
        )
        x.sum_duplicates()
        x.data[:] = 1.0  # binary, however often a pair repeats
        # implicit checks the BLAS thread count when a model is built, so build and fit under the limit;
        # the imports above come first because threadpoolctl only limits BLAS libraries already loaded.
        with threadpool_limits(1, "blas"):
            if self.algorithm == "als":
                model: Any = AlternatingLeastSquares(
                    factors=self.factors,
                    regularization=self.regularization,
                    alpha=self.alpha,
                    iterations=self.iterations,
                    num_threads=self.num_threads,
                    random_state=self.random_state,
                )
            else:
                model = BayesianPersonalizedRanking(
                    factors=self.factors,
                    learning_rate=self.learning_rate,
                    regularization=self.regularization,
                    iterations=self.iterations,
                    num_threads=self.num_threads,
                    random_state=self.random_state,
                )
            model.fit(x, show_progress=False)
        # BPR's factors carry an item-bias column (and a ones column for users): a plain dot includes it.
        self.user_factors = np.asarray(model.user_factors, dtype=np.float64)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float64)
        self.n_users, self.n_items = n_users, n_items
        return self

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        """Dot-product scores, shape (len(user_idx), n_items)."""
        if self.user_factors is None or self.item_factors is None:
            raise RuntimeError("ImplicitPeer is not fitted")
        user_idx = _as_index(user_idx, "user_idx")
        return self.user_factors[user_idx] @ self.item_factors.T


class SurprisePeer(RecommenderModel):
    """SVD or SVD++ from ``scikit-surprise``, fitted on explicit ratings.

    Our indices are handed to surprise as raw ids; surprise renumbers them into inner ids in order of
    first appearance, and ``fit`` keeps the index -> inner id maps (``-1`` when unknown to training).
    ``predict`` goes through surprise's own ``predict``, so unknown users or items are treated exactly
    as surprise treats them: for biased SVD and SVD++ ``mu`` plus whichever bias is known, which is the
    global mean when both are unknown; for unbiased SVD the global mean. ``score`` reproduces the same
    estimates from the fitted arrays, vectorised. Both clip into the rating scale unless ``clip=False``.
    """

    rates = ranks = True

    def __init__(
        self,
        algorithm: str = "svd",
        random_state: int | None = 0,
        rating_scale: tuple[float, float] = (0.5, 5.0),
        **params: Any,
    ) -> None:
        if algorithm not in ("svd", "svdpp"):
            raise ValueError(f"algorithm must be 'svd' or 'svdpp', got {algorithm!r}")
        self.algorithm = algorithm
        self.random_state = random_state
        self.params = params
        self.algo: Any = None
        self.n_users = 0
        self.n_items = 0
        self.rating_scale = (float(rating_scale[0]), float(rating_scale[1]))
        self.name = "Surprise SVD" if algorithm == "svd" else "Surprise SVD++"
        self.global_mean = float("nan")
        self.user_inner = np.zeros(0, dtype=np.int64)
        self.item_inner = np.zeros(0, dtype=np.int64)
        self._pu: np.ndarray | None = None  # per inner user: p_u, plus |I_u|^-1/2 sum y_j for SVD++
        self._qi: np.ndarray | None = None
        self._bu: np.ndarray | None = None
        self._bi: np.ndarray | None = None
        self._biased = True

    def fit(self, train: Interactions) -> SurprisePeer:
        return self.fit_ratings(
            train.users, train.items, train.ratings, self.rating_scale, n_users=train.n_users, n_items=train.n_items
        )

    def fit_ratings(
        self,
        users: np.ndarray,
        items: np.ndarray,
        ratings: np.ndarray,
        rating_scale: tuple[float, float] = (0.5, 5.0),
        *,
        n_users: int | None = None,
        n_items: int | None = None,
    ) -> SurprisePeer:
        """Fit on (user, item, rating) triples; ``n_users``/``n_items`` default to max index + 1."""
        import pandas as pd
        from surprise import SVD, Dataset, Reader, SVDpp

        users, items = _as_index(users, "users"), _as_index(items, "items")
        n_users = int(users.max()) + 1 if n_users is None else int(n_users)
        n_items = int(items.max()) + 1 if n_items is None else int(n_items)
        users, items = _check_pairs(users, items, n_users, n_items)
        ratings = np.asarray(ratings, dtype=np.float64)
        if ratings.shape != users.shape:
            raise ValueError("ratings and users differ in length")

        df = pd.DataFrame({"user": users, "item": items, "rating": ratings})
        trainset = Dataset.load_from_df(df, Reader(rating_scale=rating_scale)).build_full_trainset()
        cls = SVD if self.algorithm == "svd" else SVDpp
        algo = cls(random_state=self.random_state, **self.params)
        algo.fit(trainset)

        self.algo = algo
        self.n_users, self.n_items = n_users, n_items
        self.rating_scale = (float(rating_scale[0]), float(rating_scale[1]))
        self.global_mean = float(trainset.global_mean)
        self.user_inner = np.full(n_users, -1, dtype=np.int64)
        self.item_inner = np.full(n_items, -1, dtype=np.int64)
        for inner in trainset.all_users():
            self.user_inner[int(trainset.to_raw_uid(inner))] = inner
        for inner in trainset.all_items():
            self.item_inner[int(trainset.to_raw_iid(inner))] = inner

        self._biased = bool(getattr(algo, "biased", True))
        self._bu = np.asarray(algo.bu, dtype=np.float64)
        self._bi = np.asarray(algo.bi, dtype=np.float64)
        self._qi = np.asarray(algo.qi, dtype=np.float64)
        pu = np.array(algo.pu, dtype=np.float64)
        if self.algorithm == "svdpp":
            # SVD++: q_i . (p_u + |I_u|^-1/2 sum_{j in I_u} y_j), I_u as in trainset.ur (repeats included).
            yj = np.asarray(algo.yj, dtype=np.float64)
            for u_inner, rated in trainset.ur.items():
                js = np.fromiter((j for j, _ in rated), dtype=np.int64, count=len(rated))
                pu[u_inner] += yj[js].sum(axis=0) / np.sqrt(len(js))
        self._pu = pu
        return self

    def predict(
        self, users: np.ndarray, items: np.ndarray, times: np.ndarray | None = None, clip: bool = True
    ) -> np.ndarray:
        """Predicted ratings for the pairs, through surprise's ``predict``; indices < 0 mean unknown."""
        if self.algo is None:
            raise RuntimeError("SurprisePeer is not fitted")
        users, items = _as_index(users, "users"), _as_index(items, "items")
        if users.shape != items.shape:
            raise ValueError("users and items differ in length")
        # Any index that training never saw (negative included) is an unknown raw id to surprise.
        predict = self.algo.predict
        return np.fromiter(
            (predict(int(u), int(i), clip=clip).est for u, i in zip(users, items, strict=True)),
            dtype=np.float64,
            count=len(users),
        )

    def score(self, user_idx: np.ndarray, clip: bool = True) -> np.ndarray:
        """Predicted-rating matrix, shape (len(user_idx), n_items), vectorised over the fitted factors."""
        if self.algo is None or self._pu is None or self._qi is None or self._bu is None or self._bi is None:
            raise RuntimeError("SurprisePeer is not fitted")
        user_idx = _as_index(user_idx, "user_idx")
        if user_idx.size and (user_idx.min() < 0 or user_idx.max() >= self.n_users):
            raise ValueError(f"user indices must lie in [0, {self.n_users})")
        u_in = self.user_inner[user_idx]
        i_in = self.item_inner
        ku, ki = u_in >= 0, i_in >= 0
        out = np.full((len(user_idx), self.n_items), self.global_mean, dtype=np.float64)
        if self._biased:
            out[ku] += self._bu[u_in[ku]][:, None]
            out[:, ki] += self._bi[i_in[ki]][None, :]
            out[np.ix_(ku, ki)] += self._pu[u_in[ku]] @ self._qi[i_in[ki]].T
        else:  # unbiased SVD: pure dot product, global mean (surprise's default) when either is unknown
            out[np.ix_(ku, ki)] = self._pu[u_in[ku]] @ self._qi[i_in[ki]].T
        if clip:
            np.clip(out, self.rating_scale[0], self.rating_scale[1], out=out)
        return out
