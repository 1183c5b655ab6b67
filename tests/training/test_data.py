"""Loaders for every supported format, on small fixture files the tests write, and their errors."""

from __future__ import annotations

import gzip
import json
import typing
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from training import data
from training.data import DataError, load_dataset, load_ratings_file


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding=encoding)
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    write(
        tmp_path / "ml-latest-small/ratings.csv",
        "userId,movieId,rating,timestamp\n1,10,4.0,100\n1,20,3.5,200\n2,10,5.0,150\n",
    )
    write(
        tmp_path / "ml-latest-small/movies.csv",
        'movieId,title,genres\n10,"Heat, The (1995)",Action|Crime\n20,Nameless,(no genres listed)\n',
    )
    write(tmp_path / "ml-100k/u.data", "1\t10\t4\t100\n2\t20\t3\t200\n")
    item = "10|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    item += "20|No Year|01-Jan-1997||http://y|1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    write(tmp_path / "ml-100k/u.item", item, encoding="latin-1")
    write(tmp_path / "ml-1m/ratings.dat", "1::10::4::100\n1::20::2::101\n2::10::5::102\n")
    write(
        tmp_path / "ml-1m/movies.dat", "10::Amélie (2001)::Comedy|Romance\n20::Alien (1979)::Horror|Sci-Fi\n", "latin-1"
    )
    write(tmp_path / "ml-10M100K/ratings.dat", "1::10::4.5::100\n2::20::0.5::101\n")
    write(tmp_path / "ml-10M100K/movies.dat", "10::A (2001)::Comedy\n20::B (1979)::Horror\n")
    for name in ("ml-20m", "ml-25m"):
        write(tmp_path / f"{name}/ratings.csv", "userId,movieId,rating,timestamp\n7,1,3.0,5\n8,2,4.5,6\n")
        write(tmp_path / f"{name}/movies.csv", "movieId,title,genres\n1,One (2000),Drama\n2,Two (2001),Comedy\n")
    return tmp_path


@pytest.mark.parametrize(
    ("name", "n", "scale"),
    [
        ("ml-latest-small", 3, (0.5, 5.0)),
        ("ml-100k", 2, (1.0, 5.0)),
        ("ml-1m", 3, (1.0, 5.0)),
        ("ml-10m", 2, (0.5, 5.0)),
        ("ml-20m", 2, (0.5, 5.0)),
        ("ml-25m", 2, (0.5, 5.0)),
    ],
)
def test_every_movielens_format_loads_into_the_normalised_tables(root, name, n, scale):
    ds = load_dataset(name, root, download=False)
    assert list(ds.ratings.columns) == ["user_id", "movie_id", "rating", "timestamp"]
    assert len(ds.ratings) == n and ds.rating_scale == scale
    assert ds.ratings["user_id"].dtype == np.int64 and ds.ratings["rating"].dtype == np.float32
    assert list(ds.movies.columns) == ["movie_id", "title", "year", "genres"]
    assert set(ds.ratings["movie_id"]) <= set(ds.movies["movie_id"])
    assert all(len(h) == 64 for h in ds.files.values())


def test_movie_metadata_is_parsed(root):
    small = load_dataset("ml-latest-small", root).movies.set_index("movie_id")
    assert small.loc[10, "title"] == "Heat, The (1995)" and small.loc[10, "year"] == 1995
    assert small.loc[10, "genres"] == ["Action", "Crime"]
    assert small.loc[20, "genres"] == [] and np.isnan(small.loc[20, "year"])
    k100 = load_dataset("ml-100k", root).movies.set_index("movie_id")
    assert k100.loc[10, "genres"] == ["Animation", "Children", "Comedy"]
    assert k100.loc[20, "year"] == 1997  # from the release date when the title has none
    m1 = load_dataset("ml-1m", root).movies.set_index("movie_id")
    assert m1.loc[10, "title"] == "Amélie (2001)" and m1.loc[20, "genres"] == ["Horror", "Sci-Fi"]


def test_amazon_json_lines_with_string_ids_plain_and_gzipped(tmp_path):
    recs = [
        {"reviewerID": "A2X", "asin": "B00Z", "overall": 5.0, "unixReviewTime": 1400000000},
        {"reviewerID": "A3Y", "asin": "B00Z", "overall": 2.0, "unixReviewTime": 1400000001},
    ]
    text = "\n".join(json.dumps(r) for r in recs) + "\n"
    plain = write(tmp_path / "reviews.json", text)
    gz = tmp_path / "reviews.json.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    for path in (plain, gz):
        ds = load_ratings_file(path)
        assert ds.ratings["user_id"].tolist() == ["A2X", "A3Y"]
        assert ds.ratings["movie_id"].dtype == object and ds.rating_scale == (1.0, 5.0)
        assert ds.movies["title"].tolist() == ["B00Z"]


