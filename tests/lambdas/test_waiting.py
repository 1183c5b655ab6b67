"""Long-poll slots (lambdas.service.waiting): a cap per pool of callers across the API function's containers."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import replace

import pytest

from infra.local.resources import create_resources
from lambdas.service import waiting
from lambdas.service.aws import Services
from lambdas.settings import Settings

CAP = 3


@pytest.fixture
def services(moto_aws) -> Services:
    settings = Settings(
        table_name="recommender-requests",
        events_table_name="recommender-events",
        bucket_name="recommender-models",
        region="us-east-1",
    )
    queues = create_resources(Services(settings))
    return Services(replace(settings, queue_url=queues.queue_url, long_poll_slots=CAP))


def in_order(n: int, k: int) -> list[int]:
    return list(range(n))[:k]


def slots_held(services: Services) -> list[str]:
    items = services.table.scan(ConsistentRead=True)["Items"]
    return sorted(i["request_id"] for i in items if i["request_id"].startswith(waiting.SLOT_PREFIX))


def test_at_most_the_cap_wait_at_once_per_pool_and_a_slot_is_given_back(services):
    with ExitStack() as held:
        taken = [held.enter_context(waiting.slot(services, "page", 20, pick=in_order)) for _ in range(CAP)]
        assert taken == [True] * CAP
        # GIVEN the page's pool full: the next wait is refused (answered at once) ...
        with waiting.slot(services, "page", 20, pick=in_order) as fourth:
            assert fourth is False
        # ... but the operators' pool is apart: a flood through the page never takes their slots
        with waiting.slot(services, "operator", 20, pick=in_order) as operator:
            assert operator is True
        assert len(slots_held(services)) == CAP
    # every slot given back on leaving
    assert slots_held(services) == []
    with waiting.slot(services, "page", 20, pick=in_order) as again:
        assert again is True


def test_a_slot_whose_holder_died_is_free_again_after_its_wait(services):
    clock = [1_000_000.0]
    held = [waiting.slot(services, "page", 20, now=lambda: clock[0], pick=in_order) for _ in range(CAP)]
    assert all(h.__enter__() for h in held)  # never left: the holders "died"
    with waiting.slot(services, "page", 20, now=lambda: clock[0], pick=in_order) as full:
        assert full is False
    clock[0] += 20 + waiting.MARGIN_S + 1
    with waiting.slot(services, "page", 20, now=lambda: clock[0], pick=in_order) as taken_over:
        assert taken_over is True
        # the dead holder's late give-back does not free the slot its successor now holds
        held[0].__exit__(None, None, None)
        assert waiting.slot_key("page", 0) in slots_held(services)
    assert len(slots_held(services)) == CAP - 1


def test_no_cap_and_an_unreachable_table_never_block_a_request(services):
    uncapped = Services(replace(services.settings, long_poll_slots=0))
    with waiting.slot(uncapped, "page", 20) as held:
        assert held is True
    assert slots_held(services) == []
    missing = Services(replace(services.settings, table_name="no-such-table"))
    with waiting.slot(missing, "page", 20) as held:
        assert held is False  # answered at once, not an error


def test_the_api_answers_a_wait_at_once_when_its_pool_is_full(flow, lambda_context, monkeypatch):
    from lambdas.service import status as status_service
    from tests.lambdas.test_api import get, post

    waited: list[float] = []

    def spy(services, request_id, wait_s, *args, **kwargs):
        waited.append(wait_s)
        return None, 1

    monkeypatch.setattr(status_service, "wait_until_finished", spy)
    _, _, submitted = post(lambda_context, {"similar_to": 1, "k": 3})
    request_id = submitted["request_id"]
    wait = {"wait": "5"}

    def get_waiting() -> int:
        event_status, _, doc = get(lambda_context, request_id, query=wait)
        assert doc["status"] == "PENDING"
        return event_status

    assert get_waiting() == 200 and waited == [5]
    # every operator slot held by someone else (until far in the future)
    for k in range(flow.settings.long_poll_slots):
        flow.services.table.put_item(Item={"request_id": waiting.slot_key("operator", k), "until": 4_000_000_000})
    assert get_waiting() == 200 and waited == [5]  # answered, without waiting
    assert len(slots_held(flow.services)) == flow.settings.long_poll_slots  # nothing given back that was not taken
