"""Which "similar movies" list is worth showing? Score each method on held-out ratings, and on a sanity list.

``python -m bench.similar [--artifact artifacts/artifact --model artifacts/model]
[--u1-artifact artifacts/u1-artifact --u1-model artifacts/u1] [--out artifacts/similar_eval.md]``

Protocol (issue 14): every test-split user with a held-out movie rated >= 4 and a training movie rated >= 4
gets one list: every movie ranked by its similarity to the user's last training movie rated >= 4 (by
timestamp; on a tie, the later training row), the user's training movies excluded, top 10, scored by NDCG@10
and Recall@10 against their held-out movies rated >= 4 (binary gains, as in ``training.metrics``). Training
movies are everything the model saw, its validation part included (the model directory's ``train.npz``, the
same ratings as the artifact's histories). The popularity column is the mean log10 training rating count of
the listed movies (higher: more popular films); coverage is the share of the catalogue listed at least once.

Methods: the interaction-factor cosine (what the engine served before the neighbour table), the model's own
score for a one-movie profile (``Engine.cold_start({movie: 5.0})``'s fold-in, every training movie excluded),
and the co-occurrence methods of :mod:`model_export.similarity`, each ranking the anchor's whole score row; one
more row ranks only the served method's ``TABLE_K`` stored neighbours (what serving can list). The sanity list
(:data:`SANITY`, on ml-latest-small) asks each method's top 10 for well-known movies to hold the rest of their
series. The report also lists the served method's top 10 for :data:`SHOWCASE`.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lambdas.engine import Engine
from model_export.similarity import SERVED, TABLE_K, ItemSimilarity, SimilarityConfig, top_k_rows
from training.metrics import ranking_from_lists

ROOT = Path(__file__).resolve().parents[1]
K = 10
LIKED = 4.0
ROW_CHUNK = 256

# The methods compared, in table order: (name, config); None for the two model-based rows. The co-occurrence rows
# change one thing at a time from the plain cosine, then build up to the served method.
FACTOR, COLD_START = "interaction-factor cosine", "one-movie cold start"
TABLE = f"served, only its {TABLE_K} stored neighbours"
LIKED_HEAVY = SimilarityConfig(min_rating=LIKED, user_exponent=0.5, shrink=50.0)
METHODS: list[tuple[str, SimilarityConfig | None]] = [
    (FACTOR, None),
    (COLD_START, None),
    ("co-occurrence cosine", SimilarityConfig()),
    ("cosine, shrink 50", SimilarityConfig(shrink=50.0)),
    ("cosine, users n_u^-0.5", SimilarityConfig(user_exponent=0.5)),
    ("asymmetric cosine, alpha 0.3", SimilarityConfig(alpha=0.3)),
    ("asymmetric cosine, alpha 0.7", SimilarityConfig(alpha=0.7)),
    ("cosine, 0.3 x factor cosine", SimilarityConfig(factor_blend=0.3)),
    ("cosine, genre overlap^1.25", SimilarityConfig(genre_exponent=1.25)),
    ("liked only (>= 4)", SimilarityConfig(min_rating=LIKED)),
    ("liked, users n_u^-0.5, shrink 50", LIKED_HEAVY),
    ("same, asymmetric alpha 0.6", SimilarityConfig(**{**LIKED_HEAVY.as_dict(), "alpha": 0.6})),
    ("same + genre overlap^1.25 (served)", SERVED),
    (TABLE, SERVED),
]


# Sanity checks on ml-latest-small (MovieLens ids): for each anchor, the other films named must be in its top 10,
# and at least ``min_genre`` of the 10 must have one of ``genres``.
@dataclass(frozen=True)
class Check:
    """One sanity check: every anchor's top 10 holds the rest of the series (and enough of the genres)."""

    name: str
    series: tuple[int, ...]
    genres: tuple[str, ...] = ()
    min_genre: int = 0


SANITY = [
    Check("Toy Story finds Toy Story and family animation", (1, 3114, 78499), ("Animation", "Children"), 5),
    Check("Star Wars IV-VI find the rest of the trilogy", (260, 1196, 1210)),
    Check("Star Wars I-III find the rest of the trilogy", (2628, 5378, 33493)),
    Check("The Lord of the Rings finds the rest of the trilogy", (4993, 5952, 7153)),
]
# Well-known movies whose lists the report prints (ml-latest-small ids).
SHOWCASE = [1, 260, 4993, 2571, 858, 6377, 296]


