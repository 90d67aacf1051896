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

__all__ = ["SearchTracking", "Tracker"]


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
                  role: str = "trial", name: str | None = None) -> str:
        """A child run for ``key`` (created unless an earlier attempt made one) with its params; its id.
        ``name``: how a UI lists it (default: ``key``); runs are found again by ``key``, never by name."""

    def log_metrics(self, key: str, metrics: Mapping, step: int, timestamp_ms: int | None = None) -> None:
        """The numeric entries of ``metrics`` at ``step`` (an epoch); ``timestamp_ms``: when they were
        measured (default: now), kept by a replayed write so that it is not stored twice."""

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


@runtime_checkable
class SearchTracking(Tracker, Protocol):
    """What a search asks besides :class:`Tracker`: it rebuilds everything it registers from stored state,
    so it reads its trials' runs back, and it files plots and a summary on the experiment's parent run."""

    def trial_ids(self) -> list[str]:
        """The keys of every run under the experiment, as the store holds them now (earlier attempts' too)."""

    def trial_record(self, key: str) -> dict | None:
        """What the store holds of ``key``'s run: ``{"run_id", "status", "tags", "metrics"}``, or None."""

    def log_trial_artifacts(self, key: str, checkpoint_dir: str | Path, eval_data: Mapping) -> list[str]:
        """Plots of the checkpoint's predictions on ``eval_data`` (benchmark -> (images, angles_deg)) on
        ``key``'s run; the artifact paths."""

    def log_files(self, folder: str, figures: Mapping | None = None, texts: Mapping[str, str] | None = None
                  ) -> list[str]:
        """Figures (name -> matplotlib figure) and text files (name -> text) on the parent run under
        ``folder``; the artifact paths."""

    def log_search_plots(self, study) -> list[str]:
        """The sampler's own plots of ``study`` (an Optuna study) on the parent run; the artifact paths."""

    def log_search_summary(self, metrics: Mapping[str, float], figures: Mapping, tags: Mapping[str, str]) -> None:
        """The search's summary on its parent run: metrics (the latest wins), tags and figures."""

    def search_record(self) -> dict:
        """The whole search as stored (its runs and registered versions, no figures), what
        :func:`ldlpose.search.story.tell` reads."""

    def register_front(self, members: list[Mapping], benchmarks: list[str], *,
                       rule: str = "validation") -> dict[str, dict]:
        """Every member of a Pareto front registered at once, the rule's alias moved among them
        (ldlpose.selection.champion); ``{benchmark: {"model", "versions", "alias", "champion", ...}}``."""
