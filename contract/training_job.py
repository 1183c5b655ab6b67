"""The training job's container contract, shared by the job (``model_export.sagemaker_job``), the loop that
gathers its input and reads its output (``lambdas.loop``, ``infra.retrain``) and the state machine that starts it
(``infra.constructs.retraining``).

Channels (``/opt/ml/input/data/<channel>``): ``data`` holds the base data (``ratings.csv``, optional
``movies.csv``), ``events`` the training events (``events.csv``, :mod:`contract.events_file`) and, optional, the
held-out ones (``heldout.csv``), ``served`` the served model's artifact. Output, inside ``/opt/ml/model`` (and so
inside ``model.tar.gz``): the artifact's folder ``artifact`` and, when the job judged, ``evaluation.json``.
"""

from __future__ import annotations

DATA_CHANNEL, EVENTS_CHANNEL, SERVED_CHANNEL = "data", "events", "served"
RATINGS, MOVIES = "ratings.csv", "movies.csv"
EVENTS, HELDOUT = "events.csv", "heldout.csv"
ARTIFACT = "artifact"
EVALUATION = "evaluation.json"
