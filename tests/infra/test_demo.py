"""make demo's artifact step (export the trained model, or train a quick one when there is none) and its rating step."""

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


class _Client:
    """A client whose events change nothing (as if the engine ignored them); records the calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        items = [{"movie_id": m, "title": f"Movie {m}", "score": 1.0 / m} for m in (1, 2, 3, 4, 5, 6)]
        self.answers = [items[:5], items[1:6]]

    def recommend(self, body, timeout_s=None):
        return {"result": {"items": self.answers.pop(0), "events_used": 1}}

    def post_events(self, user_id, events):
        return {"stored": len(events)}

    def request(self, method, path, *args, **kwargs):
        self.calls.append((method, path))


def test_the_demo_fails_a_rating_that_only_hid_the_movie_and_still_forgets_the_user():
    import io

    from infra.demo import rate_and_see

    client, out = _Client(), io.StringIO()
    assert rate_and_see(client, out, user_id=19) == 1  # the other movies' scores did not move
    assert "FAILED" in out.getvalue()
    assert client.calls == [("DELETE", "/users/19")]
