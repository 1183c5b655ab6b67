"""Training batches and the interaction head's loss weights.

Two formulations of the same catalogue softmax (see :mod:`training.user_softmax`):

* ``per-rating`` (the original): each batch is ``batch_size`` shuffled ratings, and the softmax over the
  catalogue is computed once per rating, ``ratings x movies x rank_dim`` a epoch;
* ``per-user`` (the default): the rating head still gets the same shuffled rating batches, and the interaction
  head gets, in the same step, a group of whole users (shuffled users cut where their ratings add up to
  ``batch_size``). All of a user's ratings share one log-normaliser, computed once: ``users x movies x rank_dim``;
  past :data:`SAMPLE_FROM` movies it is estimated from a shared draw of :data:`SAMPLE_SIZE` movies per step
  (:class:`CatalogueSample`): ``users x SAMPLE_SIZE x rank_dim``.

Both give the interaction loss the same sum over an epoch: every rating's weighted cross-entropy divided by
``batch_size``; only the grouping of ratings into steps differs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from training.features import scale_time
from training.interactions import slice_positions

if TYPE_CHECKING:  # pragma: no cover
    from training.config import TrainConfig
    from training.interactions import Interactions

# Per-user softmax: catalogue rows a step computes, at least. A user's ratings are cut into chunks of
# batch_size // SOFTMAX_ROWS (8 at the default batch of 1,024), so a step's gradient still comes from about 128
# users (a per-rating step of 1,024 ratings holds 340 distinct users on ml-latest-small) at an eighth of the
# per-rating cost; whole users in a step (about 7 on ml-latest-small) ranked 0.015 NDCG@10 worse on u1.
SOFTMAX_ROWS = 128


def softmax_plan(train: Interactions, cfg: TrainConfig) -> tuple[int, float]:
    """The per-user softmax's chunk size and the users' interaction-factor learning-rate scale for this data.

    Chunk: ``cfg.softmax_chunk``, else ``batch_size // SOFTMAX_ROWS`` (0 means whole users). Scale:
    ``cfg.rank_user_lr_scale``, else the square root of how many more steps a user's factor row is touched in per
    epoch with per-rating batches (each step that holds one of their ratings) than with chunks (one per chunk).
    Adam normalises every step, so a row touched less often moves less per epoch; the square root is what brought
    u1 and ml-latest-small back to the per-rating ranking (docs/results.md, "Training at scale").
    """
    chunk = cfg.softmax_chunk if cfg.softmax_chunk is not None else max(1, cfg.batch_size // SOFTMAX_ROWS)
    if cfg.rank_user_lr_scale is not None:
        return chunk, float(cfg.rank_user_lr_scale)
    counts = np.bincount(train.users, minlength=train.n_users).astype(np.float64)
    counts = counts[counts > 0]
    if not len(counts):
        return chunk, 1.0
    steps = max(1.0, np.ceil(len(train.users) / cfg.batch_size))
    per_rating = steps * -np.expm1(counts * np.log1p(-1.0 / steps)) if steps > 1 else np.ones_like(counts)
    per_chunk = np.ceil(counts / chunk) if chunk > 0 else np.ones_like(counts)
    return chunk, float(max(1.0, np.sqrt(per_rating.mean() / per_chunk.mean())))


# Sampled normaliser (cfg.softmax_sample): past SAMPLE_FROM movies, each step takes SAMPLE_SIZE movies (the most
# rated half always, the other half drawn; CatalogueSample) and every softmax row of the step estimates its
# log-normaliser from them. Below it the whole
# catalogue is summed as before, so u1, ml-latest-small and the 1M and 10M shapes train exactly as they did.
SAMPLE_SIZE = 8192
SAMPLE_FROM = 2 * SAMPLE_SIZE


def softmax_sample_size(n_items: int, cfg: TrainConfig) -> int:
    """Movies drawn per step for the per-user softmax's normaliser: ``cfg.softmax_sample``, else
    :data:`SAMPLE_SIZE` past :data:`SAMPLE_FROM` movies; 0 (the whole catalogue) when the draw would not be
    smaller than the catalogue."""
    k = cfg.softmax_sample if cfg.softmax_sample is not None else (SAMPLE_SIZE if n_items > SAMPLE_FROM else 0)
    return k if 0 < k < n_items else 0


class CatalogueSample:
    """Each step's movies for the sampled normaliser, and each one's ``log`` weight in the estimate.

    Stratified: the ``head`` most-rated movies (half the sample by default) are in every step with weight 1 (log
    weight 0), summed exactly, as most of a row's probability is on them; ``size - head`` more are drawn with
    replacement from the rest with a proposal ``q`` that is half their training popularity and half uniform (the
    uniform half bounds every drawn movie's weight ``1 / (K q_j)``, K = ``size - head`` draws, by ``2 N_tail / K``,
    so no rarely drawn movie makes an estimate swing). ``Z_u ~ sum_head exp(s_uj) + (1/K) sum_k exp(s_u,j_k) / q_j_k``
    is an unbiased estimate of the row's normaliser, and ``log Z_u ~ logsumexp_k(s_u,j_k - log w_k)``
    (:func:`training.user_softmax.group_softmax_loss`).
    """

    def __init__(self, items: np.ndarray, n_items: int, size: int, seed: int, head: int | None = None) -> None:
        counts = np.bincount(np.asarray(items), minlength=n_items).astype(np.float64)
        head = size // 2 if head is None else int(head)
        if not 0 <= head < min(size, n_items):
            raise ValueError(f"the sample's head ({head}) must be below its size ({size}) and the catalogue's")
        order = np.argsort(-counts, kind="stable")
        self.head = np.sort(order[:head]).astype(np.int32)
        self.tail = np.sort(order[head:]).astype(np.int32)
        tail = counts[self.tail]
        self.q = 0.5 * tail / max(1.0, tail.sum()) + 0.5 / len(self.tail)
        self.q /= self.q.sum()
        self.cdf = np.cumsum(self.q)
        self.draws = int(size) - head
        self.rng = np.random.default_rng(seed)

    def draw(self) -> tuple[np.ndarray, np.ndarray]:
        """One step's movies (int32: the head, then the draws) and their log weights (float32: 0, then
        ``log(draws * q)``)."""
        k = np.minimum(np.searchsorted(self.cdf, self.rng.random(self.draws), side="right"), len(self.q) - 1)
        movies = np.concatenate([self.head, self.tail[k]])
        logw = np.concatenate([np.zeros(len(self.head)), np.log(self.draws * self.q[k])])
        return movies.astype(np.int32), logw.astype(np.float32)


def softmax_weights(train: Interactions, cfg: TrainConfig) -> np.ndarray:
    """Per-rating weights of the interaction head's softmax loss, mean 1.

    Well-rated movies count ``liked_weight`` times more as "chosen", and each rating of a user with ``n_u``
    training ratings is scaled by ``n_u ** -user_balance``: ranking quality is averaged over users, and without
    it the heaviest raters (ml-latest-small: 10% of the users give nearly half of the ratings) dominate the loss.
    """
    liked = np.where(train.ratings >= cfg.liked_threshold, cfg.liked_weight, 1.0)
    if cfg.user_balance <= 0 or not len(liked):
        w = liked.astype(np.float32)  # float32 throughout, as before user balancing existed (same numbers)
        return w / w.mean() if len(w) else w
    counts = np.bincount(train.users, minlength=train.n_users).astype(np.float64)
    w = liked.astype(np.float64) * counts[train.users] ** -cfg.user_balance
    return (w / w.mean()).astype(np.float32)


class UserGroups:
    """Users' ratings as softmax rows (all of a user's ratings, or chunks of at most ``chunk``), in a seeded
    random order, cut into ``n_steps`` groups of about ``batch_size`` ratings.

    A row belongs to the group where its first rating falls in the epoch's sequence of ``batch_size`` slots, so
    a row longer than a batch fills one group and leaves the next ones empty: every rating is in exactly one
    group, and the number of steps is the rating batches' own. Each epoch draws a new order of the rows and,
    with chunks, a new split of each user's ratings into them.
    """

    def __init__(
        self, users: np.ndarray, n_users: int, batch_size: int, n_steps: int, seed: int, chunk: int = 0
    ) -> None:
        self.users = np.asarray(users)
        self.batch_size, self.n_steps, self.chunk = batch_size, n_steps, chunk
        self.rng = np.random.default_rng(seed)
        self.counts = np.bincount(self.users, minlength=n_users).astype(np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]])
        per_user = np.ceil(self.counts / chunk).astype(np.int64) if chunk > 0 else (self.counts > 0).astype(np.int64)
        self.row_user = np.repeat(np.arange(n_users), per_user)
        within = np.arange(len(self.row_user)) - np.repeat(np.cumsum(per_user) - per_user, per_user)
        size = chunk if chunk > 0 else 0
        self.row_start = self.starts[self.row_user] + within * size
        self.row_len = (
            self.counts[self.row_user] if chunk <= 0 else np.minimum(chunk, self.counts[self.row_user] - within * chunk)
        )
        self.order = np.argsort(self.users, kind="stable").astype(np.int64)  # rating rows, grouped by user
        self.shuffle()

    def shuffle(self) -> None:
        """A new order of the softmax rows and the groups it makes (called once per epoch)."""
        if self.chunk > 0:  # a new split of each user's ratings into chunks: random order within the user
            perm = self.rng.permutation(len(self.users))
            self.order = perm[np.argsort(self.users[perm], kind="stable")]
        self.perm = self.rng.permutation(len(self.row_user))
        offsets = np.concatenate([[0], np.cumsum(self.row_len[self.perm])])
        group_of_row = np.minimum(offsets[:-1] // self.batch_size, self.n_steps - 1)
        self.bounds = np.searchsorted(group_of_row, np.arange(self.n_steps + 1), side="left")

    def group(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Group ``k``: the user of each softmax row, and for each rating its rating row and softmax row."""
        rows = self.perm[self.bounds[k] : self.bounds[k + 1]]
        lengths = self.row_len[rows]
        n = int(lengths.sum())
        if not n:
            return self.row_user[rows], np.zeros(0, np.int64), np.zeros(0, np.int64)
        ratings = self.order[slice_positions(self.row_start[rows], lengths)]
        return self.row_user[rows], ratings, np.repeat(np.arange(len(rows)), lengths)


