"""An experiment's figures and decision (lambdas.loop.experiment) on hand-made data, and the operator's CLI end to
end on the request flow (moto in-process): start, traffic, lists logged, ratings, decide, apply."""

from __future__ import annotations

from dataclasses import replace

import pytest

from contract.serving import CANDIDATE, SERVED, Experiment, Serving, assign, parse, render
from infra import experiment as cli
from lambdas.loop.experiment import (
    DAY_MS,
    PROMOTE,
    ROLL_BACK,
    WAIT,
    Figures,
    Rating,
    Shown,
    decide,
    figures,
    wilson,
)
from lambdas.loop.table import scan
from lambdas.service import aws, model_store
from lambdas.service.aws import Services

EXP = Experiment(served="a" * 16, candidate="b" * 16, share=0.5, experiment="e1", started_at=0, min_users=100)
T0 = 1_000 * DAY_MS


def test_wilson_interval_holds_the_rate_and_narrows_with_n():
    lo, hi = wilson(30, 100, 1.96)
    assert lo < 0.30 < hi and hi - lo == pytest.approx(0.18, abs=0.01)
    lo2, hi2 = wilson(300, 1000, 1.96)
    assert hi2 - lo2 < (hi - lo) / 3 and wilson(0, 0, 1.96) is None


def test_figures_count_each_user_once_by_their_first_list_within_the_horizon():
    shown = [
        Shown("u1", "r1", SERVED, "e1", ("10", "11", "12"), T0),
        Shown("u1", "r2", SERVED, "e1", ("20",), T0 + DAY_MS),  # a later list of the same user: not counted
        Shown("u2", "r3", CANDIDATE, "e1", ("10", "13"), T0),
        Shown("u3", "r4", CANDIDATE, "e1", ("10",), T0 + 9 * DAY_MS),  # horizon not over yet
        Shown("u4", "r5", SERVED, "other", ("10",), T0),  # another experiment
        Shown("u5", "r6", SERVED, "e1", ("30",), T0),
    ]
    rated = [
        Rating("u1", "11", 4.5, T0 + DAY_MS),  # listed, within the horizon: a hit, liked
        Rating("u1", "12", 2.0, T0 + 2 * DAY_MS),
        Rating("u1", "20", 5.0, T0 + 2 * DAY_MS),  # in the later list only
        Rating("u2", "10", 3.0, T0 + 8 * DAY_MS),  # after the 7-day horizon
        Rating("u2", "99", 5.0, T0 + DAY_MS),  # not listed
        Rating("u5", "30", 4.0, T0 - 1),  # before the list was shown
    ]
    counts = figures(shown, rated, "e1", horizon_days=7, now_ms=T0 + 8 * DAY_MS)
    served, candidate = counts[SERVED], counts[CANDIDATE]
    assert (served.users, served.hits, served.listed, served.liked, served.ratings) == (2, 1, 4, 1, [4.5, 2.0])
    assert (candidate.users, candidate.hits, candidate.listed, candidate.liked) == (1, 0, 2, 0)
    summary = served.summary(0.95)
    assert summary["hit_rate"] == 0.5 and summary["mean_rating"] == 3.25 and summary["liked_share"] == 0.25


def counts(hits_s: int, n_s: int, hits_c: int, n_c: int) -> dict[str, Figures]:
    return {SERVED: Figures(users=n_s, hits=hits_s), CANDIDATE: Figures(users=n_c, hits=hits_c)}


def test_the_decision_on_hand_made_counts():
    now = EXP.started_at + 15 * 86_400  # the window (7 days) and the horizon of its last lists (7 more) are over
    assert decide(EXP, counts(300, 1000, 330, 1000), now).action == PROMOTE  # better
    # equal: not worse beyond 2 points once the interval is narrow enough (5,000 users each), not yet at 1,000
    assert decide(EXP, counts(1500, 5000, 1500, 5000), now).action == PROMOTE
    assert decide(EXP, counts(300, 1000, 300, 1000), now).action == ROLL_BACK
    worse = decide(EXP, counts(300, 1000, 240, 1000), now)
    assert worse.action == ROLL_BACK and worse.difference == pytest.approx(-0.06) and worse.lower_bound < -0.02
    # too few users to tell a small loss from none: not shown to be no worse, so rolled back at the window's end
    assert decide(EXP, counts(30, 100, 27, 100), now).action == ROLL_BACK
    # early: wait, until both variants have min_users counted
    early = EXP.started_at + 86_400
    assert decide(EXP, counts(30, 99, 33, 1000), early).action == WAIT
    assert decide(EXP, counts(300, 1000, 330, 1000), early).action == PROMOTE
    assert decide(EXP, counts(0, 0, 0, 0), now).action == ROLL_BACK
    # an early look never rolls back for want of evidence: it waits, unless the candidate is worse beyond the margin
    assert decide(EXP, counts(60, 200, 60, 200), early).action == WAIT
    assert decide(EXP, counts(300, 1000, 150, 1000), early).action == ROLL_BACK
    # no hit in either variant says nothing: wait, and at the end roll back (never promote on no evidence)
    assert decide(EXP, counts(0, 1000, 0, 1000), early).action == WAIT
    assert decide(EXP, counts(0, 1000, 0, 1000), now).action == ROLL_BACK
    assert "non-inferiority" in worse.test and worse.figures[CANDIDATE]["users"] == 1000