@dataclass
class Split:
    """One data set's evaluation: the engine, and per evaluated user the anchor movie and the relevant ones."""

    name: str
    engine: Engine
    users: np.ndarray  # user indices
    anchors: np.ndarray  # per user: index of the last training movie rated >= 4
    relevant: list[set[int]]


def load_split(name: str, artifact: Path, model_dir: Path) -> Split:
    """The protocol's users for a model directory and its exported artifact."""
    engine = Engine(artifact)
    ids = np.load(model_dir / "ids.npz", allow_pickle=False)
    if not (np.array_equal(ids["item_ids"], engine.item_ids) and np.array_equal(ids["user_ids"], engine.user_ids)):
        raise ValueError(f"{artifact} was not exported from {model_dir} (id maps differ)")
    t = np.load(model_dir / "train.npz", allow_pickle=False)
    liked = np.flatnonzero(t["ratings"] >= LIKED)
    # Last liked row per user: sort by (user, timestamp, row) and keep each user's final entry.
    order = liked[np.lexsort((liked, t["timestamps"][liked], t["users"][liked]))]
    users_sorted = t["users"][order]
    last = np.flatnonzero(np.r_[users_sorted[1:] != users_sorted[:-1], True])
    anchor_of = dict(zip(users_sorted[last].tolist(), t["items"][order[last]].tolist(), strict=True))
    raw = np.genfromtxt(model_dir / "test.csv", delimiter=",", names=True, dtype=None, encoding="utf-8")
    relevant: dict[int, set[int]] = {}
    for user_id, movie_id, rating in zip(raw["user_id"], raw["movie_id"], raw["rating"], strict=True):
        u, i = engine.user_index(user_id), engine.item_index(movie_id)
        if u >= 0 and i >= 0 and rating >= LIKED:
            relevant.setdefault(u, set()).add(i)
    users = np.array([u for u in sorted(relevant) if u in anchor_of], np.int64)
    anchors = np.array([anchor_of[u] for u in users], np.int64)
    return Split(name, engine, users, anchors, [relevant[u] for u in users])


def factor_rows(engine: Engine) -> Callable[[np.ndarray], np.ndarray]:
    """Score rows by the cosine of the interaction-head item factors, the movie itself -inf."""
    rank = engine.w["item_rank"].astype(np.float32)
    norms = np.linalg.norm(rank, axis=1, keepdims=True)
    unit = rank / np.where(norms > 0, norms, 1.0)

    def rows(movies: np.ndarray) -> np.ndarray:
        out = unit[movies] @ unit.T
        out[np.arange(len(movies)), movies] = -np.inf
        return out

    return rows


def cooc_scorer(engine: Engine, config: SimilarityConfig) -> ItemSimilarity:
    """The co-occurrence scorer on the artifact's histories (what export computes the table from)."""
    return ItemSimilarity.from_histories(
        engine.h_indptr, engine.h_items, engine.h_ratings, engine.n_items, config, engine.w["item_rank"], engine.genres
    )


def table_rows(scorer: ItemSimilarity, k: int = TABLE_K) -> Callable[[np.ndarray], np.ndarray]:
    """Score rows cut to the ``k`` neighbours the table stores (-inf elsewhere): what serving can list."""

    def rows(movies: np.ndarray) -> np.ndarray:
        full = scorer.rows(movies)
        idx, vals = top_k_rows(full, k)
        out = np.full_like(full, -np.inf)
        keep = idx >= 0
        out[np.nonzero(keep)[0], idx[keep]] = vals[keep]
        return out

    return rows


