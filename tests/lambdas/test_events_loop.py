"""The retraining loop on small data: events stored -> exported -> trained on -> no longer folded in."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from lambdas.api.models import EventsRequest
from lambdas.engine import Engine
from lambdas.service import events

pytest.importorskip("keras")


def test_events_exported_trained_on_and_then_covered_by_the_new_model(flow, small_artifact, small_model_dir, tmp_path):
    from model_export.export import export
    from training import events as events_cli
    from training import train as train_cli

    engine = Engine(small_artifact)
    u = int(np.argmax(np.diff(engine.h_indptr)))
    uid = int(engine.user_ids[u])
    seen = set(engine._seen(u).tolist())
    new = [int(engine.item_ids[i]) for i in range(engine.n_items) if i not in seen][:3]
    now = engine.cutoff + 1000
    ratings = zip(new, (5.0, 4.5, 1.0), strict=True)
    request = EventsRequest(user_id=uid, events=[{"movie_id": m, "rating": r, "timestamp": now} for m, r in ratings])
    events.store(flow.services, request)
    # a visitor with a text id: exported, but an integer-id data set cannot hold it
    events.store(flow.services, EventsRequest(user_id="visitor-1", events=[{"movie_id": new[0], "rating": 4.0}]))
    assert engine.recommend(uid, events=events.for_user(flow.services, uid))["events_used"] == 3

    # WHEN the events are exported and the model retrained with them
    out = tmp_path / "events.csv"
    assert events_cli.main(["--table", flow.settings.events_table_name, "--out", str(out)]) == 0
    with open(out) as f:
        exported = list(csv.DictReader(f))
    assert len(exported) == 4 and set(exported[0]) == {"userId", "movieId", "rating", "timestamp"}
    data = small_model_dir.parent
    model = tmp_path / "model"
    args = ["--ratings", str(data / "ratings.csv"), "--movies", str(data / "movies.csv"), "--events", str(out)]
    args += ["--out", str(model), "--epochs", "2", "--dim", "8", "--hidden", "16", "--rank-dim", "8", "--quiet"]
    assert train_cli.main(args) == 0
    export(model, tmp_path / "artifact", log=lambda *_: None)
    retrained = Engine(tmp_path / "artifact")

    # THEN the new model's cutoff covers the events: they are in its training data (or test split), not folded in
    assert retrained.cutoff == now
    assert retrained.recommend(uid, events=events.for_user(flow.services, uid))["events_used"] == 0
    r = retrained.user_index(uid)
    in_training = {int(retrained.item_ids[i]) for i in retrained._seen(r)}
    held_out = set(new) - in_training  # the seeded 90/10 split may hold some out for the test
    assert len(held_out) < len(new)


def test_the_export_refuses_a_missing_local_stack_with_a_message(tmp_path, monkeypatch, capsys):
    from training import events as events_cli

    monkeypatch.setenv("RECOMMENDER_LOCAL_CONNECTION", str(tmp_path / "nothing.json"))
    assert events_cli.main(["--local", "--out", str(tmp_path / "e.csv")]) == 2
    assert "no running local stack" in capsys.readouterr().err
    assert not (tmp_path / "e.csv").exists()
