"""Benchmark ``GET /movies``'s title search as the API function runs it (pure Python, one thread).

``python -m bench.search [--movies 62000] [--artifact artifacts/artifact]`` (``make bench-search``)

Builds a seeded synthetic catalogue of ``--movies`` titles shaped like MovieLens's (two to six words, a year,
alternative titles in parentheses, trailing articles "X, The", accented letters), plus the served artifact's real
index if there is one, and times what the API does per request: every prefix of a sample of titles typed one key at
a time (what the page's type-ahead sends, from two characters on), whole-title and multi-word queries, and the
genre-filtered popular lists. Reports p50 / p99 / max per kind, the index's load time from its gzipped bytes, its
size, and the process's peak memory; writes artifacts/bench_search.md.
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import time
from pathlib import Path

from contract.movie_index import build_document, dump
from lambdas.service.movie_index import MovieIndex

WORDS = (  # noqa: SIM905 (a word list reads better as text)
    "love night day man woman city king queen dark last first time war star dream house world life death story "
    "girl boy family road river blood secret lost return rise fall game shadow fire ice heart little big great "
    "american french summer winter moon sun ghost hunter island mountain ocean storm silent wild golden red blue"
).split()
ACCENTED = ["amélie", "léon", "señor", "über", "café", "jalapeño", "noël", "naïve", "façade", "zoë"]
GENRES = ["Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama", "Fantasy"]
GENRES += ["Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"]


def synthetic_document(n: int, seed: int = 0) -> dict:
    """A seeded catalogue of ``n`` movies with MovieLens-like titles, genres and a Zipf-like popularity."""
    rng = random.Random(seed)
    titles, years, genres, counts, means = [], [], [], [], []
    for i in range(n):
        words = [rng.choice(WORDS + ACCENTED if rng.random() < 0.1 else WORDS) for _ in range(rng.randint(2, 6))]
        title = " ".join(w.capitalize() for w in words)
        if rng.random() < 0.12:
            title += f", {rng.choice(['The', 'A', 'La', 'Les'])}"
        if rng.random() < 0.08:
            title += f" ({rng.choice(WORDS).capitalize()} {rng.choice(WORDS).capitalize()})"
        year = rng.randint(1902, 2023)
        titles.append(f"{title} ({year})")
        years.append(year)
        genres.append(sorted(rng.sample(GENRES, rng.randint(1, 3))))
        counts.append(int(80_000 / (i + 1) ** 0.8))
        means.append(round(rng.uniform(1.5, 4.5), 2))
    return build_document(list(range(1, n + 1)), titles, years, genres, counts, means, example_users=[1, 2, 3])


def _percentiles(ms: list[float]) -> str:
    ms = sorted(ms)
    p99 = ms[min(len(ms) - 1, int(0.99 * len(ms)))]
    return f"{statistics.median(ms):.2f} / {p99:.2f} / {ms[-1]:.2f}"


def bench_index(name: str, data: bytes, queries: int, seed: int = 1) -> list[str]:
    """Rows of the report for one index (its gzipped bytes)."""
    t0 = time.perf_counter()
    index = MovieIndex.from_bytes(data)
    load_s = time.perf_counter() - t0
    rng = random.Random(seed)
    sample = rng.sample(range(len(index)), min(queries, len(index)))
    typed, whole, words = [], [], []
    for i in sample:
        title = index.titles[i].rsplit(" (", 1)[0]
        for end in range(2, min(len(title), 16) + 1):
            t = time.perf_counter()
            index.search(title[:end], limit=8)
            typed.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        found = index.search(title, limit=8)
        whole.append((time.perf_counter() - t) * 1000)
        assert any(m["movie_id"] == index.ids[i] for m in found.movies) or found.total > 8, title
        parts = title.split()
        if len(parts) > 1:
            t = time.perf_counter()
            index.search(" ".join(reversed(parts[:2])), limit=8)
            words.append((time.perf_counter() - t) * 1000)
    popular = []
    for _ in range(200):
        wanted, _ = index.genre_mask(rng.sample(index.genre_names, 2))
        t = time.perf_counter()
        index.popular(limit=12, offset=rng.choice([0, 12, 120]), wanted=wanted)
        popular.append((time.perf_counter() - t) * 1000)
    return [
        f"| {name} | {len(index):,} | {len(data) / 1e6:.1f} MB | {load_s:.2f} s | type-ahead prefix ({len(typed):,}) | "
        f"{_percentiles(typed)} |",
        f"| | | | | whole title ({len(whole):,}) | {_percentiles(whole)} |",
        f"| | | | | two words, reversed ({len(words):,}) | {_percentiles(words)} |",
        f"| | | | | popular in 2 genres ({len(popular):,}) | {_percentiles(popular)} |",
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.search", description=__doc__.split("\n")[0])
    p.add_argument("--movies", type=int, default=62_000, help="synthetic catalogue size (ml-25m has 62,423)")
    p.add_argument("--queries", type=int, default=300, help="titles typed one key at a time, per catalogue")
    p.add_argument("--artifact", type=Path, default=Path("artifacts/artifact"), help="also the served index")
    p.add_argument("--out", type=Path, default=Path("artifacts/bench_search.md"))
    a = p.parse_args(argv)
    rows = [
        "| catalogue | movies | index (gzip) | load | query (count) | p50 / p99 / max ms |",
        "|---|---|---|---|---|---|",
    ]
    real = a.artifact / "movies.json.gz"
    if real.exists():
        rows += bench_index(f"served ({a.artifact})", real.read_bytes(), a.queries)
    rows += bench_index("synthetic", dump(synthetic_document(a.movies)), a.queries)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    text = "\n".join(rows) + f"\n\nPeak RSS of the benchmark process: {peak:.0f} MB.\n"
    print(text)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
