"""make bench-learn's arithmetic and report: when a run counts as learned, the tables and the bar's verdict."""

from __future__ import annotations

import pytest

from bench.time_to_learn import SIZES, epochs_per_size, plot, report, run_child, time_to_plateau


def history(ndcgs: list[float], train_s: float = 10.0, val_s: float = 2.0) -> list[dict]:
    return [{"epoch": i + 1, "train_s": train_s, "val_s": val_s, "val_ndcg@10": v} for i, v in enumerate(ndcgs)]


def test_learned_is_the_first_epoch_within_two_percent_of_the_best():
    got = time_to_plateau(history([0.10, 0.20, 0.295, 0.30, 0.299, 0.28]))
    assert got["best"] == 0.30 and got["best_epoch"] == 4
    assert got["epoch"] == 3  # 0.295 >= 0.98 x 0.30; 0.20 is not
    assert got["seconds"] == pytest.approx(3 * 12.0)  # training and validation of three epochs
    assert [s for s, _ in got["curve"]] == pytest.approx([12.0, 24.0, 36.0, 48.0, 60.0, 72.0])
    assert time_to_plateau([])["epoch"] is None


def row(size: str, learn_s: float, peak_gb: float) -> dict:
    return {
        "size": size,
        "training_ratings": 900,
        "movies": 62_000,
        "device": "cpu",
        "peak_gb": peak_gb,
        "served": {
            "time_to_learn_s": learn_s,
            "epochs_to_learn": 3,
            "fit_s": learn_s * 2,
            "epochs_run": 9,
            "ndcg@10": 0.3,
            "rmse": 0.9,
            "curve": [[learn_s / 3 * i, 0.1 * i] for i in range(1, 4)],
        },
        "epoch": {
            "epoch_s": 10.0,
            "batches_s": 1.0,
            "rating_head_and_deep_epoch_s": 4.0,
            "interaction_head_s": 6.0,
            "dense_table_updates_s": 3.0,
            "dense_table_updates_keras_adam_s": 7.5,
            "validation_s": 2.0,
        },
        "peers": {"implicit ALS": {"ndcg@10": 0.2, "fit_s": 1.0}, "implicit BPR": {"ndcg@10": 0.15, "fit_s": 2.0}},
        "ceiling": {"ndcg@10": 0.5, "rmse": 0.8},
    }


def test_the_report_gives_the_25m_verdict_on_time_and_memory(tmp_path):
    fast = report([row("1M", 100.0, 2.0), row("25M", 1700.0, 12.0)])
    assert "| 25M | 900 | 1,700 s (3) |" in fast and "0.300 / 0.200 / 0.150 / 0.500" in fast
    assert "| 3.0 s (7.5 s) |" in fast  # the fused update beside Keras's Adam
    assert "| all 62,000 movies |" in fast  # runs from before the sampled normaliser: the whole catalogue
    sampled = row("25M", 1700.0, 12.0)
    sampled["served"]["softmax"] = {"kind": "per-user", "chunk": 88, "sample": 8192}
    assert "| 8,192 of 62,000 movies drawn a step |" in report([sampled])
    capped = row("10M", 500.0, 4.0)
    capped["served"].update(max_epochs=9, best_epoch=9)
    assert "| 1,000 s (9, the cap: still improving) |" in report([capped])
    assert fast.endswith("met") and "NOT met" not in fast
    assert report([row("25M", 1900.0, 12.0)]).endswith("NOT met")
    assert report([row("25M", 1700.0, 17.0)]).endswith("NOT met")  # over 16 GB
    failed = report([{"size": "10M", "error": "stopped after 60 s"}])
    assert "| 10M | stopped after 60 s |" in failed
    plot([row("1M", 100.0, 2.0), {"size": "10M", "error": "x"}], tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 10_000


def test_the_sizes_are_the_movielens_releases_shapes():
    assert (SIZES["1M"].n_users, SIZES["1M"].n_movies, SIZES["1M"].step) == (6_040, 3_706, 1.0)
    assert (SIZES["10M"].n_users, SIZES["10M"].n_movies, SIZES["10M"].step) == (69_878, 10_677, 0.5)
    assert (SIZES["25M"].n_users, SIZES["25M"].n_movies) == (162_000, 62_000)


def test_a_child_that_runs_too_long_is_stopped(monkeypatch, tmp_path):
    import sys

    slow = tmp_path / "slow"
    slow.write_text("#!/bin/sh\necho started\nsleep 30\n")
    slow.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(slow))  # the child: prints a line, then never finishes
    assert run_child("1M", 1, 0, timeout_s=1, device="cpu") == {"size": "1M", "error": "stopped after 1 s"}
    slow.write_text("#!/bin/sh\nexit 3\n")
    assert run_child("1M", 1, 0, timeout_s=5, device="cpu") == {"size": "1M", "error": "exit 3"}


def test_epochs_are_given_for_every_size_or_for_one():
    assert epochs_per_size(["12", "10M=3"], ["1M", "10M"]) == {"1M": 12, "10M": 3}
    assert epochs_per_size(["25M=2"], ["1M", "25M"]) == {"1M": 40, "25M": 2}
    for bad in (["2M=3"], ["10M=0"], ["x"]):
        with pytest.raises(SystemExit, match="--epochs"):
            epochs_per_size(bad, ["1M"])


def test_a_step_is_timed_with_each_normaliser_side_by_side():
    from bench.time_to_learn import normaliser_step_seconds
    from training.config import ModelConfig, TrainConfig
    from training.synthetic import low_rank_ratings

    data = low_rank_ratings(n_users=60, n_items=50, density=0.3, seed=0)
    cfg = TrainConfig(batch_size=128, model=ModelConfig(dim=4, hidden=(8,), rank_dim=8, item_features=False))
    by = normaliser_step_seconds(data, cfg, (0, 16), steps=2, rounds=1)
    assert set(by) == {0, 16} and all(v > 0 for v in by.values())
    sampled = row("25M", 1700.0, 12.0)
    sampled["epoch"]["step_s_by_normaliser"] = {"0": 3.0, "8192": 1.5}
    assert "3.00 s with the whole catalogue's softmax normaliser, 1.50 s with 8,192 movies drawn (2.0x)" in report(
        [sampled]
    )