def rank_lists(split: Split, rows: Callable[[np.ndarray], np.ndarray], k: int = K) -> list[np.ndarray]:
    """Per evaluated user, the top ``k`` of their anchor's score row among the movies they did not rate."""
    e = split.engine
    out: list[np.ndarray] = [np.empty(0, np.int64)] * len(split.users)
    by_anchor: dict[int, list[int]] = {}
    for pos, a in enumerate(split.anchors.tolist()):
        by_anchor.setdefault(a, []).append(pos)
    anchors = np.array(sorted(by_anchor), np.int64)
    for start in range(0, len(anchors), ROW_CHUNK):
        chunk = anchors[start : start + ROW_CHUNK]
        block = rows(chunk)
        for row, a in zip(block, chunk.tolist(), strict=True):
            for pos in by_anchor[a]:
                allowed = np.ones(e.n_items, bool)
                allowed[e._seen(int(split.users[pos]))] = False
                cand = np.flatnonzero(allowed)
                idx, _ = top_k_rows(row[cand][None, :], k)
                out[pos] = cand[idx[0][idx[0] >= 0]]
    return out


def cold_start_lists(split: Split, k: int = K) -> list[np.ndarray]:
    """Per evaluated user, the engine's cold-start top ``k`` from their anchor rated 5, training movies excluded."""
    e = split.engine
    folded: dict[int, tuple] = {}
    out = []
    for u, a in zip(split.users.tolist(), split.anchors.tolist(), strict=True):
        if a not in folded:
            folded[a] = e.fold_in(np.array([a]), np.array([5.0]))
        pr, p, b = folded[a]
        exclude = np.zeros((1, e.n_items), bool)
        exclude[0, e._seen(u)] = True
        _, top, _, _ = e._run(
            pr[None, :], p[None, :], np.array([b]), e.deep_inputs(pr[None, :], p[None, :]), exclude, k
        )
        out.append(top[0].astype(np.int64))
    return out


def neighbours(engine: Engine, method: str, config: SimilarityConfig | None, movies: list[int]) -> list[np.ndarray]:
    """Each movie index's top 10 (index arrays) by a method, only the movie itself excluded."""
    if method == COLD_START:
        out = []
        for i in movies:
            res = engine.cold_start({engine.item_ids[i].item(): 5.0}, k=K)
            out.append(np.array([engine.item_index(m["movie_id"]) for m in res["items"]], np.int64))
        return out
    rows = factor_rows(engine) if config is None else cooc_scorer(engine, config).rows
    idx, _ = top_k_rows(rows(np.array(movies, np.int64)), K)
    return [r[r >= 0].astype(np.int64) for r in idx]


def score(split: Split, lists: list[np.ndarray]) -> dict[str, float]:
    """NDCG/Recall@10, popularity (mean log10 training count of listed movies) and catalogue coverage."""
    m = ranking_from_lists(lists, split.relevant, K)
    listed = np.concatenate(lists) if lists else np.empty(0, np.int64)
    counts = split.engine.counts.astype(np.float64)
    return {
        "users": len(lists),
        "ndcg@10": m["ndcg@10"],
        "recall@10": m["recall@10"],
        "log10_count": float(np.log10(np.maximum(counts[listed], 1)).mean()) if len(listed) else 0.0,
        "coverage": float(len(np.unique(listed)) / split.engine.n_items),
    }


def evaluate_method(split: Split, method: str, config: SimilarityConfig | None) -> dict[str, float]:
    """The protocol's figures for one method on one split."""
    t0 = time.perf_counter()
    if method == COLD_START:
        lists = cold_start_lists(split)
    elif config is None:
        lists = rank_lists(split, factor_rows(split.engine))
    elif method == TABLE:
        lists = rank_lists(split, table_rows(cooc_scorer(split.engine, config)))
    else:
        lists = rank_lists(split, cooc_scorer(split.engine, config).rows)
    return {**score(split, lists), "seconds": time.perf_counter() - t0}


def sanity(engine: Engine, method: str, config: SimilarityConfig | None) -> dict[str, str]:
    """Per check of :data:`SANITY`: "pass", or "fail" with what is missing (anchors not in the catalogue skipped)."""
    out = {}
    for check in SANITY:
        anchors = [engine.item_index(m) for m in check.series]
        anchors = [i for i in anchors if i >= 0]
        problems = []
        for i, top in zip(anchors, neighbours(engine, method, config, anchors), strict=True):
            missing = [j for j in anchors if j != i and j not in set(top.tolist())]
            if missing:
                problems.append(f"{_short(engine, i)} lacks {', '.join(_short(engine, j) for j in missing)}")
            if check.genres:
                cols = [engine._genre_col[g.lower()] for g in check.genres if g.lower() in engine._genre_col]
                n = int(engine.genres[top][:, cols].any(axis=1).sum()) if len(top) else 0
                if n < check.min_genre:
                    problems.append(f"{_short(engine, i)}: {n}/{len(top)} {'/'.join(check.genres)}")
        out[check.name] = "pass" if anchors and not problems else "fail: " + "; ".join(problems or ["no anchors"])
    return out


