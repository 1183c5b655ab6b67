"""The stack's building blocks: accounts, model store, tables, request queue + worker, API, web page, monitoring."""

from infra.constructs.accounts import Accounts
from infra.constructs.api import RecommendationsApi
from infra.constructs.model_store import ModelStore
from infra.constructs.monitoring import Monitoring
from infra.constructs.queue_worker import QueueWorker
from infra.constructs.results_table import EventsTable, ResultsTable
from infra.constructs.site import Site

__all__ = [
    "Accounts",
    "EventsTable",
    "ModelStore",
    "Monitoring",
    "QueueWorker",
    "RecommendationsApi",
    "ResultsTable",
    "Site",
]