def test_generic_csv_with_other_column_names_and_string_ids(tmp_path):
    f = write(tmp_path / "mine.csv", "user,item,score\nalice,m1,4\nbob,m2,3\n")
    movies = write(tmp_path / "items.csv", "item_id,name,genres\nm1,First (1999),Drama\n")
    ds = load_ratings_file(f, movies)
    assert ds.ratings["user_id"].tolist() == ["alice", "bob"]
    assert (ds.ratings["timestamp"] == 0).all()
    m = ds.movies.set_index("movie_id")
    assert m.loc["m1", "title"] == "First (1999)" and m.loc["m2", "title"] == "m2"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("userId,rating\n1,4\n", "missing column 'movie_id'"),
        ("userId,movieId,rating\n1,2,4\n1,3,good\n", "mine.csv:3: rating 'good' is not a number"),
        ("userId,movieId,rating\n1,2,4\n1,3,7\n", "mine.csv:3: rating 7 is outside the scale 0.5-5"),
        ("userId,movieId,rating\n1,2,4\n,3,4\n", "mine.csv:3: missing user id"),
        ("userId,movieId,rating,timestamp\n1,2,4,yesterday\n", "mine.csv:2: timestamp 'yesterday' is not a number"),
    ],
)
def test_bad_csv_rows_name_the_file_and_line(tmp_path, content, message):
    with pytest.raises(DataError, match=message.replace(".", r"\.")):
        load_ratings_file(write(tmp_path / "mine.csv", content))


def test_unparseable_ids_in_integer_formats_name_the_line(root):
    write(root / "ml-100k/u.data", "1\t10\t4\t100\nx7\t20\t3\t200\n")
    with pytest.raises(DataError, match=r"u\.data:2: user id 'x7' is not an integer id"):
        load_dataset("ml-100k", root)
    write(root / "ml-1m/ratings.dat", "1::10::4::100\n1::20::9::101\n")
    with pytest.raises(DataError, match=r"ratings\.dat:2: rating 9 is outside the scale 1-5"):
        load_dataset("ml-1m", root)


def test_bad_json_line_is_named(tmp_path):
    f = write(tmp_path / "r.jsonl", '{"reviewerID": "a", "asin": "b", "overall": 4}\n{oops\n')
    with pytest.raises(DataError, match=r"r\.jsonl:2: invalid JSON"):
        load_ratings_file(f)
    f = write(tmp_path / "s.jsonl", '{"reviewerID": "a", "overall": 4}\n')
    with pytest.raises(DataError, match=r"s\.jsonl:1: missing field\(s\) asin"):
        load_ratings_file(f)


def test_duplicates_keep_the_latest_rating_and_are_counted(tmp_path):
    f = write(tmp_path / "d.csv", "userId,movieId,rating,timestamp\n1,1,2,50\n1,2,3,10\n1,1,5,40\n1,1,4,50\n")
    ds = load_ratings_file(f)
    assert ds.duplicates_dropped == 2
    assert ds.ratings[["movie_id", "rating"]].values.tolist() == [[2, 3.0], [1, 4.0]]


def test_data_dir_order_and_the_offline_message(tmp_path, monkeypatch, root):
    monkeypatch.setenv("RECSYS_DATA_DIR", str(root))
    assert data.data_root() == root and data.data_root(tmp_path / "x") == tmp_path / "x"
    assert len(load_dataset("ml-latest-small").ratings) == 3

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(data.urllib.request, "urlopen", offline)
    with pytest.raises(DataError) as err:
        load_dataset("ml-1m", tmp_path / "empty")
    msg = str(err.value)
    assert "https://files.grouplens.org/datasets/movielens/ml-1m.zip" in msg and "RECSYS_DATA_DIR" in msg
    assert "could not be downloaded" in msg


def test_download_verifies_the_published_checksum(tmp_path, monkeypatch):
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ml-100k/u.data", "1\t1\t5\t1\n")
    payload = buf.getvalue()

    class Resp(io.BytesIO):
        headers: typing.ClassVar[dict] = {"Content-Length": str(len(payload))}

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    def fake(url, timeout=0):
        return Resp(b"0" * 32 + b"  ml-100k.zip\n") if url.endswith(".md5") else Resp(payload)

    monkeypatch.setattr(data.urllib.request, "urlopen", fake)
    with pytest.raises(DataError, match="checksum mismatch"):
        load_dataset("ml-100k", tmp_path)
    assert not (tmp_path / "ml-100k").exists() and not list(tmp_path.glob(".*.part"))

    import hashlib

    good = hashlib.md5(payload).hexdigest().encode()
    monkeypatch.setattr(
        data.urllib.request, "urlopen", lambda url, timeout=0: Resp(good) if url.endswith(".md5") else Resp(payload)
    )
    assert len(load_dataset("ml-100k", tmp_path).ratings) == 1


def test_real_movielens_files_match_the_manifest(data_dir):
    ds = load_dataset("ml-latest-small", data_dir, download=False)
    assert len(ds.ratings) == 100_836 and ds.ratings["user_id"].nunique() == 610
    assert ds.files["ratings.csv"] == data.KNOWN_SHA256[("ml-latest-small", "ratings.csv")]
    base, test = data.load_100k_split("u1", data_dir)
    assert len(base.ratings) == 80_000 and len(test) == 20_000
