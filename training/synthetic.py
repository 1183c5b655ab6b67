"""Seeded synthetic ratings with a known structure, for tests, scale runs and checking what a model can learn.

* :func:`low_rank_ratings`: dense-ish continuous ratings from a low-rank model (tests);
* :func:`catalogue`: a large popularity-skewed catalogue with uniformly random ratings (speed and memory runs);
* :func:`movielens_like`: ratings shaped like a MovieLens release (users' and movies' counts, the half-star scale,
  timestamps), drawn from a known choice-and-rating model that it returns as a :class:`GroundTruth`, so the best
  achievable figures can be computed (:mod:`training.ceiling`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd


def low_rank_ratings(
    n_users: int = 300,
    n_items: int = 200,
    rank: int = 4,
    density: float = 0.1,
    noise: float = 0.1,
    seed: int = 0,
) -> pd.DataFrame:
    """Ratings = clip(3 + user bias + item bias + U V^T + noise) on a random ``density`` of pairs.

    Returns the normalised table (user_id, movie_id, rating, timestamp); ratings are continuous in
    [1, 5] so a model that recovers the structure gets an RMSE near ``noise``.
    """
    rng = np.random.default_rng(seed)
    u = rng.normal(0, 1 / np.sqrt(rank), (n_users, rank))
    v = rng.normal(0, 1 / np.sqrt(rank), (n_items, rank))
    bu = rng.normal(0, 0.3, n_users)
    bi = rng.normal(0, 0.3, n_items)
    n = int(density * n_users * n_items)
    flat = rng.choice(n_users * n_items, size=n, replace=False)
    users, items = flat // n_items, flat % n_items
    r = 3.0 + bu[users] + bi[items] + np.sum(u[users] * v[items], axis=1) + rng.normal(0, noise, n)
    return pd.DataFrame(
        {
            "user_id": users.astype(np.int64),
            "movie_id": items.astype(np.int64),
            "rating": np.clip(r, 1.0, 5.0).astype(np.float32),
            "timestamp": rng.integers(1_000_000_000, 1_600_000_000, n),
        }
    )


def catalogue(n_users: int, n_items: int, ratings_per_user: int = 20, seed: int = 0) -> pd.DataFrame:
    """A large sparse synthetic catalogue (popularity-skewed items) for scale and speed runs."""
    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    pop /= pop.sum()
    users = np.repeat(np.arange(n_users), ratings_per_user)
    items = rng.choice(n_items, size=len(users), p=pop)
    frame = pd.DataFrame({"user_id": users, "movie_id": items}).drop_duplicates()
    frame["rating"] = rng.integers(1, 11, len(frame)).astype(np.float32) / 2
    frame["timestamp"] = rng.integers(1_000_000_000, 1_600_000_000, len(frame))
    return frame.reset_index(drop=True)


# --------------------------------------------------------------------------- MovieLens-shaped, from a known model


@dataclass(frozen=True)
class TasteParams:
    """The constants of :func:`movielens_like`'s choice and rating model (the model is described there).

    The defaults resemble ml-latest-small; :data:`SHAPES` holds ml-100k's (tuned by comparing the summary statistics
    of :func:`ratings_summary` and what popularity, EASE and implicit ALS reach on the real and the synthetic sets:
    ``python -m bench.synthetic_check``).
    """

    rank: int = 8  # dimensions of the taste space
    min_per_user: int = 20  # MovieLens keeps users with at least 20 ratings
    count_sigma: float = 1.45  # log-normal spread of a user's number of ratings beyond min_per_user
    max_user_share: float = 0.28  # nobody rates more than this share of the movies
    popularity_sigma: float = 3.0  # log-normal spread of the movies' popularity
    mainstream_sigma: float = 0.4  # log-normal spread of the users' weight on popularity (median 1)
    taste: float = 2.2  # weight of taste (x_u . y_i, standard normal) against log popularity in the choice logit
    rating_mean: float = 3.55  # mean latent rating of the chosen pairs (mu is set to give it)
    user_bias: float = 0.45  # standard deviation of b_u
    user_bias_count: float = -0.12  # correlation of b_u with the log of the user's number of ratings
    movie_bias: float = 0.4  # standard deviation of b_i
    movie_bias_popularity: float = 0.3  # correlation of b_i with log popularity
    affinity: float = 0.45  # standard deviation of x_u . z_i in the latent rating
    liked_chosen: float = 0.7  # correlation of z_i with y_i: how much what a user likes is what they choose
    noise: float = 0.65  # standard deviation of the rating noise's normal part
    disappointed: float = 0.07  # share of ratings a disappointment lowers (the long low tail of real ratings)
    disappointment: float = 1.8  # by how many stars
    whole_star_users: float = 0.3  # on a half-star scale, the share of users who give whole stars only
    activity_days: float = 30.0  # median time between a user's first and last rating


@dataclass(frozen=True)
class Shape:
    """A MovieLens release's size and rating scale, and the constants that make synthetic data resemble it."""

    n_users: int
    n_movies: int
    n_ratings: int
    scale: tuple[float, float] = (0.5, 5.0)
    step: float = 0.5
    time_span: tuple[int, int] = (828_000_000, 1_537_800_000)  # unix seconds of the first and last rating
    params: TasteParams = field(default_factory=TasteParams)


