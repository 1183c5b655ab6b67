"""The stack's building blocks: model store, results table, request queue + worker, API, web page, monitoring."""

from infra.constructs.api import RecommendationsApi
from infra.constructs.model_store import ModelStore
from infra.constructs.monitoring import Monitoring
from infra.constructs.queue_worker import QueueWorker
from infra.constructs.results_table import EventsTable, ResultsTable
from infra.constructs.site import Site

__all__ = ["EventsTable", "ModelStore", "Monitoring", "QueueWorker", "RecommendationsApi", "ResultsTable", "Site"]
