"""The contract that training, export and serving all obey: standard library only, importing nothing of theirs.

* :mod:`contract.artifact`: the model artifact (manifest fields, hashing, file names, ONNX inputs and outputs, the
  candidate limit);
* :mod:`contract.ids`: one canonical form of a user or movie id;
* :mod:`contract.movie_index`: the movie index document export writes and the API reads;
* :mod:`contract.events_file`: the stored-events file the export writes and training reads;
* :mod:`contract.api`: request statuses and the long-poll limit;
* :mod:`contract.serving`: what the served-version parameter holds (one version, or an experiment's two) and which
  variant a user is assigned to.

The artifact and id names are also importable from here (``import contract; contract.verify(...)``).
"""

from contract.artifact import (
    CANDIDATES,
    CATALOGUE_ARRAYS,
    CATALOGUE_INPUTS,
    CATALOGUE_ONNX,
    CATALOGUE_OUTPUTS,
    DEFAULT_RATING_SCALE,
    FORMAT,
    MANIFEST,
    PAIRWISE_ONNX,
    REQUIRED_FILES,
    SCALARS,
    VERSION_LENGTH,
    WEIGHTS,
    ArtifactError,
    candidates,
    content_version,
    events_through,
    file_entry,
    is_artifact,
    rating_scale,
    read_manifest,
    scalars,
    scoring,
    sha256_file,
    training,
    verify,
)
from contract.ids import canonical_id, integer_id

__all__ = [
    "CANDIDATES",
    "CATALOGUE_ARRAYS",
    "CATALOGUE_INPUTS",
    "CATALOGUE_ONNX",
    "CATALOGUE_OUTPUTS",
    "DEFAULT_RATING_SCALE",
    "FORMAT",
    "MANIFEST",
    "PAIRWISE_ONNX",
    "REQUIRED_FILES",
    "SCALARS",
    "VERSION_LENGTH",
    "WEIGHTS",
    "ArtifactError",
    "candidates",
    "canonical_id",
    "content_version",
    "events_through",
    "file_entry",
    "integer_id",
    "is_artifact",
    "rating_scale",
    "read_manifest",
    "scalars",
    "scoring",
    "sha256_file",
    "training",
    "verify",
]
