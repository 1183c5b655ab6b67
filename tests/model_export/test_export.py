"""Export round trip: parity, manifest, checksums, and refusal of damaged artifacts."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from lambdas.engine.artifact import ArtifactError, load_artifact, verify
from model_export import export as export_mod


def test_manifest_describes_a_complete_artifact(small_artifact):
    manifest = verify(small_artifact)
    assert set(manifest["files"]) == {
        "pairwise.onnx",
        "catalogue.onnx",
        "weights.npz",
        "catalogue.npz",
        "movies.json.gz",
    }
    assert len(manifest["model_version"]) == 16
    assert manifest["parity"]["max_abs_diff"] <= 1e-4 and manifest["parity"]["users"] > 0
    cat_inputs = [i["name"] for i in manifest["onnx"]["catalogue"]["inputs"]]
    assert cat_inputs == ["user_rank", "user_mf", "user_bias", "user_deep", "exclude", "candidates", "k"]
    assert [i["name"] for i in manifest["onnx"]["pairwise"]["inputs"]] == ["user", "item"]
    assert {o["name"] for o in manifest["onnx"]["pairwise"]["outputs"]} == {"rating", "interaction"}
    assert manifest["onnx"]["catalogue"]["opset"] == 17
    assert {"onnxruntime", "tf2onnx", "tensorflow", "numpy"} <= set(manifest["versions"])
    assert manifest["training"]["split"]["kind"] == "random" and "rmse" in manifest["training"]["metrics"]


def test_arrays_load_without_pickle_and_cover_the_catalogue(small_artifact):
    art = load_artifact(small_artifact)
    cat = art.catalogue
    assert len(cat["item_ids"]) == art.manifest["model"]["n_items"] == len(cat["titles"])
    assert cat["titles"][0].startswith("Movie") and set(cat["genre_names"]) <= {
        "Action",
        "Comedy",
        "Drama",
        "Horror",
        "Sci-Fi",
    }
    assert cat["history_indptr"][-1] == len(cat["history_items"])
    assert np.all(np.diff(cat["rating_counts"][cat["popularity"]]) <= 0)


def test_onnx_matches_the_numpy_reference(small_artifact, small_model_dir):
    from lambdas.engine import Engine
    from training.recommender import load
    from training.scoring import two_stage_scores

    rec, _ = load(small_model_dir)
    w = rec.serving_weights()
    engine = Engine(small_artifact)
    users = np.arange(10)
    ref = rec.rank_scores(users)
    for u in users:
        got = engine.recommend_index(np.array([u]), k=5)[0]
        want = np.argsort(-ref[u])[:5]
        assert [engine.item_index(m["movie_id"]) for m in got] == want.tolist()
        np.testing.assert_allclose([m["score"] for m in got], ref[u, want], rtol=1e-4, atol=1e-4)
    assert two_stage_scores(w, users).shape == (10, len(rec.items))


def damaged(src, tmp_path, name="copy"):
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


def test_truncated_tampered_or_edited_artifacts_are_refused(small_artifact, tmp_path):
    a = damaged(small_artifact, tmp_path, "truncated")
    data = (a / "weights.npz").read_bytes()
    (a / "weights.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="truncated"):
        load_artifact(a)

    b = damaged(small_artifact, tmp_path, "tampered")
    raw = bytearray((b / "catalogue.onnx").read_bytes())
    raw[-10] ^= 0xFF
    (b / "catalogue.onnx").write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match="modified"):
        load_artifact(b)

    c = damaged(small_artifact, tmp_path, "edited")
    m = json.loads((c / "manifest.json").read_text())
    m["model_version"] = "0" * 16
    (c / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ArtifactError, match="does not match"):
        load_artifact(c)

    d = damaged(small_artifact, tmp_path, "nomanifest")
    (d / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match="not a model artifact"):
        load_artifact(d)


def test_failed_parity_fails_the_export_and_publishes_nothing(small_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(export_mod, "PARITY_TOLERANCE", 0.0)
    out = tmp_path / "never"
    assert export_mod.main(["--model", str(small_model_dir), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "parity check failed" in err and "differs from Keras predict by up to" in err
    assert not out.exists() and not list(tmp_path.glob(".never*"))
