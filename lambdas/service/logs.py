"""The one structured logger shared by the handlers and the service modules.

Each Lambda function sets ``POWERTOOLS_SERVICE_NAME``; the ``function_name`` key (from the Lambda context) tells
the API and the worker apart when both run in one process (the local stack). Keys added per request
(``request_id``) are cleared at the start of every invocation by ``inject_lambda_context(clear_state=True)``.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "recommender")
