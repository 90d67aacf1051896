"""MLflow behind the tracking seam (:class:`ldlpose.tracking.seam.Tracker`).

:class:`MlflowTracker` is :class:`ldlpose.tracking.runs.SearchTracker` (parent and child runs, batched
writes) answering the seam's names, plus registration, aliases and evaluations. It implements both
Protocols of the seam: :class:`~ldlpose.tracking.seam.Tracker` and the search's
:class:`~ldlpose.tracking.seam.SearchTracking` (whose trial reads, plots and summary ``SearchTracker``
answers under the same names).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from ldlpose.tracking.runs import SearchTracker

__all__ = ["MlflowTracker", "open_tracker"]


class MlflowTracker(SearchTracker):
    """One experiment (``name``) in the MLflow store at ``uri``."""

    def start_experiment(self, config_text: str, resolved: dict, sampler: str, seed: int | None,
                         manifests: Mapping[str, dict]) -> str:
        return self.start(config_text, resolved, sampler, seed, manifests)

    def start_run(self, key: str, params: Mapping, tags: Mapping[str, str] | None = None,
                  role: str = "trial", name: str | None = None) -> str:
        return self.trial_started(key, params, tags, role=role, name=name)

    def log_metrics(self, key: str, metrics: Mapping, step: int, timestamp_ms: int | None = None) -> None:
        self.trial_result(key, metrics, step, timestamp_ms=timestamp_ms)

    def log_model(self, key: str, checkpoint_dir: str | Path) -> str:
        return self.log_trial_model(key, checkpoint_dir)

    def record_selection(self, key: str, epoch: int, scores: Mapping[str, float], checkpoint_sha256: str,
                         tags: Mapping[str, str] | None = None) -> None:
        self.trial_selected(key, epoch, scores, checkpoint_sha256, tags)

    def end_run(self, key: str, status: str, metrics: Mapping, failure_reason: str | None = None,
                node: str | None = None, device: str | None = None) -> None:
        self.trial_finished(key, status, metrics, failure_reason, node, device)

    def register(self, entry: Mapping, benchmarks: list[str], *, rule: str = "validation") -> dict[str, dict]:
        from ldlpose.tracking.registry import register_champions

        return register_champions(self.uri, self.search_name, entry, benchmarks, rule=rule)

    def register_front(self, members: list[Mapping], benchmarks: list[str], *,
                       rule: str = "validation") -> dict[str, dict]:
        """Every member of a Pareto front, registered at once (ldlpose.tracking.registry.register_front)."""
        from ldlpose.tracking.registry import register_front

        return register_front(self.uri, self.search_name, members, benchmarks, rule=rule)

    def log_files(self, folder: str, figures: Mapping | None = None, texts: Mapping[str, str] | None = None
                  ) -> list[str]:
        from ldlpose.tracking.models import log_run_files

        _, parent_run_id = self._require_started()
        return log_run_files(self.uri, parent_run_id, folder, dict(figures or {}), dict(texts or {}))

    def search_record(self) -> dict:
        from ldlpose.tracking.search_record import read_search

        return read_search(self.uri, self.search_name, figures=False)

    def set_alias(self, model: str, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(model, alias, version)

    def log_evaluation(self, result: Mapping, model: Mapping, artifacts: Sequence[Path] = ()) -> str:
        from ldlpose.tracking.evaluations import log_evaluation

        return log_evaluation(self.uri, result, model, artifacts)


def open_tracker(uri: str, name: str) -> MlflowTracker:
    """The tracker of experiment ``name`` in the store at ``uri``: the seam's one implementation today."""
    return MlflowTracker(uri, name)