def _short(engine: Engine, i: int) -> str:
    return str(engine.titles[i])


def markdown_table(rows: list[tuple[str, dict]]) -> list[str]:
    """The protocol's figures per method as a markdown table."""
    lines = [
        "| method | users | NDCG@10 | Recall@10 | mean log10 count | coverage |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in rows:
        lines.append(
            f"| {name} | {r['users']} | {r['ndcg@10']:.4f} | {r['recall@10']:.4f} | "
            f"{r['log10_count']:.2f} | {r['coverage']:.3f} |"
        )
    return lines


def showcase(engine: Engine, config: SimilarityConfig, movie_ids: list[int] = SHOWCASE) -> list[str]:
    """Markdown lines: the method's top 10 for each well-known movie in the catalogue."""
    movies = [i for i in (engine.item_index(m) for m in movie_ids) if i >= 0]
    lines = []
    for i, top in zip(movies, neighbours(engine, "served", config, movies), strict=True):
        lines.append(f"- **{engine.titles[i]}**: " + "; ".join(str(engine.titles[j]) for j in top))
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.similar", description=__doc__.split("\n")[0])
    p.add_argument("--artifact", type=Path, default=ROOT / "artifacts" / "artifact", help="ml-latest-small artifact")
    p.add_argument("--model", type=Path, default=ROOT / "artifacts" / "model", help="its model directory")
    p.add_argument("--u1-artifact", type=Path, default=ROOT / "artifacts" / "u1-artifact")
    p.add_argument("--u1-model", type=Path, default=ROOT / "artifacts" / "u1")
    p.add_argument("--out", type=Path, default=ROOT / "artifacts" / "similar_eval.md")
    a = p.parse_args(argv)
    for path in (a.artifact, a.model, a.u1_artifact, a.u1_model):
        if not path.exists():
            print(f"error: {path} missing (docs/serving.md, 'Similar movies', says how to build it)", file=sys.stderr)
            return 2
    report = [f"# Similar movies ({time.strftime('%Y-%m-%d')}, `python -m bench.similar`)", ""]
    mls = None
    for name, artifact, model in (("u1", a.u1_artifact, a.u1_model), ("ml-latest-small", a.artifact, a.model)):
        split = load_split(name, artifact, model)
        mls = split if name == "ml-latest-small" else mls
        rows = []
        for method, config in METHODS:
            r = evaluate_method(split, method, config)
            rows.append((method, r))
            print(
                f"{name:>15} {method:<36} users {r['users']:>4}  ndcg@10 {r['ndcg@10']:.4f}  "
                f"recall@10 {r['recall@10']:.4f}  log10 count {r['log10_count']:.2f}  ({r['seconds']:.1f}s)"
            )
        report += [f"## {name} (model {split.engine.model_version})", "", *markdown_table(rows), ""]
    report += ["## Sanity (ml-latest-small)", "", "| method | " + " | ".join(c.name for c in SANITY) + " |"]
    report.append("|---|" + "---|" * len(SANITY))
    for method, config in METHODS:
        verdicts = sanity(mls.engine, method, config)
        report.append(f"| {method} | " + " | ".join(v.split(":")[0] for v in verdicts.values()) + " |")
        for check, verdict in verdicts.items():
            print(f"sanity {method:<36} {check}: {verdict}")
    report += ["", "Failures in detail:", ""]
    for method, config in METHODS:
        for check, verdict in sanity(mls.engine, method, config).items():
            if verdict != "pass":
                report.append(f"- {method}, {check}: {verdict[len('fail: ') :]}")
    lists = showcase(mls.engine, SERVED)
    report += ["", f"## The served method's top 10 (ml-latest-small; {SERVED})", "", *lists]
    print("\n".join(["", "served method's top 10:", *lists]))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text("\n".join(report) + "\n")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    from training.console import filter_native_stderr

    filter_native_stderr()
    sys.exit(main())