CHUNK = 1 << 22  # pairs (or users x movies) worked on at a time
HEAD = 4096  # past exact_cells: the most popular movies, whose keys are drawn for every user
BANDS = 8  # past exact_cells: bands of the users' weight on popularity, one candidate distribution each

SHAPES: dict[str, Shape] = {
    "ml-latest-small": Shape(610, 9_742, 100_836),
    "ml-100k": Shape(
        943,
        1_682,
        100_000,
        scale=(1.0, 5.0),
        step=1.0,
        time_span=(874_700_000, 893_300_000),
        params=TasteParams(
            count_sigma=1.0,
            max_user_share=0.44,
            popularity_sigma=2.15,
            taste=2.0,
            rating_mean=3.58,
            user_bias=0.5,
            user_bias_count=0.1,
            movie_bias=0.45,
            movie_bias_popularity=0.8,
            affinity=0.55,
            noise=0.75,
            disappointment=2.0,
        ),
    ),
    # ml-25m: its users' counts (median 71, mean 154, the most 32,202 of 59,047 movies), ml-latest-small's model.
    "ml-25m": Shape(
        162_000,
        62_000,
        25_000_000,
        time_span=(789_600_000, 1_574_300_000),
        params=TasteParams(count_sigma=1.4, max_user_share=0.5),
    ),
}


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """The model :func:`movielens_like` drew its ratings from; row ``u`` is user_id ``u``, row ``i`` movie_id ``i``.

    * choice logit ``l_ui = mainstream_u * log_popularity_i + taste_u . choice_i``: a user's movies are a draw
      without replacement, each next movie chosen with probability proportional to ``exp(l_ui)``;
    * latent rating ``m_ui = mean + user_bias_u + movie_bias_i + taste_u . liking_i``, the expected rating before
      rounding; the observed one is ``m_ui`` plus a mean-zero noise (normal with sd ``noise``, less
      ``disappointment`` stars for a ``disappointed`` share of ratings, plus that share times it), rounded to the
      user's ``step`` and clipped into ``scale``.
    """

    log_popularity: np.ndarray  # (n_movies,)
    mainstream: np.ndarray  # (n_users,) how much popularity weighs in each user's choice
    taste: np.ndarray  # (n_users, rank)
    choice: np.ndarray  # (n_movies, rank), the taste weight folded in
    liking: np.ndarray  # (n_movies, rank), the affinity folded in
    mean: float
    user_bias: np.ndarray  # (n_users,)
    movie_bias: np.ndarray  # (n_movies,)
    noise: float
    disappointed: float
    disappointment: float
    step: np.ndarray  # (n_users,) each user's rounding step: the scale's, or 1.0 for a whole-star user
    scale: tuple[float, float]
    counts: np.ndarray  # (n_users,) how many movies each user chose

    @property
    def n_users(self) -> int:
        return len(self.taste)

    @property
    def n_movies(self) -> int:
        return len(self.log_popularity)

    def choice_logits(self, users: np.ndarray, movies: np.ndarray | None = None) -> np.ndarray:
        """``l_ui`` for every movie (a ``(len(users), n_movies)`` matrix), or for the pairs ``(users, movies)``."""
        users = np.asarray(users)
        if movies is None:
            return self.mainstream[users, None] * self.log_popularity[None, :] + self.taste[users] @ self.choice.T
        movies = np.asarray(movies)
        return self.mainstream[users] * self.log_popularity[movies] + _rowdot(self.taste[users], self.choice[movies])

    def movies(self, keep: np.ndarray) -> GroundTruth:
        """The model on the movies ``keep`` (indices or a mask), renumbered in that order."""
        return replace(
            self,
            log_popularity=self.log_popularity[keep],
            choice=self.choice[keep],
            liking=self.liking[keep],
            movie_bias=self.movie_bias[keep],
        )

    def expected_ratings(self, users: np.ndarray, movies: np.ndarray | None = None) -> np.ndarray:
        """``m_ui``, the expected rating before rounding and clipping, for every movie or for the pairs."""
        users = np.asarray(users)
        if movies is None:
            return (
                self.mean + self.user_bias[users, None] + self.movie_bias[None, :] + self.taste[users] @ self.liking.T
            )
        movies = np.asarray(movies)
        return (
            self.mean
            + self.user_bias[users]
            + self.movie_bias[movies]
            + _rowdot(self.taste[users], self.liking[movies])
        )

    def draw_noise(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` draws of the rating noise."""
        down = rng.random(n) < self.disappointed
        return rng.normal(0.0, self.noise, n) - self.disappointment * (down - self.disappointed)

    def observe(self, users: np.ndarray, latent: np.ndarray) -> np.ndarray:
        """Noisy latent ratings of ``users`` as they are written down: rounded to each user's step, clipped."""
        step = self.step[users]
        return np.clip(np.round(latent / step) * step, np.maximum(self.scale[0], step), self.scale[1])

    def liked_probability(self, users: np.ndarray, threshold: float = 4.0) -> np.ndarray:
        """P(observed rating >= ``threshold``) for every movie, ``(len(users), n_movies)``."""
        from scipy.special import ndtr

        users = np.asarray(users)
        # Rounding to step s reaches the threshold from threshold - s/2 on (clipping never moves a rating across it).
        gap = self.expected_ratings(users) + self.disappointed * self.disappointment
        gap -= threshold - self.step[users, None] / 2
        return (1 - self.disappointed) * ndtr(gap / self.noise) + self.disappointed * ndtr(
            (gap - self.disappointment) / self.noise
        )

    def inclusion_probability(self, users: np.ndarray) -> np.ndarray:
        """P(the movie is among the user's chosen ones) for every movie, ``(len(users), n_movies)``.

        A draw of n_u without replacement keeps the n_u largest of ``l_ui + Gumbel noise``; its inclusion
        probabilities are close to ``1 - exp(-exp(l_ui - tau_u))``, with the threshold ``tau_u`` at which they add
        up to n_u.
        """
        users = np.asarray(users)
        logits = self.choice_logits(users)
        return -np.expm1(-np.exp(logits - gumbel_threshold(logits, self.counts[users])[:, None]))


def _unit(a: np.ndarray) -> np.ndarray:
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-300)


def _rowdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, b)


def gumbel_threshold(
    logits: np.ndarray,
    counts: np.ndarray,
    iterations: int = 50,
    start: np.ndarray | None = None,
    tolerance: float = 1e-7,
) -> np.ndarray:
    """Per row, tau with ``sum_i 1 - exp(-exp(logits_i - tau)) = counts`` (the sum falls as tau grows).

    Newton steps kept inside a bracket (bisecting when a step leaves it) until the sum is within ``tolerance`` x
    counts, from ``start`` if given (e.g. the solution for a similar matrix); ``counts`` must be below the number of
    finite logits of the row.
    """
    logits = np.asarray(logits, np.float64)
    k = np.asarray(counts, np.float64)
    ks = np.asarray(counts, np.int64)
    # Each row's k-th largest logit: the largest max(k) of every row, sorted, then each row's own.
    most = int(ks.max())
    largest = -np.sort(-np.partition(logits, logits.shape[1] - most, axis=1)[:, -most:], axis=1)
    kth = largest[np.arange(len(ks)), ks - 1]
    # At the log-sum-exp less log k every term is below exp(l - tau), so the sum is at most k; 5 below the k-th
    # largest logit those k terms are each above 1 - exp(-e^5) and nearly make k on their own: bracket them.
    top = logits.max(axis=1)
    hi = top + np.log(np.exp(logits - top[:, None]).sum(axis=1)) - np.log(k)
    lo = np.minimum(kth - 5.0, hi)
    tau = hi.copy() if start is None else np.clip(start, lo, hi)
    rows = np.arange(len(tau))  # the rows still moving
    for _ in range(iterations):
        e = np.exp(logits[rows] - tau[rows, None])
        kept = np.exp(-e)  # 1 - kept is the inclusion probability
        gap = (1.0 - kept).sum(axis=1) - k[rows]
        moving = np.abs(gap) > tolerance * k[rows]
        rows, e, kept, gap = rows[moving], e[moving], kept[moving], gap[moving]
        if not len(rows):
            break
        lo[rows] = np.where(gap > 0, tau[rows], lo[rows])
        hi[rows] = np.where(gap > 0, hi[rows], tau[rows])
        step = tau[rows] + gap / np.maximum((e * kept).sum(axis=1), 1e-300)
        inside = (step >= lo[rows]) & (step <= hi[rows])
        tau[rows] = np.where(inside, step, (lo[rows] + hi[rows]) / 2)
    return tau


def movielens_like(
    shape: str | Shape = "ml-latest-small",
    seed: int = 0,
    *,
    exact_cells: int = 200_000_000,
    oversample: float = 6.0,
) -> tuple[pd.DataFrame, GroundTruth]:
    """Ratings shaped like a MovieLens release, drawn from a known model; returns them and the model.

    ``shape`` is a name in :data:`SHAPES` (``ml-latest-small``, ``ml-100k``, ``ml-25m``) or a :class:`Shape`.
    The model (its constants are ``shape.params``, a :class:`TasteParams`; the drawn values are the
    :class:`GroundTruth`):

    * each user rates ``min_per_user`` plus a log-normal number of movies (spread ``count_sigma``), scaled so the
      total is ``n_ratings`` and capped at ``max_user_share`` of the movies;
    * movie popularity is log-normal (``popularity_sigma``), and each user weighs it by a log-normal ``mainstream_u``
      (``mainstream_sigma``, median 1); tastes ``x_u`` are ``N(0, I)`` in ``rank`` dimensions, the movies' choice
      factors ``y_i`` unit vectors times ``taste`` and their liking factors ``z_i`` unit vectors, correlated with
      ``y_i`` (``liked_chosen``), times ``affinity``;
    * a user's movies are drawn without replacement, each next one with probability proportional to
      ``popularity_i ** mainstream_u * exp(x_u . y_i)``;
    * the rating is ``mu + b_u + b_i + x_u . z_i`` plus noise (normal, and a ``disappointment`` for a
      ``disappointed`` share), rounded to the scale's step (whole stars for a ``whole_star_users`` share of users on
      a half-star scale) and clipped into the scale; b_u correlates with the user's number of ratings, b_i with the
      movie's popularity, and mu makes the chosen pairs' latent ratings average ``rating_mean``.

    The draw runs on a latent catalogue larger than ``n_movies``, sized so that about ``n_movies`` of its movies are
    chosen by someone (MovieLens lists rated movies only); those are numbered ``0..`` in catalogue order, in the
    frame and in the truth. The frame is the normalised one (user_id, movie_id int64, rating float32, timestamp
    int64), sorted by user and time. Up to ``exact_cells`` users x movies the draw is exact; past it, exact over the
    most popular movies and, for the rest, from about ``oversample`` times as many candidates as the user takes there,
    drawn by taste and popularity and weighted back to the model (:func:`_choose`; exact in the limit, and within
    1% of the exact draw's mean choice logit and taste at 6,000 users x 20,000 movies).
    """
    sh = SHAPES[shape] if isinstance(shape, str) else shape
    p = sh.params
    rng = np.random.default_rng(seed)
    counts = _user_counts(rng, sh.n_users, sh.n_ratings, p.min_per_user, p.count_sigma, p.max_user_share * sh.n_movies)

    most = 3 * sh.n_movies
    log_pop = rng.normal(0.0, p.popularity_sigma, most)
    # Unit-length movie factors: x_u . y_i is N(0, 1) for every movie, so taste moves no movie's popularity overall.
    choice = _unit(rng.normal(0.0, 1.0, (most, p.rank)))
    liking = _unit(p.liked_chosen * choice + np.sqrt(1 - p.liked_chosen**2) * _unit(rng.normal(0.0, 1.0, choice.shape)))
    step = np.full(sh.n_users, sh.step)
    if sh.step < 1.0:
        step[rng.random(sh.n_users) < p.whole_star_users] = 1.0
    truth = GroundTruth(
        log_popularity=log_pop,
        mainstream=np.exp(rng.normal(0.0, p.mainstream_sigma, sh.n_users)),
        taste=rng.normal(0.0, 1.0, (sh.n_users, p.rank)),
        choice=p.taste * choice,
        liking=p.affinity * liking,
        mean=0.0,  # set below
        user_bias=p.user_bias * _correlated(rng, np.log(counts), p.user_bias_count),
        movie_bias=p.movie_bias * _correlated(rng, log_pop, p.movie_bias_popularity),
        noise=p.noise,
        disappointed=p.disappointed,
        disappointment=p.disappointment,
        step=step,
        scale=sh.scale,
        counts=counts,
    )
    truth = truth.movies(slice(0, _catalogue_size(rng, truth, sh.n_movies)))
    users, movies = _choose(rng, truth, exact_cells, oversample)

    # mu: what makes the chosen pairs' latent ratings average rating_mean (choosing by taste raises them).
    chunks = _slices(len(users), CHUNK)
    ratings = np.empty(len(users), np.float32)
    for c in chunks:
        ratings[c] = truth.expected_ratings(users[c], movies[c])
    truth = replace(truth, mean=p.rating_mean - float(ratings.mean(dtype=np.float64)))
    for c in chunks:
        ratings[c] = truth.observe(users[c], ratings[c] + truth.mean + truth.draw_noise(rng, len(users[c])))
    times = _timestamps(rng, counts, sh.time_span, p.activity_days)

    # Keep the movies somebody chose, numbered in catalogue order.
    chosen = np.bincount(movies, minlength=truth.n_movies) > 0
    movies = (np.cumsum(chosen) - 1)[movies]
    truth = truth.movies(chosen)
    order = np.lexsort((times, users))
    frame = pd.DataFrame(
        {
            "user_id": users[order].astype(np.int64),
            "movie_id": movies[order].astype(np.int64),
            "rating": ratings[order],
            "timestamp": times[order],
        }
    )
    return frame, truth


def _user_counts(
    rng: np.random.Generator, n_users: int, n_ratings: int, least: int, sigma: float, cap: float
) -> np.ndarray:
    """Each user's number of ratings: ``least`` plus a log-normal share, summing to ``n_ratings``, at most ``cap``."""
    cap = int(cap)
    if not n_users * least <= n_ratings <= n_users * cap:
        raise ValueError(f"{n_ratings:,} ratings do not fit {n_users:,} users with {least} to {cap:,} ratings each")
    extra = rng.lognormal(0.0, sigma, n_users)

    def wanted(s: float) -> np.ndarray:
        return np.minimum(cap, least + extra * s)

    lo, hi = 0.0, n_ratings / extra.min()
    for _ in range(200):  # the total grows with s: bisect to n_ratings
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if wanted(mid).sum() < n_ratings else (lo, mid)
    target = wanted(hi)
    counts = np.floor(target).astype(np.int64)
    # Flooring lost less than one rating per user: the largest fractional parts (never at the cap) get one more.
    counts[np.argsort(counts - target, kind="stable")[: n_ratings - int(counts.sum())]] += 1
    return counts


def _correlated(rng: np.random.Generator, v: np.ndarray, rho: float) -> np.ndarray:
    """Standard normal values with correlation ``rho`` to ``v``."""
    std = (v - v.mean()) / (v.std() or 1.0)
    return rho * std + np.sqrt(1 - rho**2) * rng.normal(0.0, 1.0, len(v))


def _catalogue_size(rng: np.random.Generator, truth: GroundTruth, n_movies: int, sample: int = 192) -> int:
    """The catalogue (a prefix of ``truth``'s movies) in which about ``n_movies`` get chosen by someone.

    From a sample of users' inclusion probabilities (:func:`gumbel_threshold`), a movie goes unchosen by everybody
    with probability ``exp(-sum_u exp(l_ui - tau_u))``; a few secant steps on the catalogue size find the size.
    """
    # The heaviest users weigh most in which movies get chosen at all: take them all, and a random sample of the rest.
    counts = truth.counts
    by_count = np.argsort(-counts, kind="stable")
    heavy, rest = by_count[: sample // 2], by_count[sample // 2 :]
    light = rng.choice(rest, min(len(rest), sample - len(heavy)), replace=False) if len(rest) else rest
    who = np.r_[heavy, light]
    weight = np.r_[np.ones(len(heavy)), np.full(len(light), len(rest) / max(len(light), 1))]
    logits = truth.choice_logits(who)
    most = truth.n_movies

    tau = None

    def chosen(n: int) -> float:
        nonlocal tau
        part = logits[:, :n]
        # Warm started (n changes a little), and a count to 0.1% is plenty here.
        tau = gumbel_threshold(part, np.minimum(counts[who], n - 1), start=tau, tolerance=1e-3)
        return float(-np.expm1(-(weight @ np.exp(part - tau[:, None]))).sum())

    n0, d0 = n_movies, chosen(n_movies)
    n1 = min(most, int(np.ceil(n_movies * n_movies / max(d0, 1.0))))
    d1 = chosen(n1) if n1 != n0 else d0
    for _ in range(4):
        if d1 == d0 or abs(d1 - n_movies) < 0.002 * n_movies:
            break
        n2 = int(np.clip(round(n1 + (n_movies - d1) * (n1 - n0) / (d1 - d0)), n_movies, most))
        n0, d0, n1 = n1, d1, n2
        d1 = chosen(n1)
    return n1


def _choose(
    rng: np.random.Generator, truth: GroundTruth, exact_cells: int, oversample: float
) -> tuple[np.ndarray, np.ndarray]:
    """Every user's movies, drawn without replacement by the choice logits: (users, movies), by user.

    A draw of n_u without replacement keeps the n_u largest of ``l_ui + Gumbel noise``. Up to ``exact_cells`` users x
    movies every key is drawn. Past it only the HEAD most popular movies' are; the rest of the catalogue (the tail)
    offers candidates drawn from a :class:`_Proposal` with keys that stand for theirs (see :func:`_tail_keys`), about
    ``oversample`` times as many as the user is expected to take from the tail.
    """
    n_users, n = truth.n_users, truth.n_movies
    counts = truth.counts
    by_popularity = np.argsort(-truth.log_popularity, kind="stable")
    exact = n_users * n <= exact_cells or n <= HEAD
    head, tail = (by_popularity, by_popularity[:0]) if exact else (by_popularity[:HEAD], by_popularity[HEAD:])
    draws = np.zeros(n_users, np.int64)
    band = np.zeros(n_users, np.int64)
    proposals: list[_Proposal] = []
    if len(tail):
        # One proposal per band of the users' weight on popularity, drawing by popularity ** (the band's median): a
        # proposal must not fall far short of the target anywhere (resampling can thin candidates, not add them).
        edges = np.quantile(truth.mainstream, np.linspace(0, 1, BANDS + 1))
        band = np.clip(np.searchsorted(edges, truth.mainstream, side="right") - 1, 0, BANDS - 1)
        group = _groups(rng, truth, tail)
        for b in range(BANDS):
            members = truth.mainstream[band == b]
            proposal = _Proposal(truth, tail, group, float(np.median(members)) if len(members) else 1.0)
            proposals.append(proposal)
            mine = band == b
            draws[mine] = proposal.draws_for(oversample * counts[mine] * proposal.share + 8)
    whole = draws < 0  # the tail cannot offer them enough: every key drawn
    draws[whole] = 0
    # Users by number of ratings, so that the users of a chunk keep about as many of the head's keys each.
    order = np.argsort(counts, kind="stable")
    cost = len(head) + draws[order]
    cuts = np.searchsorted(np.cumsum(cost), np.arange(CHUNK, cost.sum(), CHUNK))
    out_u, out_i = [], []
    for a, b in itertools.pairwise(np.unique(np.r_[0, cuts, n_users])):
        users = order[a:b]
        users = users[~whole[users]]
        keys = _head_keys(rng, truth, head, users)
        parts = [keys[:3]]
        skip = np.zeros(len(users), bool)
        for k, proposal in enumerate(proposals):
            mine = np.flatnonzero(band[users] == k)
            if len(mine):
                # As many draws as make ``oversample`` times the movies the user is expected to take from the tail:
                # by its estimated share of their choice weight, and at least what the head cannot hold.
                lw = proposal.group_weights(truth, users[mine])
                top = lw.max(axis=1)
                log_tail = top + np.log(np.exp(lw - top[:, None]).sum(axis=1)) + proposal.log_shift
                share = 1 / (1 + np.exp(keys[3][mine] - log_tail))
                expected = np.maximum(counts[users[mine]] * share, counts[users[mine]] - len(head) / 2)
                wanted = proposal.draws_for(oversample * expected + 8)
                fine = wanted > 0
                skip[mine[~fine]] = True
                if fine.any():
                    parts.append(_tail_keys(rng, truth, proposal, users, mine[fine], wanted[fine], lw[fine]))
        u, i, short = _top(users, counts, *(np.concatenate(x) for x in zip(*parts, strict=True)), skip)
        whole[users[skip]] = True
        whole[short] = True
        out_u.append(u)
        out_i.append(i)
    everyone = np.flatnonzero(whole)  # users short of candidates, and those the tail could not serve
    for c in _slices(len(everyone), max(1, CHUNK // n)):
        users = everyone[c]
        u, i, _ = _top(users, counts, *_head_keys(rng, truth, by_popularity, users)[:3])
        out_u.append(u)
        out_i.append(i)
    u = np.concatenate(out_u)
    by_user = np.argsort(u, kind="stable")
    return u[by_user], np.concatenate(out_i)[by_user]


class _DrawsFor:
    """Draws (with replacement, by ``prob``) expected to give ``distinct`` different movies; -1 where none do."""

    def __init__(self, prob: np.ndarray) -> None:
        self.grid = np.geomspace(1.0, 64.0 * len(prob), 96)
        self.reached = np.array([-np.expm1(-m * prob).sum() for m in self.grid])

    def __call__(self, distinct: np.ndarray) -> np.ndarray:
        out = np.ceil(np.exp(np.interp(distinct, self.reached, np.log(self.grid)))).astype(np.int64)
        out[distinct > self.reached[-1]] = -1
        return out


def _head_keys(
    rng: np.random.Generator, truth: GroundTruth, head: np.ndarray, users: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(position in ``users``, movie, key): each user's largest keys ``l_ui + Gumbel noise`` among the ``head``
    movies, as many as they rate (at most all of the head); and per user the log of the head's choice weight,
    ``logsumexp_i l_ui``."""
    if not len(users):
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
    # float32: half the time of float64 on the largest arrays here; keys of a few units keep 6 digits.
    f32 = np.float32
    keys = truth.mainstream[users, None].astype(f32) * truth.log_popularity[head].astype(f32)
    keys += truth.taste[users].astype(f32) @ truth.choice[head].T.astype(f32)
    top = keys.max(axis=1)
    log_weight = (top + np.log(np.exp(keys - top[:, None]).sum(axis=1))).astype(np.float64)
    keys -= np.log(-np.log(np.maximum(rng.random(keys.shape, dtype=f32), np.finfo(f32).tiny)))  # Gumbel noise
    most = min(len(head), int(truth.counts[users].max()))
    top = np.argpartition(-keys, most - 1, axis=1)[:, :most] if most < len(head) else np.indices(keys.shape)[1]
    positions = np.repeat(np.arange(len(users)), most)
    return positions, head[top].ravel(), np.take_along_axis(keys, top, axis=1).ravel(), log_weight


def _tail_keys(
    rng: np.random.Generator,
    truth: GroundTruth,
    proposal: _Proposal,
    users: np.ndarray,
    at: np.ndarray,
    draws: np.ndarray,
    lw: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(position in ``users``, movie, key) for the distinct candidates of ``draws[j]`` draws from ``proposal`` for
    ``users[at[j]]``, whose :meth:`_Proposal.group_weights` are ``lw[j]``.

    The draws are a Poisson process on [0, 1] in which movie i arrives at rate m q_i (m draws, q_i its proposal
    probability); its first arrival T_i (the least of its c arrival times, ``1 - U ** (1 / c)``) has
    ``P(T_i < t) = 1 - exp(-m q_i t)``, so ``l_ui - log(m q_i) - log T_i`` has the law of ``l_ui + Gumbel noise``
    above ``l_ui - log(m q_i)``: exact wherever the threshold a user's draw reaches lies above that, which is where
    the proposal offers the movie at least as often as the draw would take it.
    """
    n = truth.n_movies
    local, movies, log_q = proposal.draw(rng, draws, lw)
    codes, first, times = np.unique(local * n + movies, return_index=True, return_counts=True)
    lu, movies = codes // n, codes % n
    first_arrival = -np.expm1(np.log(rng.random(len(codes))) / times)
    logits = truth.choice_logits(users[at[lu]], movies)
    keys = logits - log_q[first] - np.log(draws[lu]) - np.log(first_arrival)
    return at[lu], movies, keys


def _top(
    users: np.ndarray,
    counts: np.ndarray,
    positions: np.ndarray,
    movies: np.ndarray,
    keys: np.ndarray,
    skip: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each of ``users``' ``counts`` candidates (at ``positions`` in ``users``) with the largest keys: (users,
    movies), and the users short of candidates (nothing is returned for them, nor for the users ``skip`` marks)."""
    if skip is not None and skip.any():
        kept = ~skip[positions]
        positions, movies, keys = positions[kept], movies[kept], keys[kept]
    # By user, then key descending, in one float sort: the keys are far inside +-1e3 and positions * 1e4 are exact.
    order = np.argsort(positions * 1e4 - np.clip(keys, -999.0, 999.0))
    positions, movies = positions[order], movies[order]
    firsts = np.searchsorted(positions, np.arange(len(users)))
    rank = np.arange(len(positions)) - firsts[positions]
    want = counts[users]
    short = np.diff(np.r_[firsts, len(positions)]) < want
    if skip is not None:
        short &= ~skip
    keep = (rank < want[positions]) & ~short[positions]
    return users[positions[keep]], movies[keep], users[short]


def _groups(rng: np.random.Generator, truth: GroundTruth, movies: np.ndarray, groups: int = 256) -> np.ndarray:
    """The group of each of ``movies``: the nearest, by the direction of the choice factors, of ``groups`` of them
    picked at random."""
    unit = _unit(truth.choice[movies])
    centres = unit[rng.choice(len(unit), min(groups, len(unit)), replace=False)]
    return np.concatenate([np.argmax(unit[c] @ centres.T, axis=1) for c in _slices(len(unit), CHUNK // len(centres))])


class _Proposal:
    """Where a sampled draw takes its tail candidates from: a user picks a group of ``movies`` (:func:`_groups`) by an
    estimate of its share of their choice weight, then a movie in it by ``popularity ** base``.

    ``base`` is the median weight on popularity of the users it serves, and a group's weight for a user is its mass
    of ``popularity ** base`` times ``exp(x_u . m_g + |x_u|^2 v_g / 2)`` (the group's mean m_g and per-dimension
    variance v_g of the choice factors, weighted the same way: the second-order estimate of the group's average
    ``exp(x_u . y_i)``), so that the candidates come close to the target.
    """

    def __init__(self, truth: GroundTruth, movies: np.ndarray, group: np.ndarray, base: float) -> None:
        rank = truth.choice.shape[1]
        k = int(group.max()) + 1
        every = truth.log_popularity
        self.log_shift = base * every.max()  # popularity ** base is scaled by exp(-log_shift) here
        self.log_w = base * (every[movies] - every.max())
        w = np.exp(self.log_w)
        self.draws_for = _DrawsFor(w / w.sum())
        self.share = float(w.sum() / np.exp(base * (every - every.max())).sum())  # the tail's part of the mass
        mass = np.maximum(np.bincount(group, weights=w, minlength=k), 1e-300)
        choice = truth.choice[movies]
        self.mean = np.stack([np.bincount(group, weights=w * choice[:, d], minlength=k) for d in range(rank)], 1)
        self.mean /= mass[:, None]
        second = np.bincount(group, weights=w * (choice**2).sum(axis=1), minlength=k) / mass
        # Three times the variance: a proposal that spreads wider falls short of the target less often (measured
        # against exact draws at 6,000 users x 20,000 movies).
        self.var = 3 * np.maximum(second - (self.mean**2).sum(axis=1), 0.0) / rank
        self.log_mass = np.log(mass)
        # Positions by group; a draw "g + U" finds a movie of group g by the popularity cdf inside it.
        self.order = np.lexsort((-w, group))
        g = group[self.order]
        starts = np.searchsorted(g, np.arange(k + 1))
        total = np.cumsum(w[self.order])
        within = total - np.repeat(np.r_[0.0, total][starts[:-1]], np.diff(starts))
        self.cdf = g + within / mass[g]
        self.movies, self.starts, self.k = movies, starts, k

    def group_weights(self, truth: GroundTruth, users: np.ndarray) -> np.ndarray:
        """(len(users), groups): the log of each group's estimated choice weight for each user."""
        x = truth.taste[users]
        return self.log_mass + x @ self.mean.T + 0.5 * (x**2).sum(axis=1)[:, None] * self.var

    def draw(
        self, rng: np.random.Generator, draws: np.ndarray, lw: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``draws[j]`` candidates for the user whose :meth:`group_weights` are ``lw[j]``: (j, movie, log of the
        probability of drawing the movie)."""
        top = lw.max(axis=1, keepdims=True)
        p = np.exp(lw - top)
        total = p.sum(axis=1, keepdims=True)
        lw -= top + np.log(total)  # log of each group's probability
        rows = np.cumsum(p, axis=1) / total + np.arange(len(lw))[:, None]
        local = np.repeat(np.arange(len(lw)), draws)
        # Sorted within each user (the draws are exchangeable): the search walks the table instead of jumping.
        pos = np.searchsorted(rows.ravel(), np.sort(local + rng.random(len(local))), side="right")
        g = np.clip(pos - local * self.k, 0, self.k - 1)
        at = np.searchsorted(self.cdf, g + rng.random(len(local)), side="right")
        at = np.clip(at, self.starts[g], self.starts[g + 1] - 1)
        log_q = lw[local, g] - self.log_mass[g] + self.log_w[self.order[at]]
        return local, self.movies[self.order[at]], log_q


def _slices(n: int, size: int) -> list[slice]:
    size = max(1, size)
    return [slice(a, a + size) for a in range(0, n, size)]


def _timestamps(rng: np.random.Generator, counts: np.ndarray, span: tuple[int, int], days: float) -> np.ndarray:
    """Each user's ratings spread uniformly over a log-normal active period placed at random in ``span``."""
    t0, t1 = span
    period = np.minimum(rng.lognormal(np.log(days * 86_400.0), 2.0, len(counts)), t1 - t0)
    start = t0 + rng.random(len(counts)) * (t1 - t0 - period)
    return (np.repeat(start, counts) + rng.random(int(counts.sum())) * np.repeat(period, counts)).astype(np.int64)


def ratings_summary(ratings: pd.DataFrame) -> dict[str, float]:
    """The figures that say whether a ratings table looks like MovieLens: its size, the rating distribution, the
    counts per user and per movie, the Gini coefficient of movie popularity, and how rating relates to counts."""
    by_user = ratings.groupby("user_id")["rating"]
    by_movie = ratings.groupby("movie_id")["rating"]
    per_user, per_movie = by_user.size().to_numpy(), by_movie.size().to_numpy()
    r = ratings["rating"].to_numpy(np.float64)
    out = {
        "ratings": float(len(r)),
        "users": float(len(per_user)),
        "movies": float(len(per_movie)),
        "rating mean": float(r.mean()),
        "rating std": float(r.std()),
        "share >= 4": float((r >= 4).mean()),
        "share <= 2": float((r <= 2).mean()),
        "share of half stars": float((r % 1 != 0).mean()),
    }
    for name, c in (("per user", per_user), ("per movie", per_movie)):
        for q in (0.5, 0.9, 0.99):
            out[f"{name}: q{round(q * 100)}"] = float(np.quantile(c, q))
        out[f"{name}: max"] = float(c.max())
    out["movies with 1 rating"] = float((per_movie == 1).mean())
    out["popularity Gini"] = gini(per_movie)
    out["corr(movie mean, log count)"] = float(np.corrcoef(by_movie.mean().to_numpy(), np.log(per_movie))[0, 1])
    out["corr(user mean, log count)"] = float(np.corrcoef(by_user.mean().to_numpy(), np.log(per_user))[0, 1])
    return out


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative counts (0: all equal; towards 1: a few take everything)."""
    c = np.sort(np.asarray(counts, np.float64))
    n = len(c)
    return float((2 * np.arange(1, n + 1) - n - 1) @ c / (n * c.sum()))
