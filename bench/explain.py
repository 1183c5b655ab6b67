"""``make bench-explain``: are the reasons the model's own? Take away the rating a movie's first reason names.

``python -m bench.explain [--artifact artifacts/artifact --model artifacts/model] [--u1-artifact
artifacts/u1-artifact --u1-model artifacts/u1] [--users 150] [--top 10] [--seed 0] [--out artifacts/explain_eval]``

Protocol, per data set (ml-latest-small's served model and ml-100k u1's): a seeded sample of ``--users`` users of
the model's test split with at least 5 training ratings. Each is folded in from their training ratings
(``Engine.fold_in``, as a visitor who entered them would be) and ranked; their top ``--top`` movies each get their
reasons as the engine chooses them (``Engine.tables`` over the first ``COMPETITORS`` ranked movies and
``Engine.reason_rows``, :mod:`lambdas.engine.explain`). Then, for each of those movies, one rating is taken away,
the user is folded in again and ranked again, and the movie's new rank is recorded (past the 300 candidates the
graph ranks fully it counts as 301). The rating taken away is, in turn:

* **reason**: the rated movie the first reason names (the rating whose removal moves the movie furthest down to
  first order, ties broken by the share of its score);
* **share**: the rated movie with the largest first-order share of the movie's score (the first reason before it
  weighed the movies around it);
* **random**: one of the user's other ratings (not the reason's), drawn with a seeded generator;
* **cosine**: the rated movie most similar to the listed one by the cosine of their interaction-head factors (the
  explanation people would write by hand).

The bars (issue 29): taking the reason away moves the movie down more than taking a random rating away in at least
80% of the cases, and more than the cosine choice on average. ``--ceiling N`` also measures, on the first N users,
what any choice by score shares can reach: the rating whose exact removal (a refit) lowers the movie's score most,
and the rating that moves the movie furthest (the best any explanation could name). Writes ``explain_eval.md`` /
``.json`` to ``--out`` and a plot of the rank drops to ``docs/explain_faithfulness.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from contract import CANDIDATES
from lambdas.engine import Engine
from lambdas.engine.ranking import COMPETITORS

ROOT = Path(__file__).resolve().parents[1]
CHOICES = ("reason", "share", "random", "cosine")
CENSORED = CANDIDATES + 1


def test_users(engine: Engine, test_csv: Path, n: int, seed: int) -> list[int]:
    """A seeded sample of ``n`` user indices of the test split with at least 5 training ratings."""
    raw = np.genfromtxt(test_csv, delimiter=",", names=True, dtype=None, encoding="utf-8")
    users = sorted({engine.user_index(u) for u in raw["user_id"]} - {-1})
    users = [u for u in users if engine.h_indptr[u + 1] - engine.h_indptr[u] >= 5]
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(users, size=min(n, len(users)), replace=False).tolist())


def ranking(
    engine: Engine, items: np.ndarray, ratings: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray, np.ndarray]:
    """A visitor with these ratings: their fold-in factors (p', p), the movie indices of their top ``CANDIDATES``
    and those movies' ranking scores."""
    pr, p, b = engine.fold_in(items, ratings)
    exclude = np.zeros((1, engine.n_items), dtype=bool)
    exclude[0, items] = True
    deep = engine.deep_inputs(pr[None, :], p[None, :])
    scores, top, _, _ = engine._run(pr[None, :], p[None, :], np.array([b]), deep, exclude, CANDIDATES)
    return (pr, p), top[0].astype(np.int64), scores[0]


def reasons(engine: Engine, user, order: np.ndarray, scores: np.ndarray, top_n: int) -> tuple[np.ndarray, np.ndarray]:
    """As the engine explains a list: the shares [n_rated, top_n] of the listed movies and each one's first reason
    (a row of the shares) [top_n]."""
    shares, removal = engine.tables(user, order[:COMPETITORS])
    return shares[:, :top_n], engine.reason_rows(removal, scores[:COMPETITORS], top_n, shares)[0]


def rank_of(order: np.ndarray, item: int) -> int:
    found = np.flatnonzero(order == item)
    return int(found[0]) + 1 if len(found) else CENSORED


def evaluate(engine: Engine, users: list[int], top_n: int, seed: int) -> dict[str, np.ndarray]:
    """Per case (user, listed movie): its rank before and after each choice's rating is taken away."""
    rng = np.random.default_rng(seed)
    unit = engine._similar  # interaction factors, unit length
    before, after = [], {c: [] for c in CHOICES}
    for n_done, u in enumerate(users, 1):
        lo, hi = engine.h_indptr[u], engine.h_indptr[u + 1]
        items, ratings = engine.h_items[lo:hi].astype(np.int64), engine.h_ratings[lo:hi].astype(np.float64)
        (pr, p), order, scores = ranking(engine, items, ratings)
        listed = order[:top_n]
        shares, named = reasons(engine, engine.new_user(pr, p, items, ratings), order, scores, top_n)
        refits: dict[int, np.ndarray] = {}

        def without(j: int, items=items, ratings=ratings, refits=refits) -> np.ndarray:
            if j not in refits:
                keep = np.arange(len(items)) != j
                refits[j] = ranking(engine, items[keep], ratings[keep])[1]
            return refits[j]

        for col, item in enumerate(listed.tolist()):
            picks = {
                "reason": int(named[col]),
                "share": int(np.argmax(shares[:, col])),
                "random": 0,
                "cosine": int(np.argmax(unit[items] @ unit[item])),
            }
            # a random one of the user's other ratings (drawing the reason itself would compare it with itself)
            others = np.flatnonzero(np.arange(len(items)) != picks["reason"])
            picks["random"] = int(rng.choice(others))
            before.append(col + 1)
            for choice, j in picks.items():
                after[choice].append(rank_of(without(j), item))
        if n_done % 25 == 0 or n_done == len(users):
            print(f"  {n_done}/{len(users)} users", flush=True)
    return {"before": np.array(before), **{c: np.array(v) for c, v in after.items()}}


def ceiling(engine: Engine, users: list[int], top_n: int, seed: int) -> dict[str, float]:
    """What each way of choosing can reach, on ``users``: refit without every rating in turn, then how often taking
    away the served first reason, the rating with the largest first-order share of the movie's score, the rating whose
    removal lowers the movie's score the most (the exact leave-one-out share), and the rating that moves the movie
    furthest (the best any choice can do) beats a random other rating."""
    rng = np.random.default_rng(seed)
    w = engine.w
    first, share, exact, best = [], [], [], []
    for u in users:
        lo, hi = engine.h_indptr[u], engine.h_indptr[u + 1]
        items, ratings = engine.h_items[lo:hi].astype(np.int64), engine.h_ratings[lo:hi].astype(np.float64)
        (pr, p), order, scores = ranking(engine, items, ratings)
        listed = order[:top_n]
        shares, named_rows = reasons(engine, engine.new_user(pr, p, items, ratings), order, scores, top_n)
        base = w["item_rank"][listed] @ pr + engine.gamma * engine.mf_weight * (w["item_mf"][listed] @ p)
        drops, ranks = [], []
        for j in range(len(items)):
            keep = np.arange(len(items)) != j
            (pr_j, p_j), order_j, _ = ranking(engine, items[keep], ratings[keep])
            score = w["item_rank"][listed] @ pr_j + engine.gamma * engine.mf_weight * (w["item_mf"][listed] @ p_j)
            drops.append(base - score)
            ranks.append([rank_of(order_j, item) for item in listed.tolist()])
        drop_table, rank_table = np.array(drops), np.array(ranks)  # [n_rated, top_n]
        for col in range(len(listed)):
            named = int(named_rows[col])
            random = int(rng.choice(np.flatnonzero(np.arange(len(items)) != named)))
            against = rank_table[random, col]
            first.append(rank_table[named, col] > against)
            share.append(rank_table[int(np.argmax(shares[:, col])), col] > against)
            exact.append(rank_table[int(np.argmax(drop_table[:, col])), col] > against)
            best.append(rank_table[:, col].max() > against)
    return {
        "users": float(len(users)),
        "first_order_beats_random": float(np.mean(first)),
        "first_order_share_beats_random": float(np.mean(share)),
        "exact_share_beats_random": float(np.mean(exact)),
        "best_choice_beats_random": float(np.mean(best)),
    }


def summary(ranks: dict[str, np.ndarray], top_n: int) -> dict[str, float]:
    drops = {c: ranks[c] - ranks["before"] for c in CHOICES}
    out: dict[str, float] = {"cases": float(len(ranks["before"]))}
    out["reason_beats_random"] = float(np.mean(drops["reason"] > drops["random"]))
    out["share_beats_random"] = float(np.mean(drops["share"] > drops["random"]))
    out["reason_beats_cosine"] = float(np.mean(drops["reason"] > drops["cosine"]))
    for c in CHOICES:
        out[f"{c}_mean_drop"] = float(drops[c].mean())
        out[f"{c}_median_drop"] = float(np.median(drops[c]))
        out[f"{c}_leaves_top"] = float(np.mean(ranks[c] > top_n))
    return out


def plot(all_ranks: dict[str, dict[str, np.ndarray]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(all_ranks), figsize=(5.5 * len(all_ranks), 3.8), squeeze=False)
    for ax, (name, ranks) in zip(axes[0], all_ranks.items(), strict=True):
        for c, style in zip(CHOICES, ("-", "-.", "--", ":"), strict=True):
            drops = np.sort(ranks[c] - ranks["before"])
            ax.plot(np.maximum(drops, 0.5), 1 - np.arange(len(drops)) / len(drops), style, label=c)
        ax.set_xscale("log")
        ax.set_xlabel("rank drop of the listed movie (log; < 1 drawn at 0.5)")
        ax.set_ylabel("share of cases with at least this drop")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(title="rating taken away")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def report(results: dict[str, dict], users: int, top: int, seed: int, with_ceiling: bool) -> tuple[str, bool]:
    """The markdown report of ``results`` (as ``explain_eval.json`` holds them) and whether the bars are met."""
    rows = [
        f"# Are the reasons the model's own? ({time.strftime('%Y-%m-%d')}, `python -m bench.explain`, "
        f"{users} test users x top {top}, seed {seed})",
        "",
        "| data set | cases | reason > random | largest share > random | reason > cosine | "
        f"mean drop: {' / '.join(CHOICES)} | median drop: {' / '.join(CHOICES)} | "
        f"leaves the top {top}: {' / '.join(CHOICES)} |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        rows.append(
            f"| {name} | {int(r['cases']):,} | {r['reason_beats_random']:.0%} | {r['share_beats_random']:.0%} | "
            f"{r['reason_beats_cosine']:.0%} | "
            + " / ".join(f"{r[f'{c}_mean_drop']:.1f}" for c in CHOICES)
            + " | "
            + " / ".join(f"{r[f'{c}_median_drop']:.0f}" for c in CHOICES)
            + " | "
            + " / ".join(f"{r[f'{c}_leaves_top']:.0%}" for c in CHOICES)
            + " |"
        )
    if with_ceiling:
        rows += [
            "",
            "What each way of choosing reaches (`--ceiling`: the first users of the same sample, every rating taken "
            "away in turn; each against a random other rating):",
            "",
            "| data set | users | served reason (first-order place) | largest first-order share | "
            "largest exact leave-one-out share | best possible choice |",
            "|---|---|---|---|---|---|",
        ]
        for name, r in results.items():
            c = r["ceiling"]
            rows.append(
                f"| {name} | {int(c['users'])} | {c['first_order_beats_random']:.0%} | "
                f"{c['first_order_share_beats_random']:.0%} | {c['exact_share_beats_random']:.0%} | "
                f"{c['best_choice_beats_random']:.0%} |"
            )
    bars = all(
        r["reason_beats_random"] >= 0.8 and r["reason_mean_drop"] > r["cosine_mean_drop"] for r in results.values()
    )
    rows += ["", f"Bars (reason > random in >= 80% of cases; mean drop above cosine's): {'met' if bars else 'NOT met'}"]
    return "\n".join(rows), bars


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.explain", description=__doc__.split("\n")[0])
    p.add_argument("--artifact", type=Path, default=ROOT / "artifacts" / "artifact")
    p.add_argument("--model", type=Path, default=ROOT / "artifacts" / "model", help="for its test.csv")
    p.add_argument("--u1-artifact", type=Path, default=ROOT / "artifacts" / "u1-artifact")
    p.add_argument("--u1-model", type=Path, default=ROOT / "artifacts" / "u1")
    p.add_argument("--users", type=int, default=150)
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--ceiling", type=int, default=30, help="users for the ceiling (a refit per rating: slow); 0 leaves it out"
    )
    p.add_argument("--out", type=Path, default=ROOT / "artifacts" / "explain_eval")
    p.add_argument("--plot", type=Path, default=ROOT / "docs" / "explain_faithfulness.png")
    a = p.parse_args(argv)
    sets = {"ml-latest-small": (a.artifact, a.model), "ml-100k u1": (a.u1_artifact, a.u1_model)}
    for artifact, model in sets.values():
        if not (artifact / "manifest.json").exists() or not (model / "test.csv").exists():
            print(f"error: {artifact} or {model / 'test.csv'} missing (make export; make bench-similar builds u1)")
            return 2
    results, all_ranks = {}, {}
    for name, (artifact, model) in sets.items():
        engine = Engine(artifact)
        users = test_users(engine, model / "test.csv", a.users, a.seed)
        print(f"{name}: {len(users)} users x top {a.top} (model {engine.model_version}) ...", flush=True)
        t0 = time.perf_counter()
        all_ranks[name] = evaluate(engine, users, a.top, a.seed)
        results[name] = {**summary(all_ranks[name], a.top), "users": len(users), "seconds": time.perf_counter() - t0}
        results[name]["model_version"] = engine.model_version
        if a.ceiling:
            print(f"{name}: the ceiling on {min(a.ceiling, len(users))} users (a refit per rating) ...", flush=True)
            results[name]["ceiling"] = ceiling(engine, users[: a.ceiling], a.top, a.seed + 1)
    table, bars = report(results, a.users, a.top, a.seed, bool(a.ceiling))
    print(table)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "explain_eval.md").write_text(table + "\n")
    (a.out / "explain_eval.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(all_ranks, a.plot)
    print(f"wrote {a.out / 'explain_eval.md'} and {a.plot}")
    return 0 if bars else 1


if __name__ == "__main__":
    sys.exit(main())
