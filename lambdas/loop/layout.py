"""The data bucket's layout, under the loop's ``data_prefix``:

* ``base.json``: the current base data (its version, files, row count and the forgotten users applied to it);
* ``base/<version>/ratings.csv``, ``movies.csv``: one version of the base data (MovieLens's CSV headers), written
  whole under a new version and never changed; a version a newer one replaces is deleted;
* ``runs/<run>/events/events.csv`` (the training events, :mod:`contract.events_file`), ``heldout.csv`` (the held-out
  ones), ``runs/<run>/plan.json`` (what the run gathered), ``runs/<run>/output/`` (the training job's
  ``model.tar.gz``), ``runs/<run>/decision.json`` (the gate's decision).
"""

from __future__ import annotations

from dataclasses import dataclass

from contract.training_job import EVENTS, HELDOUT, MOVIES, RATINGS

__all__ = ["EVENTS", "HELDOUT", "MOVIES", "RATINGS", "Layout"]


@dataclass(frozen=True)
class Layout:
    prefix: str = "data/"

    @property
    def pointer(self) -> str:
        return f"{self.prefix}base.json"

    def base(self, version: str) -> str:
        return f"{self.prefix}base/{version}/"

    def run(self, run_id: str) -> str:
        return f"{self.prefix}runs/{run_id}/"

    def run_events(self, run_id: str) -> str:
        return f"{self.run(run_id)}events/"

    def run_output(self, run_id: str) -> str:
        return f"{self.run(run_id)}output/"
