"""Parent and child runs of one search (:class:`SearchTracker`); see :mod:`ldlpose.tracking`."""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ldlpose.errors import ConfigError
from ldlpose.infra.files import sha256_file
from ldlpose.tracking import export_worker
from ldlpose.tracking._common import (
    _STATUSES,
    TAG_MODEL_SHA,
    TAG_MODEL_URI,
    TAG_PARENT,
    TAG_ROLE,
    TAG_SEARCH,
    TAG_SELECTED_EPOCH,
    TAG_SELECTED_SHA,
    TAG_TRIAL,
    TrackingError,
    _check_name,
    _client,
    _experiment_id,
    _git,
    _log_batch,
    _mlflow_key,
    _param_value,
    _sqlite_path,
    redact,
)

TAG_ERROR = "ldlpose.error"  # on a parent run that ended FAILED: why (e.g. the registration's error)

# ---------------------------------------------------------------------------------------------
# Values: flattening, filtering


def flatten(data: Mapping, prefix: str = "", sep: str = ".") -> dict:
    flat = {}
    for key, value in data.items():
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name, sep))
        else:
            flat[name] = value
    return flat


def _numbers(metrics: Mapping, nested: bool = False) -> dict[str, float]:
    """The numeric entries; strings, bools, None and (unless ``nested``, which flattens them with
    '_') dicts are dropped, e.g. the ``config`` inside a Ray Tune result."""
    out = {}
    items = flatten(metrics, sep="_") if nested else metrics
    for key, value in items.items():
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, (int, float, np.integer, np.floating)) or (
                hasattr(value, "ndim") and value.ndim == 0):
            out[_mlflow_key(key)] = float(value)
    return out


def _environment_tags() -> dict[str, str]:
    """Package versions and the git commit of the working directory, when it is a checkout."""
    from importlib import metadata

    tags = {"ldlpose.version.python": sys.version.split()[0]}
    for package in ("ldlpose", "torch", "torchvision", "ray", "mlflow", "optuna", "numpy"):
        try:
            tags[f"ldlpose.version.{package}"] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    commit = _git(["rev-parse", "HEAD"])
    if commit:
        tags["mlflow.source.git.commit"] = commit
        tags["ldlpose.git_dirty"] = str(bool(_git(["status", "--porcelain", "--untracked-files=no"])))
    return tags


# ---------------------------------------------------------------------------------------------
# Runs of one search