def make_batches(train: Interactions, cfg: TrainConfig, with_head: bool, chunk: int | None = None):
    """A Keras ``PyDataset`` over the observed ratings, reshuffled with the run's seed every epoch.

    Per-rating: targets are the rating (rating head) and the item index (catalogue softmax), with the
    softmax weights as sample weights. Per-user: the inputs also carry the step's user group (``group_*``),
    and the target is the rating only; :class:`training.user_softmax.UserSoftmaxTrainer` computes both losses.
    """
    import keras

    per_user = with_head and cfg.softmax == "per-user"

    class Batches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__(workers=1, use_multiprocessing=False)
            self.rng = np.random.default_rng(cfg.seed)
            self.u = train.users.astype(np.int32)
            self.i = train.items.astype(np.int32)
            self.t = scale_time(train.timestamps) if cfg.model.time_feature and cfg.model.kind != "mf" else None
            self.w = softmax_weights(train, cfg)
            self.n_steps = int(np.ceil(len(self.u) / cfg.batch_size))
            self.groups = (
                UserGroups(
                    train.users,
                    train.n_users,
                    cfg.batch_size,
                    self.n_steps,
                    cfg.seed + 2,
                    softmax_plan(train, cfg)[0] if chunk is None else chunk,
                )
                if per_user
                else None
            )
            self.perm = self.rng.permutation(len(self.u))
            k = softmax_sample_size(train.n_items, cfg) if per_user else 0
            self.sample = CatalogueSample(train.items, train.n_items, k, cfg.seed + 4) if k else None

        def on_epoch_end(self) -> None:
            self.perm = self.rng.permutation(len(self.u))
            if self.groups is not None:
                self.groups.shuffle()

        def __len__(self) -> int:
            return self.n_steps

        def __getitem__(self, k: int):
            sel = self.perm[k * cfg.batch_size : (k + 1) * cfg.batch_size]
            x = {"user": self.u[sel], "item": self.i[sel]}
            if self.t is not None:
                x["time"] = self.t[sel]
            y = {"rating": train.ratings[sel]}
            if not with_head:
                return x, y
            if per_user:
                users, rows, pos = self.groups.group(k)
                x["group_users"] = users.astype(np.int32)
                x["group_pos"] = pos.astype(np.int32)
                x["group_items"] = self.i[rows]
                x["group_weights"] = self.w[rows]
                if self.sample is not None:
                    x["group_sample"], x["group_logq"] = self.sample.draw()
                return x, y
            y["interaction"] = self.i[sel]
            return x, y, {"rating": np.ones(len(sel), np.float32), "interaction": self.w[sel]}

    return Batches()
