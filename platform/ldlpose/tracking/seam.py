"""The tracking seam: what search, training and evaluation ask of a tracking backend.

:class:`Tracker` is the interface: start an experiment and its runs, log params and metrics, log a
model, register a chosen model and set an alias. MLflow is its one implementation
(:class:`ldlpose.tracking.mlflow_tracker.MlflowTracker`, returned by :func:`ldlpose.tracking.open_tracker`).
Adding a tracking backend = one module implementing this Protocol, and ``open_tracker`` choosing it.

A run is named by a key of the caller's choosing (a Tune trial id, or a training run's name);
statuses are ``FINISHED``, ``FAILED`` or ``KILLED``. Which registered version becomes champion is
decided by :mod:`ldlpose.selection`, never by a backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

__all__ = ["Tracker"]


@runtime_checkable
class Tracker(Protocol):
    """One experiment's runs in a tracking backend, written from one process."""

    @property
    def experiment_id(self) -> str | None:
        """The experiment's id in the backend once started (for its page in a UI)."""

    def start_experiment(self, config_text: str, resolved: dict, sampler: str, seed: int | None,
                         manifests: Mapping[str, dict]) -> str:
        """Open the experiment's parent run (reused by a resumed one) with its config and data manifests; its id."""

    def start_run(self, key: str, params: Mapping, tags: Mapping[str, str] | None = None,
                  role: str = "trial") -> str:
        """A child run for ``key`` (created unless an earlier attempt made one) with its params; its id."""

    def log_metrics(self, key: str, metrics: Mapping, step: int) -> None:
        """The numeric entries of ``metrics`` at ``step`` (an epoch)."""

    def log_model(self, key: str, checkpoint_dir: str | Path) -> str:
        """The checkpoint in ``checkpoint_dir`` as the run's model; its URI (``models:/...``)."""

    def record_selection(self, key: str, epoch: int, scores: Mapping[str, float], checkpoint_sha256: str,
                         tags: Mapping[str, str] | None = None) -> None:
        """The run's selected checkpoint: its epoch, scores, digest and identity tags."""

    def end_run(self, key: str, status: str, metrics: Mapping, failure_reason: str | None = None,
                node: str | None = None, device: str | None = None) -> None:
        """Close the run with ``status`` and its final metrics."""

    def register(self, entry: Mapping, benchmarks: list[str], *, rule: str = "validation") -> dict[str, dict]:
        """Register a chosen run's model per benchmark and move the rule's alias (ldlpose.selection.champion);
        ``{benchmark: {"model", "version", "mae", "alias", "champion", "moved", "comparable"}}``."""

    def set_alias(self, model: str, alias: str, version: str) -> None:
        """Point ``alias`` of registered model ``model`` at ``version``."""

    def log_evaluation(self, result: Mapping, model: Mapping, artifacts: Sequence[Path] = ()) -> str:
        """One benchmark result of ``ldlpose evaluate`` for ``model``; the run's id."""

    def finish(self, status: str = "FINISHED", error: str | None = None) -> None:
        """Close the experiment's parent run."""
