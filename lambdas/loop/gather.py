"""A run's first step: read the base data's pointer, every stored event and the forgotten users, apply new
forgetting to the base data, decide a running experiment (:mod:`.experiment`: promote or roll back, or wait), split
the events (:mod:`.plan`) and write the run's files; or say there is nothing to do.

Its record (``plan.json``, and what the state machine passes on) names the training job's channels as S3 URIs:
``data`` (the base version's folder), ``events`` (the run's events and held-out files) and ``served`` (the served
model's folder, judged beside the candidate).
"""

from __future__ import annotations

import json
import tempfile
import time
from typing import Any

import contract
from contract import events_file
from contract.serving import parse
from lambdas.loop import base_data, experiment, plan, table
from lambdas.loop.layout import EVENTS, HELDOUT, Layout
from lambdas.loop.settings import LoopSettings
from lambdas.settings import UNPUBLISHED, Settings

# Events stored in the last minute are left to the next run: a Scan is no snapshot, and an event written while it
# runs may land in a part of the table it has passed (the same rule as python -m infra.events_export).
SETTLE_MS = 60_000


def served_model(s3: Any, ssm: Any, settings: Settings) -> tuple[str | None, dict | None]:
    """The served version and its manifest, or (None, None) when nothing is published."""
    version = settings.model_version
    if settings.model_version_parameter:
        version = parse(ssm.get_parameter(Name=settings.model_version_parameter)["Parameter"]["Value"]).served
    if not version or version == UNPUBLISHED:
        return None, None
    key = f"{settings.model_prefix}{version}/{contract.MANIFEST}"
    return version, json.loads(s3.get_object(Bucket=settings.bucket_name, Key=key)["Body"].read())


def _write_rows(s3: Any, bucket: str, key: str, rows: list[table.Row]) -> None:
    with tempfile.NamedTemporaryFile("w", newline="", suffix=".csv") as f:
        events_file.write_rows(f, rows)
        f.flush()
        s3.upload_file(f.name, bucket, key)


def gather(
    s3: Any,
    dynamodb: Any,
    ssm: Any,
    settings: Settings,
    loop: LoopSettings,
    run_id: str,
    now_ms: int | None = None,
    settle_ms: int = SETTLE_MS,
) -> dict[str, Any]:
    """Gather a run's data; returns its record (``action``: ``train`` or ``none``, with ``reason``)."""
    layout = Layout(loop.data_prefix)
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    pointer = base_data.read_pointer(s3, loop.data_bucket, layout)
    if pointer is None:
        raise base_data.BaseDataError(
            f"no base data in s3://{loop.data_bucket}/{layout.pointer}: upload it with python -m infra.base_data"
        )
    parameter = settings.model_version_parameter
    running = experiment.current(ssm, parameter).experiment if parameter else None
    watched = experiment.Collector(running.started_at * 1000 if running else 0)
    items = table.scan(dynamodb, settings.events_table_name)
    contents = table.read(watched.watch(items) if running else items, now_ms - settle_ms)
    decided = None
    if running is not None:
        # the experiment first: a promotion makes the candidate the served model this run trains against
        decision = experiment.judge(
            running,
            watched.items,
            now_ms / 1000,
            loop.experiment_horizon_days,
            loop.experiment_confidence,
            loop.experiment_margin,
        )
        decided = {"experiment": running.experiment, "action": decision.action, "reason": decision.reason}
        if decision.action != experiment.WAIT:
            try:
                decided["serving"] = experiment.end(
                    ssm,
                    s3,
                    settings.model_version_parameter,
                    settings.bucket_name,
                    settings.model_prefix,
                    decision.action == experiment.PROMOTE,
                    decision.as_dict(),
                    expected=running.experiment,
                )
            except experiment.ExperimentChanged as exc:
                decided["skipped"] = str(exc)  # ended or replaced by an operator while the table was read
    forgotten = contents.forgotten
    if forgotten:
        pending = {u: at for u, at in forgotten.items() if at > pointer.get("forgotten_through", 0)}
        if pending:
            pointer = base_data.forget(s3, loop.data_bucket, layout, pointer, pending)
        table.delete_tombstones(dynamodb, settings.events_table_name, forgotten)
    events = plan.without_forgotten(contents.events, forgotten)
    served_version, manifest = served_model(s3, ssm, settings)
    served_through = contract.events_through(manifest) if manifest else None
    split = plan.split(events, served_through, loop.holdout_share)
    record: dict[str, Any] = {
        "run_id": run_id,
        "base": pointer,
        "served_version": served_version,
        "served_through": served_through,
        "forgotten": len(forgotten),
        "events_stored": len(events),
        "new": split.new,
        **({"experiment": decided} if decided else {}),
    }
    if split.nothing_to_do:
        return {**record, "action": "none", "reason": split.reason}
    events_prefix = layout.run_events(run_id)
    served_uri = f"s3://{settings.bucket_name}/{settings.model_prefix}{served_version}/" if served_version else None
    _write_rows(s3, loop.data_bucket, events_prefix + EVENTS, split.train)
    _write_rows(s3, loop.data_bucket, events_prefix + HELDOUT, split.heldout)
    record |= {
        "action": "train",
        "cutoff": split.cutoff,
        "train_events": len(split.train),
        "heldout_events": len(split.heldout),
        "heldout_users": len({r[0] for r in split.heldout}),
        "channels": {
            "data": f"s3://{loop.data_bucket}/{pointer['prefix']}",
            "events": f"s3://{loop.data_bucket}/{events_prefix}",
            "served": served_uri,
        },
        "output": f"s3://{loop.data_bucket}/{layout.run_output(run_id)}",
    }
    s3.put_object(
        Bucket=loop.data_bucket, Key=layout.run(run_id) + "plan.json", Body=json.dumps(record, indent=1).encode()
    )
    return record
