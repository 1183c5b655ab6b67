"""The Lambda packager's dependency cache is written whole or not at all, whoever else builds it at the same time."""

from __future__ import annotations

from model_export.package import _fill_cache


def test_the_cache_is_renamed_in_whole_and_a_second_builder_keeps_the_first(tmp_path):
    built = tmp_path / "dest"
    (built / "numpy").mkdir(parents=True)
    (built / "numpy" / "core.py").write_text("first")
    cache = tmp_path / "build" / ".deps-cache" / "x86_64"
    _fill_cache(built, cache, 7)
    assert (cache / ".complete").read_text() == "7" and (cache / "numpy" / "core.py").read_text() == "first"
    # a second build finishing later (another test worker) leaves the complete cache as it was, and no staging
    (built / "numpy" / "core.py").write_text("second")
    _fill_cache(built, cache, 9)
    assert (cache / ".complete").read_text() == "7" and (cache / "numpy" / "core.py").read_text() == "first"
    assert [p.name for p in cache.parent.iterdir()] == ["x86_64"]


def test_a_half_written_cache_is_replaced(tmp_path):
    built = tmp_path / "dest"
    built.mkdir()
    (built / "pydantic.py").write_text("ok")
    cache = tmp_path / "cache"
    (cache / "stale").mkdir(parents=True)  # a build that died before writing .complete
    _fill_cache(built, cache, 1)
    assert sorted(p.name for p in cache.iterdir()) == [".complete", "pydantic.py"]
