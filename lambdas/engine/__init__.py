"""The inference engine: numpy + onnxruntime over an exported artifact directory."""

from lambdas.engine.artifact import Artifact, ArtifactError, load_artifact
from lambdas.engine.engine import Engine, RequestError

__all__ = ["Artifact", "ArtifactError", "Engine", "RequestError", "load_artifact"]
