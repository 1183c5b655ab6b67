"""The served catalogue as a small title index: movie search and popular lists without loading the model.

``model_export.export`` writes ``movies.json.gz`` into every artifact (the document: :mod:`contract.movie_index`);
the API function reads it from the model bucket (one GET per model version and container) and answers
``GET /movies`` from it. Pure Python (no numpy): the API function's package has neither numpy nor onnxruntime.

Search is over normalised titles: case and diacritics folded (``"amelie"`` finds *Amélie*), punctuation dropped, and
MovieLens's trailing-article form searchable both ways (``"the matrix"`` and ``"matrix, the"`` both find *Matrix,
The (1999)*). Matches rank as: the whole title, the title's start, a word's start, all query words as word
prefixes in any order, then anywhere inside a word; ties go to the more-rated movie. Cost per query: one substring
test per movie (about 4 ms at 62,000 movies here), then a pass over the matches per class that stops when the page is
full.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from contract.movie_index import MovieIndexError, check_format, load

MAX_LIMIT = 50
MAX_QUERY = 100
MAX_WORDS = 8  # a query's distinct words that count (each costs a pass over the matches)
# Letters that Unicode does not decompose into a base letter and an accent.
_FOLD = str.maketrans({"ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i"})

# Articles MovieLens moves to the end of a title ("Matrix, The", "Cité des enfants perdus, La").
ARTICLES = r"the|a|an|les|le|la|l'|los|las|el|il|lo|gli|i|die|der|das|den|det|de|het|een|un|une|uno|una|o|os|as"
_TRAILING_ARTICLE = re.compile(rf"^(?P<body>.+?),\s*(?P<article>{ARTICLES})(?P<rest>\s*(\(.*)?)$", re.IGNORECASE)
_NON_WORD = re.compile(r"[^0-9a-z]+")


def normalise(text: str) -> str:
    """Lower case, diacritics removed, every run of non-alphanumerics a single space."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(c for c in folded if not unicodedata.combining(c)).replace("ß", "ss").translate(_FOLD)
    return _NON_WORD.sub(" ", folded).strip()


def variants(title: str) -> list[str]:
    """The searchable forms of a title: as written and, for ``"Matrix, The (1999)"``, ``"The Matrix (1999)"``."""
    forms = [normalise(title)]
    match = _TRAILING_ARTICLE.match(title.strip())
    if match:
        forms.append(normalise(f"{match['article']} {match['body']}{match['rest']}"))
    return [f for f in dict.fromkeys(forms) if f]


@dataclass(frozen=True)
class Page:
    """One page of movies: the total number that match, and the movie records of this page."""

    total: int
    movies: list[dict[str, Any]]


