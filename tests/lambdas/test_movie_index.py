"""The title index behind GET /movies: normalisation, the ranking of matches, filters, paging and its file format."""

from __future__ import annotations

import pytest

from contract.movie_index import MovieIndexError, build_document, dump
from lambdas.service.movie_index import MovieIndex, normalise, variants

MOVIES = [
    # id, title, genres, ratings
    (1, "Toy Story (1995)", ["Adventure", "Animation", "Children"], 215),
    (2, "Matrix, The (1999)", ["Action", "Sci-Fi"], 278),
    (3, "Matrix Reloaded, The (2003)", ["Action", "Sci-Fi"], 90),
    (4, "Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)", ["Comedy", "Romance"], 120),
    (5, "Toy Story 2 (1999)", ["Adventure", "Animation", "Children"], 97),
    (6, "Story of Us, The (1999)", ["Comedy", "Drama"], 5),
    (7, "Cité des enfants perdus, La (City of Lost Children, The) (1995)", ["Drama", "Fantasy"], 30),
    (8, "Animatrix, The (2003)", ["Animation", "Sci-Fi"], 12),
]


@pytest.fixture(scope="module")
def index() -> MovieIndex:
    doc = build_document(
        ids=[m[0] for m in MOVIES],
        titles=[m[1] for m in MOVIES],
        years=[int(m[1][-5:-1]) for m in MOVIES],
        genres=[m[2] for m in MOVIES],
        n_ratings=[m[3] for m in MOVIES],
        mean_ratings=[3.5] * len(MOVIES),
        example_users=[1, 2],
    )
    return MovieIndex.from_bytes(dump(doc))


def titles(page) -> list[str]:
    return [m["title"] for m in page.movies]


def test_normalise_folds_case_diacritics_and_punctuation():
    assert normalise("Amélie  (Fabuleux destin d'Amélie)") == "amelie fabuleux destin d amelie"
    assert normalise("Straße") == "strasse"
    assert normalise("  WALL·E ") == "wall e"
    assert normalise("Søster Æon Łódź") == "soster aeon lodz"


def test_a_query_of_many_repeated_words_costs_no_more_than_a_few(index):
    assert titles(index.search(" ".join(["a"] * 50))) == titles(index.search("a"))


def test_trailing_articles_are_searchable_in_both_orders():
    assert variants("Matrix, The (1999)") == ["matrix the 1999", "the matrix 1999"]
    assert variants("Cité des enfants perdus, La (1995)") == [
        "cite des enfants perdus la 1995",
        "la cite des enfants perdus 1995",
    ]
    assert variants("Toy Story (1995)") == ["toy story 1995"]


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("the matrix", "Matrix, The (1999)"),
        ("Matrix, The", "Matrix, The (1999)"),
        ("matrix", "Matrix, The (1999)"),  # title start before the less-rated "Matrix Reloaded"
        ("AMELIE", "Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)"),
        ("la cite", "Cité des enfants perdus, La (City of Lost Children, The) (1995)"),
        ("lost children", "Cité des enfants perdus, La (City of Lost Children, The) (1995)"),
        ("reloaded matrix", "Matrix Reloaded, The (2003)"),  # every word, in any order
    ],
)
def test_search_finds_the_expected_movie_first(index, query, first):
    assert titles(index.search(query))[0] == first


def test_matches_rank_whole_title_then_start_then_word_then_anywhere_ties_by_popularity(index):
    # "toy story": the exact title, then a title starting with it; "story": word starts by popularity, then inside
    assert titles(index.search("toy story")) == ["Toy Story (1995)", "Toy Story 2 (1999)"]
    assert titles(index.search("story")) == ["Story of Us, The (1999)", "Toy Story (1995)", "Toy Story 2 (1999)"]
    # "matrix": title starts (by popularity), then the match inside "Animatrix"
    assert titles(index.search("matrix")) == [
        "Matrix, The (1999)",
        "Matrix Reloaded, The (2003)",
        "Animatrix, The (2003)",
    ]


def test_search_pages_and_counts_every_match(index):
    page = index.search("story", limit=1, offset=1)
    assert page.total == 3
    assert titles(page) == ["Toy Story (1995)"]
    assert index.search("no such film").total == 0
    assert index.search("  ").movies == []


def test_genre_filters_apply_to_search_and_popular_lists(index):
    wanted, unknown = index.genre_mask(["animation", "Nope"])
    assert unknown == ["Nope"]
    avoided, _ = index.genre_mask(["Children"])
    assert titles(index.search("matrix", wanted=wanted)) == ["Animatrix, The (2003)"]
    assert titles(index.popular(limit=3, wanted=wanted)) == [
        "Toy Story (1995)",
        "Toy Story 2 (1999)",
        "Animatrix, The (2003)",
    ]
    page = index.popular(limit=2, offset=1, wanted=wanted, avoided=avoided)
    assert page.total == 1 and page.movies == []
    assert titles(index.popular(limit=2)) == ["Matrix, The (1999)", "Toy Story (1995)"]


def test_movie_records_carry_what_the_page_shows(index):
    movie = index.search("toy story").movies[0]
    assert movie == {
        "movie_id": 1,
        "title": "Toy Story (1995)",
        "year": 1995,
        "genres": ["Adventure", "Animation", "Children"],
        "n_ratings": 215,
        "mean_rating": 3.5,
    }
    assert index.example_users == [1, 2]


def test_the_file_is_deterministic_and_a_foreign_one_is_refused():
    doc = build_document([1], ["A (2000)"], [2000], [["Drama"]], [3], [4.0])
    assert dump(doc) == dump(doc)  # the artifact's content hash depends on these bytes
    with pytest.raises(MovieIndexError, match="format"):
        MovieIndex({**doc, "format": 99})
    with pytest.raises(MovieIndexError, match="unreadable"):
        MovieIndex.from_bytes(b"not gzip")
    with pytest.raises(MovieIndexError, match="length"):
        MovieIndex({**doc, "titles": []})
