"""bench.synthetic_check: the u1-like split, and one pair end to end with the methods that need neither Keras nor the
peer libraries."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from bench import synthetic_check


def test_u1_like_split_holds_out_a_fifth_of_all_rows_from_the_first_half_of_the_users():
    rng = np.random.default_rng(0)
    ratings = pd.DataFrame({"user_id": rng.integers(0, 100, 5_000), "movie_id": rng.integers(0, 300, 5_000)})
    mask = synthetic_check.u1_like(ratings, 0.2, seed=42)
    assert (~mask).sum() == 1_000
    held_users = ratings.loc[~mask, "user_id"]
    assert held_users.max() < round(100 * 462 / 943)
    np.testing.assert_array_equal(mask, synthetic_check.u1_like(ratings, 0.2, seed=42))


def test_one_pair_end_to_end(data_dir, tmp_path, capsys):
    out, plot = tmp_path / "out", tmp_path / "check.png"
    args = ["--pairs", "ml-100k", "--methods", "popularity", "bias", "--data-dir", str(data_dir)]
    assert synthetic_check.main([*args, "--out", str(out), "--plot", str(plot)]) == 0
    result = json.loads((out / "synthetic_check.json").read_text())["pairs"]["ml-100k"]
    assert set(result["real"]["rows"]) == {"popularity", "user+item bias"}
    synthetic = result["synthetic"]["rows"]
    assert {"popularity", "user+item bias", "true model (P relevant)", "true model (choice logit)"} == set(synthetic)
    assert synthetic["true model (P relevant)"]["ndcg@10"] > synthetic["popularity"]["ndcg@10"]
    assert result["real"]["test"] == result["synthetic"]["test"] == 20_000
    md = (out / "synthetic_check.md").read_text()
    assert "| popularity |" in md and "popularity Gini" in md
    assert plot.stat().st_size > 0
    assert "wrote" in capsys.readouterr().out
