"""The retraining loop on small data: events stored -> exported -> trained on -> no longer folded in."""

from __future__ import annotations

import csv
import time

import numpy as np
import pytest

from lambdas.api.models import EventsRequest
from lambdas.engine import Engine
from lambdas.service import events

pytest.importorskip("keras")


def test_events_exported_trained_on_and_then_covered_by_the_new_model(flow, small_artifact, small_model_dir, tmp_path):
    from infra import events_export as events_cli
    from model_export.export import export
    from training import train as train_cli

    engine = Engine(small_artifact)
    u = int(np.argmax(np.diff(engine.h_indptr)))
    uid = int(engine.user_ids[u])
    seen = set(engine._seen(u).tolist())
    new = [int(engine.item_ids[i]) for i in range(engine.n_items) if i not in seen][:3]
    ratings = zip(new, (5.0, 4.5, 1.0), strict=True)
    request = EventsRequest(user_id=uid, events=[{"movie_id": m, "rating": r, "timestamp": 1_000} for m, r in ratings])
    written = events.store(flow.services, request)
    # a visitor with a text id: exported, but an integer-id data set cannot hold it
    written += events.store(
        flow.services, EventsRequest(user_id="visitor-1", events=[{"movie_id": new[0], "rating": 4.0}])
    )
    assert engine.recommend(uid, events=events.for_user(flow.services, uid))["events_used"] == 3

    # WHEN the events are exported and the model retrained with them
    out = tmp_path / "events.csv"
    table = ["--table", flow.settings.events_table_name, "--settle-s", "0"]
    assert events_cli.main([*table, "--out", str(out)]) == 0
    with open(out) as f:
        exported = list(csv.DictReader(f))
    assert len(exported) == 4 and set(exported[0]) == {"userId", "movieId", "rating", "timestamp", "receivedAt"}
    data = small_model_dir.parent
    model = tmp_path / "model"
    args = ["--ratings", str(data / "ratings.csv"), "--movies", str(data / "movies.csv"), "--events", str(out)]
    args += ["--out", str(model), "--epochs", "2", "--dim", "8", "--hidden", "16", "--rank-dim", "8", "--quiet"]
    assert train_cli.main(args) == 0
    export(model, tmp_path / "artifact", log=lambda *_: None)
    retrained = Engine(tmp_path / "artifact")

    # THEN the new model was trained on every event (none lands in its test split) and records the newest exported
    # one's storage time (the visitor's too: the export covered it), so it no longer folds them in
    assert retrained.events_through == max(it["received_at"] for it in written)
    assert retrained.recommend(uid, events=events.for_user(flow.services, uid))["events_used"] == 0
    r = retrained.user_index(uid)
    assert set(new) <= {int(retrained.item_ids[i]) for i in retrained._seen(r)}
    # AND an event stored after the export is still folded in
    events.store(flow.services, EventsRequest(user_id=uid, events=[{"movie_id": new[0], "rating": 0.5}]))
    assert retrained.recommend(uid, events=events.for_user(flow.services, uid))["events_used"] == 1


def test_the_export_leaves_out_the_events_of_the_last_seconds(flow, tmp_path):
    from infra import events_export as events_cli

    events.store(flow.services, EventsRequest(user_id=5, events=[{"movie_id": 1, "rating": 4.0}]), now=1_000.0)
    events.store(flow.services, EventsRequest(user_id=5, events=[{"movie_id": 2, "rating": 4.0}]))
    events.store(flow.services, EventsRequest(user_id=5, events=[{"movie_id": 3, "rating": 4.0}]), now=time.time() - 30)
    out = tmp_path / "events.csv"
    assert events_cli.main(["--table", flow.settings.events_table_name, "--out", str(out)]) == 0  # settle 60 s
    with open(out) as f:
        assert [row["movieId"] for row in csv.DictReader(f)] == ["1"]


