"""The local stack: the request flow on one machine (moto + the Lambda handlers), see :mod:`infra.local.stack`."""

from infra.local.gateway import WEB_ROOT, static_file
from infra.local.stack import DEFAULT_ARTIFACT, DEFAULT_PORT, DEFAULT_WORKERS, LocalStack
from infra.local.wait import wait_for_interrupt

__all__ = [
    "DEFAULT_ARTIFACT",
    "DEFAULT_PORT",
    "DEFAULT_WORKERS",
    "WEB_ROOT",
    "LocalStack",
    "static_file",
    "wait_for_interrupt",
]
