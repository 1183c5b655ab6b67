"""make demo's artifact step: export the trained model, or train a quick one when there is none."""

from __future__ import annotations

from infra import demo


def _record(monkeypatch) -> list[list[str]]:
    calls: list[list[str]] = []
    monkeypatch.setattr(demo.subprocess, "run", lambda cmd, **kw: calls.append([str(c) for c in cmd[1:]]))
    return calls


def test_an_existing_artifact_is_used_as_it_is(tmp_path, monkeypatch):
    calls = _record(monkeypatch)
    (tmp_path / "artifact").mkdir()
    (tmp_path / "artifact" / "manifest.json").write_text('{"files": {"movies.json.gz": {}}}')
    demo.ensure_artifact(tmp_path / "artifact", tmp_path / "model", tmp_path / "demo-model")
    assert calls == []


def test_an_artifact_without_the_movie_index_is_exported_again(tmp_path, monkeypatch):
    calls = _record(monkeypatch)
    (tmp_path / "artifact").mkdir()
    (tmp_path / "artifact" / "manifest.json").write_text('{"files": {"catalogue.npz": {}}}')
    (tmp_path / "demo-model").mkdir()
    (tmp_path / "demo-model" / "metadata.json").write_text("{}")
    demo.ensure_artifact(tmp_path / "artifact", tmp_path / "model", tmp_path / "demo-model")
    assert calls == [
        ["-m", "model_export.export", "--model", str(tmp_path / "demo-model"), "--out", str(tmp_path / "artifact")]
    ]


def test_a_trained_model_is_exported_not_retrained(tmp_path, monkeypatch):
    calls = _record(monkeypatch)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "metadata.json").write_text("{}")
    demo.ensure_artifact(tmp_path / "artifact", tmp_path / "model", tmp_path / "demo-model")
    assert calls == [
        ["-m", "model_export.export", "--model", str(tmp_path / "model"), "--out", str(tmp_path / "artifact")]
    ]


def test_with_no_model_a_quick_one_is_trained_apart_and_exported(tmp_path, monkeypatch):
    calls = _record(monkeypatch)
    demo.ensure_artifact(tmp_path / "artifact", tmp_path / "model", tmp_path / "demo-model")
    train, export = calls
    assert train == ["-m", "training.train", "--epochs", str(demo.DEMO_EPOCHS), "--out", str(tmp_path / "demo-model")]
    assert export[export.index("--model") + 1] == str(tmp_path / "demo-model")
    assert not (tmp_path / "model").exists()  # make train still builds the full model there