def test_the_export_refuses_a_missing_local_stack_with_a_message(tmp_path, monkeypatch, capsys):
    from infra import events_export as events_cli

    monkeypatch.setenv("RECOMMENDER_LOCAL_CONNECTION", str(tmp_path / "nothing.json"))
    assert events_cli.main(["--local", "--out", str(tmp_path / "e.csv")]) == 2
    assert "no running local stack" in capsys.readouterr().err
    assert not (tmp_path / "e.csv").exists()


def test_events_ids_are_taken_as_written_not_as_numbers(tmp_path):
    """An all-numeric events file: only "19" is user 19 of an integer-id data set; "019", "-0" and "19.0" are
    other ids, which it cannot hold (left out), as the events table and the engine see them."""
    import pandas as pd

    from contract import integer_id
    from training.cli import with_events
    from training.data import Dataset

    ratings = pd.DataFrame({"user_id": [19, 0], "movie_id": [1, 1], "rating": [4.0, 3.0], "timestamp": [1, 1]}).astype(
        {"rating": "float32", "timestamp": "int64"}
    )
    ds = Dataset("d", ratings, pd.DataFrame({"movie_id": [1, 2]}))
    path = tmp_path / "events.csv"
    path.write_text(
        "userId,movieId,rating,timestamp,receivedAt\n19,2,5,2,1000\n019,2,1,2,1001\n-0,2,1,2,1002\n19.0,2,1,2,1003\n"
    )
    out, events = with_events(ds, path)
    assert events[["user_id", "movie_id"]].values.tolist() == [[19, 2]]
    assert out.events_through == 1003
    assert integer_id("-0") is None and integer_id("0") == 0 and integer_id("-7") == -7


def test_the_upgrade_copies_an_old_events_table_into_the_new_one(flow, lambda_context, capsys):
    """The table without the index (replaced on deploy) -> the new one: events and request pointers, so the new
    table serves the newest events and DELETE /users/{id} still finds the requests; what the new table holds
    already is kept."""
    from infra import events_copy
    from lambdas.service import events as events_service

    client = flow.services.dynamodb
    new = flow.settings.events_table_name
    client.create_table(
        TableName="old-events",
        KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}, {"AttributeName": "item_key", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("user_id", "item_key")],
        BillingMode="PAY_PER_REQUEST",
    )
    # what the old stack wrote: user 7's two events and a pointer to one of their requests
    from boto3.dynamodb.types import TypeSerializer

    ser = TypeSerializer()
    for request, now in (
        (EventsRequest(user_id=7, events=[{"movie_id": 1, "rating": 4.0}]), 1_000.0),
        (EventsRequest(user_id=7, events=[{"movie_id": 2, "rating": 2.0, "event_id": "x"}]), 2_000.0),
    ):
        for it in events.items(request, now):
            client.put_item(TableName="old-events", Item={k: ser.serialize(v) for k, v in it.items()})
    client.put_item(TableName="old-events", Item={"user_id": {"S": "requests#7"}, "item_key": {"S": "r#abc"}})
    # and the new stack's first write, a re-sent event "x" with a new rating
    events.store(flow.services, EventsRequest(user_id=7, events=[{"movie_id": 2, "rating": 5.0, "event_id": "x"}]))

    assert events_copy.main(["--from-table", "old-events", "--table", new, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "copied 2 items from old-events" in out and "1 were there already" in out
    found = events_service.for_user(flow.services, 7)
    assert sorted((e["movie_id"], e["rating"]) for e in found) == [(1, 4.0), (2, 5.0)]  # the new table's "x" kept
    assert events_service._keys(flow.services, "requests#7", "r#") == ["r#abc"]
    # again: nothing more to copy
    assert events_copy.main(["--from-table", "old-events", "--table", new, "--quiet"]) == 0
    assert "copied 0 items" in capsys.readouterr().out
    assert events_copy.main(["--from-table", new, "--table", new, "--quiet"]) == 2