class MovieIndex:
    """Title search and popularity lists over one model version's catalogue."""

    def __init__(self, document: dict[str, Any]) -> None:
        check_format(document)
        try:
            self.genre_names: list[str] = list(document["genres"])
            self.ids: list[int | str] = list(document["ids"])
            self.titles: list[str] = list(document["titles"])
            self.years: list[int | None] = list(document["years"])
            self.genre_ids: list[list[int]] = [list(g) for g in document["genre_ids"]]
            self.n_ratings: list[int] = list(document["n_ratings"])
            self.mean_ratings: list[float] = list(document["mean_ratings"])
        except (KeyError, TypeError) as exc:
            raise MovieIndexError(f"movie index lacks {exc}") from exc
        self.example_users: list[int | str] = list(document.get("example_users", []))
        self.id_keys: set[str] = {str(i) for i in self.ids}  # "19" and 19 are one id
        n = len(self.ids)
        if not all(len(c) == n for c in (self.titles, self.years, self.genre_ids, self.n_ratings, self.mean_ratings)):
            raise MovieIndexError("movie index columns differ in length")
        self._genre_col = {g.lower(): j for j, g in enumerate(self.genre_names)}
        self._masks = [sum(1 << j for j in gs) for gs in self.genre_ids]
        # Most-rated first; equal counts by catalogue order (deterministic).
        self.by_popularity = sorted(range(n), key=lambda i: (-self.n_ratings[i], i))
        self._rank = [0] * n
        for r, i in enumerate(self.by_popularity):
            self._rank[i] = r
        # One searchable line per movie, its title's forms joined by " | ", in popularity order: a scan meets the
        # more-rated movie first, so each match class can stop as soon as a page is full.
        self._lines = [" | ".join(variants(self.titles[i])) for i in self.by_popularity]
        self._exact: dict[str, list[int]] = {}
        for i in self.by_popularity:
            for form in variants(self.titles[i]):
                for key in dict.fromkeys((form, _without_year(form))):
                    self._exact.setdefault(key, []).append(i)

    @classmethod
    def from_bytes(cls, data: bytes) -> MovieIndex:
        """An index from the bytes of ``movies.json.gz``."""
        return cls(load(data))

    def __len__(self) -> int:
        return len(self.ids)

    # ------------------------------------------------------------------ filters

    def genre_mask(self, names: Iterable[str] | None) -> tuple[int, list[str]]:
        """(bit mask of the named genres, names this catalogue does not know)."""
        mask, unknown = 0, []
        for name in names or ():
            j = self._genre_col.get(name.strip().lower())
            if j is None:
                unknown.append(name)
            else:
                mask |= 1 << j
        return mask, unknown

    def _allowed(self, i: int, wanted: int, avoided: int) -> bool:
        m = self._masks[i]
        return (not wanted or bool(m & wanted)) and not m & avoided

    # ------------------------------------------------------------------ queries

    def movie(self, i: int) -> dict[str, Any]:
        """The record of movie index ``i``."""
        return {
            "movie_id": self.ids[i],
            "title": self.titles[i],
            "year": self.years[i],
            "genres": [self.genre_names[j] for j in self.genre_ids[i]],
            "n_ratings": self.n_ratings[i],
            "mean_rating": self.mean_ratings[i],
        }

    def popular(self, limit: int = 10, offset: int = 0, wanted: int = 0, avoided: int = 0) -> Page:
        """The most-rated movies that pass the genre masks."""
        order = (
            self.by_popularity
            if not (wanted or avoided)
            else [i for i in self.by_popularity if self._allowed(i, wanted, avoided)]
        )
        return Page(len(order), [self.movie(i) for i in order[offset : offset + limit]])

    def search(self, query: str, limit: int = 10, offset: int = 0, wanted: int = 0, avoided: int = 0) -> Page:
        """Movies whose title matches ``query`` (see the module docstring for the ranking)."""
        q = normalise(query)
        if not q:
            return Page(0, [])
        lines = self._lines
        # positions (popularity ranks) of every line holding the query, or all its words as word prefixes; both
        # hold the query's longest word, so one substring scan of every line finds the candidates
        words = list(dict.fromkeys(q.split()))[:MAX_WORDS]
        q = " ".join(words)  # a repeated word counts once
        longest = max(words, key=len)
        candidates = [r for r, line in enumerate(lines) if longest in line]
        if len(words) > 1:
            hits = [
                r
                for r in candidates
                if q in lines[r] or (all(w in lines[r] for w in words) and _all_word_prefixes(lines[r], words))
            ]
        else:
            hits = candidates
        if wanted or avoided:
            hits = [r for r in hits if self._allowed(self.by_popularity[r], wanted, avoided)]
        need = offset + limit
        chosen: list[int] = []
        taken: set[int] = set()

        def take(ranks) -> None:
            for r in ranks:
                if len(chosen) >= need:
                    return
                if r not in taken:
                    taken.add(r)
                    chosen.append(r)

        hit_set = set(hits)
        take(sorted(self._rank[i] for i in self._exact.get(q, ()) if self._rank[i] in hit_set))  # the title
        take(r for r in hits if lines[r].startswith(q) or f"| {q}" in lines[r])  # the title's start
        take(r for r in hits if f" {q}" in lines[r])  # a word's start
        if len(words) > 1:
            take(r for r in hits if _all_word_prefixes(lines[r], words))  # every word, any order
        take(hits)  # anywhere
        return Page(len(hits), [self.movie(self.by_popularity[r]) for r in chosen[offset:need]])


def _all_word_prefixes(line: str, words: list[str]) -> bool:
    tokens = line.split()
    return all(any(t.startswith(w) for t in tokens) for w in words)


def _without_year(text: str) -> str:
    """``"toy story 1995"`` -> ``"toy story"`` (a query naming the title exactly, without its year)."""
    head, _, tail = text.rpartition(" ")
    return head if tail.isdigit() and len(tail) == 4 else text
