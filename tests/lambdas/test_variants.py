"""Two models live at once (contract.serving, the worker): stable assignment by user, every result labelled."""

from __future__ import annotations

from dataclasses import replace

import pytest

from contract import read_manifest
from contract.serving import CANDIDATE, SERVED, Experiment, Serving, assign, bucket, parse, render
from lambdas.service import aws, model_store
from lambdas.service.aws import Services

EXPERIMENT = Experiment(served="a" * 16, candidate="b" * 16, share=0.1, experiment="exp-1", started_at=0)


def test_assignment_is_stable_close_to_the_share_and_independent_of_the_variant_order():
    serving = Serving(EXPERIMENT.served, EXPERIMENT)
    users = [str(i) for i in range(100_000)]
    first = [assign(serving, u) for u in users]
    assert first == [assign(serving, u) for u in users]  # stable
    share = first.count(CANDIDATE) / len(users)
    assert share == pytest.approx(0.10, abs=0.005)  # 5 standard deviations of a binomial at 100k
    # the versions in either role, or other versions altogether: the same users are the candidate's
    swapped = Experiment(served="b" * 16, candidate="a" * 16, share=0.1, experiment="exp-1", started_at=0)
    assert [assign(Serving(swapped.served, swapped), u) for u in users] == first
    # another experiment draws its share independently (overlap about share squared)
    other = Serving(EXPERIMENT.served, replace(EXPERIMENT, experiment="exp-2"))
    both = sum(1 for u, v in zip(users, first, strict=True) if v == CANDIDATE and assign(other, u) == CANDIDATE)
    assert both / len(users) == pytest.approx(0.01, abs=0.002)
    # no experiment, or no user: the served model
    assert assign(Serving("a" * 16), "19") == SERVED and assign(serving, None) == SERVED
    assert 0 <= bucket("exp-1", "19") < 1


def test_the_parameter_holds_a_version_or_an_experiment():
    assert parse("9c6a300be54b4be1\n") == Serving("9c6a300be54b4be1")
    assert parse(render(EXPERIMENT)) == Serving(EXPERIMENT.served, EXPERIMENT)
    assert parse(render(EXPERIMENT)).versions == (EXPERIMENT.served, EXPERIMENT.candidate)
    for bad in ({"share": 0}, {"share": 1.5}, {"candidate": EXPERIMENT.served}):
        with pytest.raises(ValueError):
            replace(EXPERIMENT, **bad)


@pytest.fixture
def experiment_flow(flow, candidate_artifact):
    """The flow with a candidate published and the served-version parameter naming an experiment at 30%."""
    served = flow.settings.model_version
    candidate = model_store.publish(flow.services, candidate_artifact)
    assert candidate != served and candidate == read_manifest(candidate_artifact)["model_version"]
    experiment = Experiment(served=served, candidate=candidate, share=0.3, experiment="exp-test", started_at=0)
    parameter = "/recommender/model-version"
    flow.services.ssm.put_parameter(Name=parameter, Value=render(experiment), Type="String")
    flow.services = Services(replace(flow.settings, model_version="", model_version_parameter=parameter))
    aws.configure(flow.services)
    model_store.clear_cache()
    return flow, Serving(served, experiment)


def test_each_user_gets_their_variant_and_every_result_says_which(experiment_flow, lambda_context):
    from tests.lambdas.test_worker import run_worker, status_of, submit

    flow, serving = experiment_flow
    users = list(range(40))
    ids = {u: submit(lambda_context, {"user_id": u, "k": 3}) for u in users}
    batch = submit(lambda_context, {"user_ids": users, "k": 3})
    inline = submit(lambda_context, {"ratings": {"1": 5, "2": 4}, "k": 3})
    profile = submit(lambda_context, {"profile_of": 7})
    while flow.depth():
        run_worker(flow, lambda_context)
    expected = {u: assign(serving, str(u)) for u in users}
    assert 0 < list(expected.values()).count(CANDIDATE) < len(users)  # both variants served
    for u, rid in ids.items():
        result = status_of(lambda_context, rid)["result"]
        assert (result["variant"], result["experiment"]) == (expected[u], "exp-test")
        assert result["model_version"] == serving.experiment.version_of(expected[u])
    lists = status_of(lambda_context, batch)["result"]
    assert (lists["variant"], lists["model_version"]) == (SERVED, serving.served)
    assert [r["user_id"] for r in lists["results"]] == users  # request order kept
    for one in lists["results"]:
        assert one["variant"] == expected[one["user_id"]]
        assert one["model_version"] == serving.experiment.version_of(one["variant"])
    # ratings sent inline: no user to assign, the served model; a profile follows its user
    assert status_of(lambda_context, inline)["result"]["variant"] == SERVED
    shown = status_of(lambda_context, profile)["result"]
    assert shown["variant"] == expected[7] and shown["model_version"] == serving.experiment.version_of(expected[7])
