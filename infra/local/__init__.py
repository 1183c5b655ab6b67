"""The local stack: the request flow on one machine (moto + the Lambda handlers), see :mod:`infra.local.stack`.

Names are imported on first use, so that ``python -m infra.local.endpoint`` (a process of the stack) does not
import the rest of the package before it runs.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {
    "DEFAULT_ARTIFACT": "infra.local.stack",
    "DEFAULT_PORT": "infra.local.stack",
    "DEFAULT_WORKERS": "infra.local.stack",
    "LocalStack": "infra.local.stack",
    "WEB_ROOT": "infra.local.gateway",
    "static_file": "infra.local.gateway",
    "wait_for_interrupt": "infra.local.wait",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'infra.local' has no attribute {name!r}")