@pytest.fixture
def target(flow, candidate_artifact):
    """The flow with its model served from the parameter, a candidate published, and the CLI's view of it."""
    served = flow.settings.model_version
    candidate = model_store.publish(flow.services, candidate_artifact)
    parameter = "/recommender/model-version"
    flow.services.ssm.put_parameter(Name=parameter, Value=served, Type="String")
    flow.services = Services(replace(flow.settings, model_version="", model_version_parameter=parameter))
    aws.configure(flow.services)
    model_store.clear_cache()
    s = flow.services
    found = cli.Target(
        s.ssm,
        s.s3,
        s.dynamodb,
        parameter,
        s.settings.bucket_name,
        s.settings.model_prefix,
        s.settings.events_table_name,
    )
    return flow, found, served, candidate


def test_an_experiment_started_measured_decided_and_applied(target, lambda_context):
    from tests.lambdas.test_events_api import post_events
    from tests.lambdas.test_worker import run_worker, status_of, submit

    flow, found, served, candidate = target
    experiment = cli.start(found, candidate, share=0.5, window_days=7, min_users=5, now=1_000_000)
    assert cli.serving(found) == Serving(served, experiment)
    with pytest.raises(cli.ExperimentError, match="runs"):
        cli.start(found, candidate)
    model_store.clear_cache()
    # traffic: each user asks once; the lists are logged with their variant
    users = list(range(60))
    ids = {u: submit(lambda_context, {"user_id": u, "k": 5}) for u in users}
    while flow.depth():
        run_worker(flow, lambda_context)
    results = {u: status_of(lambda_context, rid)["result"] for u, rid in ids.items()}
    for u, result in results.items():
        assert result["variant"] == assign(Serving(served, experiment), str(u))
    # what users did next: candidate users rate a listed movie (with the request it came from), served ones do not
    for u, result in results.items():
        if result["variant"] == CANDIDATE:
            movie = result["items"][0]["movie_id"]
            event = {"movie_id": movie, "rating": 4.5, "request_id": ids[u]}
            assert post_events(lambda_context, {"user_id": u, "events": [event]})[0] == 200
    items = scan(flow.services.dynamodb, flow.settings.events_table_name)
    logged = [i for i in items if i["item_key"].startswith("l#")]
    assert len(logged) == len(users) and {i["variant"] for i in logged} == {SERVED, CANDIDATE}
    # the report, the day the horizon is over for every list
    later = max(int(i["listed_at"]) for i in logged) / 1000 + 8 * 86_400
    _, decision = cli.report(found, horizon_days=7, now=later)
    assert decision.action == PROMOTE and decision.figures[CANDIDATE]["hit_rate"] == 1.0
    assert decision.figures[SERVED]["hit_rate"] == 0.0
    text = cli.render_report(experiment, decision)
    assert "decision: promote" in text and "| candidate |" in text
    # a decision made for another experiment than the one running now is never applied
    with pytest.raises(cli.ExperimentError, match="runs now"):
        cli.end(found, promote=True, decision={**decision.as_dict(), "experiment": "exp-other"})
    assert cli.serving(found) == Serving(served, experiment)
    # applied: everyone gets the candidate; the decision is kept with its manifest
    assert cli.end(found, promote=True, decision=decision.as_dict()) == candidate
    assert parse(found.ssm.get_parameter(Name=found.parameter)["Parameter"]["Value"]) == Serving(candidate)
    record = cli.manifest(found, candidate)["experiment"]
    assert record["outcome"] == "promoted" and record["decision"]["action"] == PROMOTE
    with pytest.raises(cli.ExperimentError, match="no experiment"):
        cli.end(found, promote=False)


def test_a_candidate_that_failed_the_gate_or_is_not_published_never_becomes_a_variant(target):
    import json

    _, found, served, candidate = target
    key = f"{found.model_prefix}{candidate}/manifest.json"
    manifest = json.loads(found.s3.get_object(Bucket=found.bucket, Key=key)["Body"].read())
    gated = {**manifest, "gate": {"publish": False, "reason": "NDCG@10 below the served model's"}}
    found.s3.put_object(Bucket=found.bucket, Key=key, Body=json.dumps(gated).encode())
    with pytest.raises(cli.ExperimentError, match="failed the offline gate"):
        cli.start(found, candidate)
    with pytest.raises(cli.ExperimentError, match="not published"):
        cli.start(found, "f" * 16)
    with pytest.raises(cli.ExperimentError, match="served model already"):
        cli.start(found, served)
    assert render(cli.serving(found)) == served  # nothing changed
