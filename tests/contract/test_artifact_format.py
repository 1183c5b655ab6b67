"""One owner of the artifact format (``contract``): the exporter writes it, the engine reads it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import contract

ROOT = Path(__file__).resolve().parents[2]


def test_the_contract_imports_with_the_standard_library_only():
    code = textwrap.dedent(
        """
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "contract" and not top.startswith("_"):
                    raise ImportError("not the standard library: " + name)
        sys.meta_path.insert(0, Block())
        import contract
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"


def test_the_exported_manifest_and_graph_follow_the_contract(small_artifact):
    import onnxruntime as ort

    manifest = contract.verify(small_artifact)
    assert manifest["format"] == contract.FORMAT
    assert manifest["scoring"]["candidates"] == contract.CANDIDATES
    assert manifest["scoring"]["scalars"] == list(contract.SCALARS)
    assert manifest["model_version"] == contract.content_version(manifest["files"])
    for name in contract.REQUIRED_FILES:
        assert manifest["files"][name] == contract.file_entry(small_artifact / name)
    session = ort.InferenceSession(str(small_artifact / contract.CATALOGUE_ONNX), providers=["CPUExecutionProvider"])
    assert tuple(i.name for i in session.get_inputs()) == contract.CATALOGUE_INPUTS
    assert tuple(o.name for o in session.get_outputs()) == contract.CATALOGUE_OUTPUTS


def test_the_engine_builds_the_graph_inputs_the_contract_names():
    from lambdas.engine.ranking import catalogue_feeds

    exclude = np.zeros((2, 40), bool)
    exclude[0, 3] = True
    feeds = catalogue_feeds(
        np.ones((2, 4)), np.ones((2, 3)), np.zeros(2), np.zeros((2, 0)), exclude, k=5, candidates=300
    )
    assert tuple(feeds) == contract.CATALOGUE_INPUTS
    assert feeds["candidates"].tolist() == [40] and feeds["k"].tolist() == [5]
    assert feeds["exclude"][0, 3] == -np.inf and feeds["exclude"][1, 3] == 0


def _with_manifest(src: Path, dest: Path, change) -> Path:
    shutil.copytree(src, dest)
    path = dest / contract.MANIFEST
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))  # the manifest is not among its own files: the version still verifies
    return dest


def test_the_engine_takes_the_candidate_count_and_scalar_order_from_the_manifest(small_artifact, tmp_path):
    from lambdas.engine import ArtifactError, Engine

    def fewer(m: dict) -> None:
        m["scoring"]["candidates"] = 20

    engine = Engine(_with_manifest(small_artifact, tmp_path / "fewer", fewer))
    assert engine.candidates == 20
    assert len(engine.recommend(0, k=30)["items"]) == 30  # k above the candidates widens stage 1 to k

    def reordered(m: dict) -> None:
        m["scoring"]["scalars"] = ["mu", "gamma", "mf_weight", "deep_weight"]

    swapped = Engine(_with_manifest(small_artifact, tmp_path / "swapped", reordered))
    plain = Engine(small_artifact)
    assert (swapped.gamma, swapped.mu) == (plain.mu, plain.gamma)

    def unknown(m: dict) -> None:
        m["scoring"]["scalars"] = ["gamma", "mu", "mf_weight", "temperature"]

    with pytest.raises(ArtifactError, match="scalars"):
        Engine(_with_manifest(small_artifact, tmp_path / "unknown", unknown))


def test_one_genre_filter_for_similar_movies(small_artifact):
    from lambdas.engine import Engine, RequestError

    engine = Engine(small_artifact)
    movie = engine.movie(0)["movie_id"]
    unfiltered = engine.similar_movies(movie, k=engine.similar_k)["items"]
    genre = engine.genre_names[0]
    wanted = engine.similar_movies(movie, k=5, genres=[genre])["items"]
    assert wanted == [m for m in unfiltered if genre in m["genres"]][:5]
    avoided = engine.similar_movies(movie, k=5, exclude_genres=[genre.upper()])["items"]
    assert avoided == [m for m in unfiltered if genre not in m["genres"]][:5]
    with pytest.raises(RequestError) as err:
        engine.similar_movies(movie, genres=["no such genre"])
    assert err.value.code == "unknown_genre"
