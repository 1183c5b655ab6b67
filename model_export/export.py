"""Export a trained model directory to a self-describing serving artifact.

``python -m model_export.export --model DIR --out ARTIFACT_DIR``

The artifact holds:

* ``pairwise.onnx``: the Keras model converted with tf2onnx ((user, item) -> rating, interaction);
* ``catalogue.onnx``: the graph serving runs (see :mod:`model_export.catalogue_graph`);
* ``weights.npz``: the factors and biases serving needs for cold start, similarity and display;
* ``catalogue.npz``: id maps, movie metadata (title, year, genres), popularity, user histories, and each movie's
  ``similarity.TABLE_K`` nearest neighbours (``similar_items`` / ``similar_scores``, see
  :mod:`model_export.similarity`; the method and its parameters are in the manifest's ``similarity``) and, per
  neighbour, how many users liked both (``similar_liked``, the similar-movies list's reason);
* ``manifest.json``: ``model_version`` (a content hash), creation time, training metadata and metrics,
  ONNX input/output names and shapes, opset, library versions, parity figures and the sha256 of every file.

Parity is checked before anything is published: for a sample of users, onnxruntime's scores over
the whole catalogue must equal Keras ``predict`` within 1e-4, else the export fails and says by how
much. The directory appears complete or not at all (it is staged, then renamed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF C++ notices (oneDNN, tf.data) are noise here

import numpy as np

import contract
from contract import CATALOGUE_ONNX, MANIFEST, PAIRWISE_ONNX, content_version, file_entry, movie_index
from model_export import catalogue_graph, similarity
from training.data import DataError

PARITY_TOLERANCE = 1e-4


class ExportError(RuntimeError):
    """The export cannot produce a correct artifact; the message says why."""


def convert_pairwise(model, path: Path) -> None:
    """tf2onnx conversion of the pairwise Keras model with named int32 inputs ``user`` and ``item`` (and float32
    ``time``, the scaled rating time, for a model with the time feature)."""
    import tensorflow as tf
    import tf2onnx

    spec = (tf.TensorSpec([None], tf.int32, name="user"), tf.TensorSpec([None], tf.int32, name="item"))
    if any(t.name == "time" for t in model.inputs):
        spec = (*spec, tf.TensorSpec([None], tf.float32, name="time"))

        @tf.function(input_signature=spec)
        def serve(user, item, time):
            out = model({"user": user, "item": item, "time": time}, training=False)
            return {name: tf.identity(t, name=name) for name, t in out.items()}

    else:

        @tf.function(input_signature=spec)
        def serve(user, item):
            out = model({"user": user, "item": item}, training=False)
            return {name: tf.identity(t, name=name) for name, t in out.items()}

    tf2onnx.convert.from_function(serve, input_signature=spec, opset=catalogue_graph.OPSET, output_path=str(path))


def _genre_table(genres: list[list[str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    names = sorted({g for gs in genres for g in gs})
    index = {g: i for i, g in enumerate(names)}
    indptr = np.zeros(len(genres) + 1, np.int64)
    indptr[1:] = np.cumsum([len(gs) for gs in genres])
    ids = np.array([index[g] for gs in genres for g in gs], np.int32)
    return np.array(names, dtype=str), indptr, ids


def catalogue_arrays(rec, movies) -> dict[str, np.ndarray]:
    """Id maps, metadata, popularity and histories, in index order."""
    import pandas as pd

    items = rec.items.ids
    meta = movies.copy()
    if rec.items.numeric:
        meta["movie_id"] = pd.to_numeric(meta["movie_id"], errors="coerce")
    meta = meta.drop_duplicates("movie_id").set_index("movie_id").reindex(pd.Index(items))
    titles = meta["title"].fillna("").astype(str).to_numpy()
    titles = np.where(titles == "", items.astype(str), titles)
    years = pd.to_numeric(meta["year"], errors="coerce").fillna(0).astype(np.int32).to_numpy()
    genres = [[g for g in str(v).split("|") if g] if isinstance(v, str) else [] for v in meta["genres"]]
    genre_names, genre_indptr, genre_ids = _genre_table(genres)
    t = rec.train
    counts = np.bincount(t.items, minlength=len(items))
    mean_rating = np.bincount(t.items, weights=t.ratings, minlength=len(items)) / np.maximum(counts, 1)
    # Histories: per user, rated movies sorted by rating (desc), then most recent first.
    order = np.lexsort((-t.timestamps, -t.ratings, t.users))
    hist_indptr = np.zeros(len(rec.users) + 1, np.int64)
    hist_indptr[1:] = np.cumsum(np.bincount(t.users, minlength=len(rec.users)))

    def ids(a: np.ndarray) -> np.ndarray:
        return a.astype(np.int64) if a.dtype.kind in "iu" else a.astype(str)

    return {
        "user_ids": ids(rec.users.ids),
        "item_ids": ids(items),
        "titles": titles.astype(str),
        "years": years,
        "genre_names": genre_names,
        "genre_indptr": genre_indptr,
        "genre_ids": genre_ids,
        "popularity": np.argsort(-counts, kind="stable").astype(np.int32),
        "rating_counts": counts.astype(np.int32),
        "mean_ratings": mean_rating.astype(np.float32),
        "history_indptr": hist_indptr,
        "history_items": t.items[order].astype(np.int32),
        "history_ratings": t.ratings[order].astype(np.float32),
    }


def movie_index_document(cat: dict[str, np.ndarray], example_users: int = 8) -> dict:
    """The API's title index (``movies.json.gz``, see :mod:`lambdas.service.movie_index`) from the catalogue arrays.

    The example users are the ones with the most training ratings (ties by index): ids a visitor can try.
    """
    names = [str(g) for g in cat["genre_names"]]
    indptr, gids = cat["genre_indptr"], cat["genre_ids"]
    genres = [[names[j] for j in gids[indptr[i] : indptr[i + 1]]] for i in range(len(cat["item_ids"]))]
    per_user = np.diff(cat["history_indptr"])
    users = np.argsort(-per_user, kind="stable")[:example_users]
    return movie_index.build_document(
        ids=cat["item_ids"].tolist(),
        titles=cat["titles"].tolist(),
        years=cat["years"].tolist(),
        genres=genres,
        n_ratings=cat["rating_counts"].tolist(),
        mean_ratings=cat["mean_ratings"].tolist(),
        example_users=sorted(cat["user_ids"][users].tolist()),
    )


def weight_arrays(w) -> dict[str, np.ndarray]:
    """The serving weights as flat named arrays (the deep layers as deep_kernel_i / deep_bias_i / deep_relu)."""
    out: dict[str, np.ndarray] = {
        "scalars": np.array([getattr(w, name) for name in contract.SCALARS], np.float64),
        "user_rank": w.user_rank,
        "item_rank": w.item_rank,
        "item_rank_bias": w.item_rank_bias,
        "user_mf": w.user_mf,
        "user_bias": w.user_bias,
        "item_mf": w.item_mf,
        "item_bias": w.item_bias,
    }
    if w.user_implicit is not None:
        out["user_implicit"], out["item_implicit"] = w.user_implicit, w.item_implicit
    if w.item_features is not None:
        out["item_features"] = w.item_features  # already inside catalogue.onnx's precomputed item part
    if w.has_deep:
        out["deep_user_kernel"], out["deep_item_kernel"], out["deep_bias"] = (
            w.deep_user_kernel,
            w.deep_item_kernel,
            w.deep_bias,
        )
        out["deep_relu"] = np.array([layer.relu for layer in w.deep_layers])
        for i, layer in enumerate(w.deep_layers):
            out[f"deep_kernel_{i}"], out[f"deep_bias_{i}"] = layer.kernel, layer.bias
    return {k: np.asarray(v) for k, v in out.items()}


def _io(session) -> dict:
    def describe(args):
        return [
            {"name": a.name, "type": a.type, "shape": [s if isinstance(s, int) else str(s) for s in a.shape]}
            for a in args
        ]

    return {"inputs": describe(session.get_inputs()), "outputs": describe(session.get_outputs())}


def parity(rec, w, pairwise_path: Path, catalogue_path: Path, n_users: int = 16, seed: int = 0) -> dict:
    """Max |onnxruntime - Keras predict| over the whole catalogue for a sample of users."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    pair = ort.InferenceSession(str(pairwise_path), opts, providers=["CPUExecutionProvider"])
    cat = ort.InferenceSession(str(catalogue_path), opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    users = rng.choice(len(rec.users), size=min(n_users, len(rec.users)), replace=False)
    n = len(rec.items)
    uu = np.repeat(users, n).astype(np.int32)
    ii = np.tile(np.arange(n), len(users)).astype(np.int32)
    x = {"user": uu, "item": ii}
    if rec.has_time:  # scored at the serving time, which the catalogue graph has folded in
        x["time"] = np.full(len(uu), rec.config.model.time_now, np.float32)
    keras_out = rec.model.predict(x, batch_size=65536, verbose=0)
    onnx_out = dict(zip([o.name for o in pair.get_outputs()], pair.run(None, x), strict=True))
    report = {"users": len(users), "movies": n}
    report["pairwise_rating"] = float(np.abs(onnx_out["rating"] - keras_out["rating"]).max())
    # Catalogue graph: its stage-1 scores are Keras's interaction output + gamma * (rating - mu - b_u - deep).
    feeds = catalogue_feeds(w, users, np.zeros((len(users), n), bool), k=10)
    scores, top_items, top_ratings, logits = cat.run(["scores", "top_items", "top_ratings", "logits"], feeds)
    keras_rating = keras_out["rating"][:, 0].reshape(len(users), n)
    if "interaction" in keras_out:
        report["pairwise_interaction"] = float(np.abs(onnx_out["interaction"] - keras_out["interaction"]).max())
        logit = keras_out["interaction"][:, 0].reshape(len(users), n)
        mf_part = w.item_bias + w.mf_weight * (w.user_mf[users] @ w.item_mf.T)
        report["catalogue_scores"] = float(np.abs(scores - (logit + w.gamma * mf_part)).max())
        report["catalogue_logits"] = float(np.abs(logits - logit).max())
    report["catalogue_top_ratings"] = float(np.abs(top_ratings - np.take_along_axis(keras_rating, top_items, 1)).max())
    worst = max(v for k, v in report.items() if k not in ("users", "movies"))
    report["max_abs_diff"] = worst
    if not worst <= PARITY_TOLERANCE:
        raise ExportError(
            f"parity check failed: onnxruntime differs from Keras predict by up to {worst:.3g} "
            f"(tolerance {PARITY_TOLERANCE:g}); details: {json.dumps(report)}"
        )
    return report


def catalogue_feeds(w, users: np.ndarray, exclude: np.ndarray, k: int, candidates: int = contract.CANDIDATES) -> dict:
    """Inputs of catalogue.onnx for known user indices, built by the engine's own function."""
    from lambdas.engine.ranking import catalogue_feeds as feeds

    u_deep = (
        w.user_deep_inputs(w.user_mf[users], None if w.user_implicit is None else w.user_implicit[users])
        if w.has_deep
        else np.zeros((len(users), 0), np.float32)
    )
    return feeds(w.user_rank[users], w.user_mf[users], w.user_bias[users], u_deep, exclude, k, candidates)


def training_time(rec, meta: dict) -> dict:
    """The manifest's ``cutoff`` (the newest training rating's time; absent when the data has no timestamps) and
    ``events_through`` (the newest stored event trained on, from ``training.train --events``): the engine folds in
    a known user's events stored after ``events_through``, and all of them when it is absent."""
    t = rec.train.timestamps
    cutoff = int(np.max(t)) if t is not None and len(t) and np.any(t) else None
    return contract.training(cutoff, meta.get("dataset", {}).get("events_through"))


def _versions() -> dict:
    import keras
    import onnx
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    return {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "tf2onnx": tf2onnx.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


def export(model_dir: Path, out: Path, log=print) -> dict:
    """Export ``model_dir`` (from ``training.train``) to ``out``; returns the manifest."""
    import onnx
    import onnxruntime as ort
    import pandas as pd

    from training.recommender import load

    rec, meta = load(model_dir)
    if not (model_dir / "movies.csv").exists():
        raise DataError(f"{model_dir}: movies.csv missing")
    movies = pd.read_csv(model_dir / "movies.csv", keep_default_na=False)
    movies["year"] = pd.to_numeric(movies["year"], errors="coerce")
    w = rec.serving_weights()
    out = Path(out)
    stage = out.parent / f".{out.name}.staging-{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    try:
        t0 = time.perf_counter()
        log("converting the Keras model with tf2onnx ...")
        convert_pairwise(rec.model, stage / PAIRWISE_ONNX)
        onnx.save(catalogue_graph.build(w), stage / CATALOGUE_ONNX)
        with open(stage / contract.WEIGHTS, "wb") as f:
            np.savez(f, **weight_arrays(w))
        cat = catalogue_arrays(rec, movies)
        log(f"computing each movie's {similarity.TABLE_K} nearest neighbours ...")
        t_sim = time.perf_counter()
        cat["similar_items"], cat["similar_scores"] = similarity.catalogue_table(
            cat, similarity.SERVED, similarity.TABLE_K, w.item_rank
        )
        cat["similar_liked"] = similarity.liked_together(
            cat["history_indptr"], cat["history_items"], cat["history_ratings"], cat["similar_items"]
        )
        similar = {
            "method": "co-occurrence in the training histories (model_export/similarity.py)",
            "k": similarity.TABLE_K,
            "params": similarity.SERVED.as_dict(),
            "seconds": round(time.perf_counter() - t_sim, 2),
        }
        with open(stage / contract.CATALOGUE_ARRAYS, "wb") as f:
            np.savez(f, **cat)
        (stage / movie_index.FILENAME).write_bytes(movie_index.dump(movie_index_document(cat)))
        log("checking parity with Keras ...")
        report = parity(rec, w, stage / PAIRWISE_ONNX, stage / CATALOGUE_ONNX)
        files = {p.name: file_entry(p) for p in sorted(stage.iterdir()) if p.is_file()}
        opts = ort.SessionOptions()
        models = {
            name: {
                "file": f"{name}.onnx",
                "opset": catalogue_graph.OPSET,
                **_io(ort.InferenceSession(str(stage / f"{name}.onnx"), opts, providers=["CPUExecutionProvider"])),
            }
            for name in ("pairwise", "catalogue")
        }
        manifest = {
            "format": contract.FORMAT,
            "model_version": content_version(files),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "source_model": str(model_dir),
            "training": {
                **{k: meta.get(k) for k in ("dataset", "split", "seed", "train_config", "metrics", "created")},
                **training_time(rec, meta),
            },
            "model": {
                "kind": w and meta["train_config"]["model"]["kind"],
                "n_users": len(rec.users),
                "n_items": len(rec.items),
            },
            "scoring": contract.scoring(contract.CANDIDATES, meta["dataset"]["rating_scale"], gamma=w.gamma),
            "onnx": models,
            "parity": report,
            "similarity": similar,
            "versions": _versions(),
            "files": files,
        }
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(old)
            stage.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            stage.rename(out)
        log(
            f"exported {out} (model_version {manifest['model_version']}, parity {report['max_abs_diff']:.2e}, "
            f"{time.perf_counter() - t0:.1f}s)"
        )
        return manifest
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m model_export.export", description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, required=True, help="model directory from training.train")
    p.add_argument("--out", type=Path, required=True, help="artifact directory to write")
    a = p.parse_args(argv)
    try:
        export(a.model, a.out)
    except (DataError, ExportError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    from training.console import filter_native_stderr

    filter_native_stderr()
    sys.exit(main())
