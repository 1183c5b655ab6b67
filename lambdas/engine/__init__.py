"""The inference engine: numpy + onnxruntime over an exported artifact directory.

The names below load on first use, so importing a submodule (``lambdas.engine.artifact``) does not load the rest.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from contract import ArtifactError
    from lambdas.engine.artifact import Artifact, load_artifact
    from lambdas.engine.base import RequestError
    from lambdas.engine.engine import Engine

_HOMES = {
    "Artifact": "lambdas.engine.artifact",
    "load_artifact": "lambdas.engine.artifact",
    "ArtifactError": "contract",
    "Engine": "lambdas.engine.engine",
    "RequestError": "lambdas.engine.base",
}
__all__ = ["Artifact", "ArtifactError", "Engine", "RequestError", "load_artifact"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)