class SearchTracker:
    """Parent and child runs of one search, written from one process (see :mod:`ldlpose.tracking`)."""

    def __init__(self, uri: str, search_name: str):
        self.uri = uri
        self.search_name = _check_name("search name", search_name)
        self.client = _client(uri)
        self.experiment_id: str | None = None
        self.parent_run_id: str | None = None
        self._trial_runs: dict[str, str] = {}

    # -- search ---------------------------------------------------------------------------------

    def start(self, space_yaml_text: str, resolved_space: dict, sampler: str, seed: int | None,
              manifests: Mapping[str, dict]) -> str:
        """Create the parent run, or reuse the one of an earlier attempt of this search; its id."""
        self.experiment_id = self._experiment()
        parent = self._find_runs(f"tags.`{TAG_SEARCH}` = '{self.search_name}' and tags.`{TAG_ROLE}` = 'search'")
        if parent:
            run = parent[0]
            self.client.update_run(run.info.run_id, status="RUNNING")
            attempt = int(run.data.tags.get("ldlpose.attempts", "1")) + 1
            old_params = run.data.params
        else:
            run = self.client.create_run(self.experiment_id, run_name=self.search_name,
                                         tags={TAG_SEARCH: self.search_name, TAG_ROLE: "search"})
            attempt, old_params = 1, {}
        self.parent_run_id = run.info.run_id
        params = {"sampler": sampler, "seed": "none" if seed is None else seed,
                  **{f"space.{k}": v for k, v in flatten(resolved_space).items()}}
        for name, manifest in manifests.items():
            for key in ("content_hash", "rows", "subjects", "dataset"):
                if key in manifest:
                    params[f"data.{name}.{key}"] = manifest[key]
        params = {_mlflow_key(k): _param_value(v) for k, v in params.items()}
        changed = sorted(k for k, v in params.items() if k in old_params and old_params[k] != v)
        files_sha = hashlib.sha256(json.dumps([space_yaml_text, params], sort_keys=True).encode()).hexdigest()
        tags = {**_environment_tags(), "ldlpose.attempts": str(attempt), "ldlpose.status": "RUNNING",
                "ldlpose.search_files_sha256": files_sha}
        if changed:  # parameters are immutable in MLflow; the first attempt's values stay
            tags["ldlpose.params_changed_on_resume"] = ", ".join(changed)
        _log_batch(self.client, self.parent_run_id, tags=tags,
                   params={k: v for k, v in params.items() if k not in old_params})
        if run.data.tags.get("ldlpose.search_files_sha256") != files_sha:
            self._log_search_files(attempt, space_yaml_text, resolved_space, sampler, seed, manifests)
        self._trial_runs = self._existing_trials()
        return self.parent_run_id

    def _log_search_files(self, attempt: int, yaml_text: str, resolved_space: dict, sampler: str,
                          seed: int | None, manifests: Mapping[str, dict]) -> None:
        # The first attempt's files stay at the top; a resumed attempt whose YAML or resolved values
        # differ adds its own under attempt-N/.
        prefix = "" if attempt == 1 else f"attempt-{attempt}/"
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / "search.yaml").write_text(redact(yaml_text))  # a URI's password never reaches MLflow
            resolved = {"sampler": sampler, "seed": seed, "space": resolved_space}
            (root / "resolved_space.json").write_text(redact(json.dumps(resolved, indent=2, default=str)) + "\n")
            for name, manifest in manifests.items():
                file = root / "manifests" / f"{name}.json"
                file.parent.mkdir(parents=True, exist_ok=True)
                file.write_text(json.dumps(manifest, indent=2, default=str) + "\n")
            self.client.log_artifacts(self.parent_run_id, tmp, prefix.rstrip("/") or None)

    def _experiment(self) -> str:
        return _experiment_id(self.client, self.uri, self.search_name, self._artifact_root(),
                              tags={TAG_SEARCH: self.search_name}, hint=" or use another search name")

    def _artifact_root(self) -> str | None:
        """Next to a SQLite database (MLflow's default would be ./mlruns of whatever cwd logs first)."""
        path = _sqlite_path(self.uri)
        if path is None:
            return None  # a server decides (--artifacts-destination)
        return (path.parent / "mlartifacts" / self.search_name).resolve().as_uri()

    def _find_runs(self, filter_string: str, max_results: int = 1000) -> list:
        runs, token = [], None
        while True:
            page = self.client.search_runs([self.experiment_id], filter_string=filter_string,
                                           max_results=max_results, order_by=["attributes.start_time ASC"],
                                           page_token=token)
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def _existing_trials(self) -> dict[str, str]:
        runs = self._find_runs(f"tags.`{TAG_PARENT}` = '{self.parent_run_id}'")
        found: dict[str, str] = {}
        for run in runs:  # oldest first: if a duplicate ever slipped in, the first one stays in use
            found.setdefault(run.data.tags.get(TAG_TRIAL, run.info.run_name), run.info.run_id)
        return found

    def log_search_plots(self, study) -> list[str]:
        """Optuna's parameter-importance and parallel-coordinate plots on the parent run."""
        from ldlpose.report import figures as plots

        self._require_started()
        with tempfile.TemporaryDirectory() as tmp:
            written = plots.save_figures(plots.search_figures(study), Path(tmp))
            if written:
                self.client.log_artifacts(self.parent_run_id, tmp, "plots")
        return [f"plots/{name}" for name in written]

    def log_search_summary(self, metrics: Mapping[str, float], figures: Mapping, tags: Mapping[str, str]) -> None:
        """The search's summary on its parent run: ``metrics`` (logged again by a resumed search, the
        latest value wins), ``tags`` and ``figures`` (file name -> matplotlib figure) under ``plots/``."""
        from ldlpose.report import figures as plots

        _, parent_run_id = self._require_started()
        _log_batch(self.client, parent_run_id, metrics=_numbers(metrics), tags=dict(tags))
        with tempfile.TemporaryDirectory() as tmp:
            if plots.save_figures(dict(figures), Path(tmp)):
                self.client.log_artifacts(parent_run_id, tmp, "plots")

    def finish(self, status: str = "FINISHED", error: str | None = None) -> None:
        """End the parent run; ``error`` (why it failed) goes to tag :data:`TAG_ERROR`, and an
        earlier attempt's error is removed when this one finishes."""
        _, parent_run_id = self._require_started()
        status = _run_status(status)
        _log_batch(self.client, parent_run_id, tags={"ldlpose.status": status,
                                                    **({TAG_ERROR: error} if error else {})})
        if not error and TAG_ERROR in self.client.get_run(parent_run_id).data.tags:
            self.client.delete_tag(parent_run_id, TAG_ERROR)
        self.client.set_terminated(parent_run_id, status=status)

    def _require_started(self) -> tuple[str, str]:
        """``(experiment id, parent run id)`` of a started tracker."""
        if self.parent_run_id is None or self.experiment_id is None:  # start() sets both
            raise TrackingError(f"SearchTracker({self.search_name!r}).start(...) must be called first")
        return self.experiment_id, self.parent_run_id

    # -- trials ---------------------------------------------------------------------------------

    def trial_started(self, trial_id: str, params: Mapping, tags: Mapping[str, str] | None = None,
                      role: str = "trial", name: str | None = None) -> str:
        """The trial's child run, created unless an earlier attempt made one; its id.

        ``role`` is ``trial`` for a search's trials and ``confirmation`` for the reruns of a top
        configuration with new seeds; ``tags`` are added to the run (e.g. which trial it confirms).
        ``name``: the run's name in MLflow's run list (default: the trial id). Runs are found again
        by their ``ldlpose.trial_id`` tag, never by name.
        """
        self._require_started()
        if not isinstance(trial_id, str) or not 0 < len(trial_id) <= 250:
            raise ConfigError(f"trial id must be a non-empty string of at most 250 characters, got {trial_id!r}")
        params = {_mlflow_key(k): _param_value(v) for k, v in flatten(params).items()}
        run_id = self._trial_runs.get(trial_id) or self._trial_run_in_store(trial_id)
        if run_id is None:
            run = self.client.create_run(self.experiment_id, run_name=name or trial_id, tags={
                TAG_PARENT: self.parent_run_id, TAG_SEARCH: self.search_name, TAG_TRIAL: trial_id,
                TAG_ROLE: role})
            run_id = self._trial_runs[trial_id] = run.info.run_id
            old_params: dict = {}
        else:  # a retry or a resumed search: same run, back to RUNNING (renamed if made before names were)
            self.client.update_run(run_id, status="RUNNING", name=name)
            old_params = self.client.get_run(run_id).data.params
        new = {k: v for k, v in params.items() if k not in old_params}
        _log_batch(self.client, run_id, params=new, tags={"ldlpose.status": "RUNNING", **(tags or {})})
        return run_id

    def _trial_run_in_store(self, trial_id: str) -> str | None:
        """A run of this trial created since the search started: by a create whose answer was lost
        (the server went down meanwhile) and which is now retried."""
        if "'" in trial_id:  # not quotable in a filter string; Tune's ids never hold one
            return None
        found = self._find_runs(f"tags.`{TAG_PARENT}` = '{self.parent_run_id}' and tags.`{TAG_TRIAL}` = '{trial_id}'")
        if found:
            self._trial_runs[trial_id] = found[0].info.run_id
            return found[0].info.run_id
        return None

    def trial_selected(self, trial_id: str, epoch: int, scores: Mapping[str, float], checkpoint_sha256: str,
                       tags: Mapping[str, str] | None = None) -> None:
        """Record the trial's selected checkpoint: its epoch, its scores as ``selected_<set>_<metric>``
        (validation and test benchmarks) and its sha256, which marks the trial as finalised."""
        values = {f"selected_{k}": v for k, v in _numbers(scores).items()}
        _log_batch(self.client, self._trial_run(trial_id), metrics=values, step=int(epoch),
                   tags={TAG_SELECTED_EPOCH: str(epoch), TAG_SELECTED_SHA: checkpoint_sha256, **(tags or {})})

    def _trial_run(self, trial_id: str) -> str:
        return self._trial_runs.get(trial_id) or self.trial_started(trial_id, {})

    def trial_result(self, trial_id: str, metrics: Mapping, step: int, timestamp_ms: int | None = None) -> None:
        """One epoch's numeric metrics at ``step`` (the epoch); other entries are ignored.
        ``timestamp_ms``: when the epoch was reported (default: now)."""
        values = _numbers(metrics)
        if values:
            _log_batch(self.client, self._trial_run(trial_id), metrics=values, step=step, timestamp_ms=timestamp_ms)

    def trial_finished(self, trial_id: str, status: str, final_metrics: Mapping,
                       failure_reason: str | None = None, node: str | None = None,
                       device: str | None = None) -> None:
        """Close the trial's run. ``final_metrics`` (flat, or ``{benchmark: {metric: value}}``) are
        logged as ``final_<key>``; ``status`` is FINISHED, FAILED or KILLED (or Ray's TERMINATED/ERROR)."""
        run_id = self._trial_run(trial_id)
        status = _run_status(status)
        tags = {"ldlpose.status": status}
        for key, value in (("ldlpose.node", node), ("ldlpose.device", device),
                           ("ldlpose.failure_reason", failure_reason)):
            if value:
                tags[key] = value
        metrics = {f"final_{k}": v for k, v in _numbers(final_metrics, nested=True).items()}
        _log_batch(self.client, run_id, metrics=metrics, tags=tags)
        self.client.set_terminated(run_id, status=status)

    def trial_ids(self) -> list[str]:
        """The trials of every child run under this search's parent run, as the store holds them now
        (an earlier attempt's included, whether its trial is known to Tune or not)."""
        self._require_started()
        found = self._existing_trials()
        for trial_id, run_id in found.items():
            self._trial_runs.setdefault(trial_id, run_id)
        return list(found)

    def trial_record(self, trial_id: str) -> dict | None:
        """What MLflow holds of a trial: ``{"run_id", "status", "tags", "metrics"}`` (latest values), or None.

        The search rebuilds everything it registers from this and Tune's stored results, never from
        memory, so a driver killed outright loses nothing that was written.
        """
        self._require_started()
        run_id = self._trial_runs.get(trial_id)
        if run_id is None:
            return None
        run = self.client.get_run(run_id)
        return {"run_id": run_id, "status": run.info.status, "tags": dict(run.data.tags),
                "metrics": dict(run.data.metrics)}

    def log_trial_model(self, trial_id: str, checkpoint_dir) -> str:
        """Log the checkpoint as a pt2 model on the trial's run; ``models:/<model_id>``.

        Logging the same checkpoint again (a retried callback, a resumed search, a driver that was
        killed after the model was written but before the run was tagged) returns the earlier model
        instead of logging a duplicate: models are found by the checkpoint's sha256.
        """
        from ldlpose.train.checkpoints import checkpoint_file as model_file

        run_id = self._trial_run(trial_id)
        experiment_id, _ = self._require_started()
        checkpoint = Path(checkpoint_dir)
        checkpoint_file = model_file(checkpoint)
        digest = sha256_file(checkpoint_file) if checkpoint_file.is_file() else None
        tags = self.client.get_run(run_id).data.tags
        if digest and tags.get(TAG_MODEL_SHA) == digest and tags.get(TAG_MODEL_URI):
            return tags[TAG_MODEL_URI]
        model_uri = self._logged_model(trial_id, digest) if digest else None
        if model_uri is None:  # exported in a worker process (tracking.export_worker says why)
            info = {"search_id": self.search_name, "trial_id": trial_id, "run_id": run_id}
            try:
                model_uri = export_worker.log_checkpoint(checkpoint, info, run_id=run_id, experiment_id=experiment_id,
                                                         uri=self.uri, tags={TAG_MODEL_SHA: digest or ""})
            except RuntimeError as err:  # torch.export (a method's decode), the server, the worker; the search goes on
                raise TrackingError(f"could not log the model of trial {trial_id} ({checkpoint}): {err}") from None
        _log_batch(self.client, run_id, tags={TAG_MODEL_URI: model_uri, TAG_MODEL_SHA: digest or ""})
        return model_uri

    def _logged_model(self, trial_id: str, digest: str) -> str | None:
        """A finished model of this trial already logged from the checkpoint with ``digest``."""
        models = self.client.search_logged_models(
            [self.experiment_id], filter_string=f"tags.`{TAG_TRIAL}` = '{trial_id}'")
        for model in models:
            if model.tags.get(TAG_MODEL_SHA) == digest and str(model.status).endswith("READY"):
                return f"models:/{model.model_id}"
        return None

    def log_trial_artifacts(self, trial_id: str, checkpoint_dir, eval_data: Mapping) -> list[str]:
        """Plots of the checkpoint's predictions on ``eval_data``, as artifacts under ``plots/``.

        ``eval_data`` maps a benchmark name to ``(images, angles_deg)``: (N, H, W, 3) uint8 RGB face
        crops (any size; resized to the model's) and (N, 3) true yaw/pitch/roll in degrees. A few
        hundred samples per benchmark are plenty; inference runs on this process's CPU.
        """
        from ldlpose.inference import predictor as export
        from ldlpose.report import figures as plots

        run_id = self._trial_run(trial_id)
        predictor, _ = export.predictor_from_checkpoint(checkpoint_dir)
        with tempfile.TemporaryDirectory() as tmp:
            written = []
            for benchmark, (images, angles_deg) in eval_data.items():
                figures = plots.trial_figures(predictor, list(images), np.asarray(angles_deg), benchmark)
                written += plots.save_figures(figures, Path(tmp))
            if written:
                self.client.log_artifacts(run_id, tmp, "plots")
        return [f"plots/{name}" for name in written]


def _run_status(status: str) -> str:
    if status not in _STATUSES:
        raise ConfigError(f"run status must be one of {sorted(_STATUSES)}, got {status!r}")
    return _STATUSES[status]
