"""MLflow tracking, models and registry: the only module of ldlpose that imports mlflow.

**Where.** :func:`resolve_tracking_uri` picks ``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else
``sqlite:///<cwd>/mlflow.db`` (artifacts next to it in ``mlartifacts/``); MLflow 3 refuses the
old ``./mlruns`` file store. SQLite has a single writer: fine for one search on one machine, use a
tracking server (``mlflow server``, PostgreSQL behind it) on a cluster.

**What.** One experiment per search name. One parent run per search, tagged
``ldlpose.search_id``; one child run per trial, tagged ``ldlpose.trial_id`` and
``mlflow.parentRunId``. Runs are looked up by these tags before they are created, so a retried
trial or a resumed search reuses its runs instead of duplicating them.

**Who writes.** One :class:`SearchTracker` in the search driver (a Ray Tune callback) does all
writes, a few batched calls per event (``log_batch``), never the Ray workers. Call order::

    tracker = SearchTracker(uri, search_name)
    tracker.start(space_yaml_text, resolved_space, sampler, seed, manifests)    # -> parent run id
    tracker.trial_started(trial_id, params)                                     # -> child run id
    tracker.trial_result(trial_id, metrics, step)                               # once per epoch
    tracker.trial_finished(trial_id, status, final_metrics, failure_reason, node, device)
    tracker.log_trial_model(trial_id, checkpoint_dir)                           # -> "models:/m-..."
    tracker.log_trial_artifacts(trial_id, checkpoint_dir, eval_data)            # plots
    tracker.log_search_plots(study)                                             # optuna plots
    tracker.finish("FINISHED")
    register_champions(uri, search_name, results, benchmarks)                   # registry + aliases

**Models** are logged in MLflow 3's ``pt2`` format (``torch.export``; loading unpickles no code)
as :class:`ldlpose.export.PosePredictor`: RGB in [0, 1] to yaw/pitch/roll degrees, with a
dynamic batch dimension. What inference needs is in the model's metadata and in the extra file
``ldlpose_model.json``. :func:`load_predictor` loads one, e.g. ``models:/headpose-synth@champion``.

**Registry.** One registered model per benchmark, ``headpose-<benchmark>``, alias ``champion`` on
the version with the lowest ``mae`` tag; see :func:`register_champions` for why that holds when
searches finish concurrently.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ldlpose.errors import ConfigError, LdlposeError

if TYPE_CHECKING:  # torch stays out of `import ldlpose.tracking`
    from ldlpose import export

__all__ = [
    "CHAMPION", "ModelLoadError", "SearchTracker", "TrackingError", "list_champions",
    "load_predictor", "register_champions", "registered_model_name", "resolve_tracking_uri",
]

TAG_SEARCH = "ldlpose.search_id"
TAG_TRIAL = "ldlpose.trial_id"
TAG_ROLE = "ldlpose.role"  # "search" (parent) or "trial" (child)
TAG_PARENT = "mlflow.parentRunId"
TAG_MODEL_URI = "ldlpose.model_uri"
TAG_MODEL_SHA = "ldlpose.model_checkpoint_sha256"
CHAMPION = "champion"
MODEL_INFO_FILE = "ldlpose_model.json"
_STATUSES = {"FINISHED": "FINISHED", "FAILED": "FAILED", "KILLED": "KILLED",
             "TERMINATED": "FINISHED", "ERROR": "FAILED"}  # Ray Tune's names map onto MLflow's
# MLflow's per-request limits for log_batch.
_MAX_METRICS, _MAX_PARAMS, _MAX_TAGS = 1000, 100, 100
_MAX_PARAM_CHARS, _MAX_TAG_CHARS = 6000, 8000
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,249}")  # also safe to quote in filter strings


class TrackingError(LdlposeError):
    """The tracking server or database refused or lacks something."""


class ModelLoadError(LdlposeError):
    """A model URI does not name a loadable ldlpose model."""


def resolve_tracking_uri(cli_value: str | None = None) -> str:
    """``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else a SQLite file in the working directory."""
    if cli_value:
        return cli_value
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{Path.cwd().resolve() / 'mlflow.db'}"


def registered_model_name(benchmark: str) -> str:
    return f"headpose-{benchmark}"


def _check_name(kind: str, value: str) -> str:
    if not isinstance(value, str) or not _SAFE_NAME.fullmatch(value):
        raise ConfigError(f"{kind} must be letters, digits, '.', '_', '/' or '-' (at most 250), got {value!r}")
    return value


def _sqlite_path(uri: str) -> Path | None:
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


def _require_existing_store(uri: str) -> None:
    """Read-only commands must not create an empty database where the user expected one."""
    path = _sqlite_path(uri)
    if path is not None and not path.is_file():
        raise TrackingError(f"no tracking database at {path} ({uri}); run a search first, or pass "
                            "--tracking-uri (or set MLFLOW_TRACKING_URI) to where it logged")


def _client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@contextlib.contextmanager
def _global_uri(uri: str) -> Iterator[None]:
    """mlflow's model logging and loading read the process-wide tracking URI; set it for one call.

    The registry follows the tracking URI (MLflow's default when no registry URI is set).
    """
    import mlflow

    old = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(old)


# ---------------------------------------------------------------------------------------------
# Values: flattening, filtering, chunking


def _flatten(data: Mapping, prefix: str = "", sep: str = ".") -> dict:
    flat = {}
    for key, value in data.items():
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, name, sep))
        else:
            flat[name] = value
    return flat


def _mlflow_key(name: str) -> str:
    """A metric or parameter name MLflow accepts (it rejects other characters)."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", str(name))[:250]


def _numbers(metrics: Mapping, nested: bool = False) -> dict[str, float]:
    """The numeric entries; strings, bools, None and (unless ``nested``, which flattens them with
    '_') dicts are dropped, e.g. the ``config`` inside a Ray Tune result."""
    out = {}
    items = _flatten(metrics, sep="_") if nested else metrics
    for key, value in items.items():
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, (int, float, np.integer, np.floating)) or (
                hasattr(value, "ndim") and getattr(value, "ndim") == 0):
            out[_mlflow_key(key)] = float(value)
    return out


def _param_value(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text[:_MAX_PARAM_CHARS]


def _log_batch(client, run_id: str, *, metrics: Mapping[str, float] | None = None, step: int = 0,
               params: Mapping[str, str] | None = None, tags: Mapping[str, str] | None = None) -> None:
    """Everything in as few requests as MLflow's per-request limits allow (usually one)."""
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    metric_list = [Metric(k, v, now, int(step)) for k, v in (metrics or {}).items()]
    param_list = [Param(_mlflow_key(k), _param_value(v)) for k, v in (params or {}).items()]
    tag_list = [RunTag(k, str(v)[:_MAX_TAG_CHARS]) for k, v in (tags or {}).items()]
    while metric_list or param_list or tag_list:
        client.log_batch(run_id, metrics=metric_list[:_MAX_METRICS], params=param_list[:_MAX_PARAMS],
                         tags=tag_list[:_MAX_TAGS], synchronous=True)
        metric_list, param_list, tag_list = (metric_list[_MAX_METRICS:], param_list[_MAX_PARAMS:],
                                             tag_list[_MAX_TAGS:])


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


def _git(args: list[str]) -> str | None:
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# Runs of one search


class SearchTracker:
    """Parent and child runs of one search, written from one process (see the module docstring)."""

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
                  **{f"space.{k}": v for k, v in _flatten(resolved_space).items()}}
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
            (root / "search.yaml").write_text(yaml_text)
            resolved = {"sampler": sampler, "seed": seed, "space": resolved_space}
            (root / "resolved_space.json").write_text(json.dumps(resolved, indent=2, default=str) + "\n")
            for name, manifest in manifests.items():
                file = root / "manifests" / f"{name}.json"
                file.parent.mkdir(parents=True, exist_ok=True)
                file.write_text(json.dumps(manifest, indent=2, default=str) + "\n")
            self.client.log_artifacts(self.parent_run_id, tmp, prefix.rstrip("/") or None)

    def _experiment(self) -> str:
        from mlflow.exceptions import MlflowException

        experiment = self.client.get_experiment_by_name(self.search_name)
        if experiment is None:
            try:
                return self.client.create_experiment(self.search_name, artifact_location=self._artifact_root(),
                                                     tags={TAG_SEARCH: self.search_name})
            except MlflowException:  # created concurrently by someone else
                experiment = self.client.get_experiment_by_name(self.search_name)
                if experiment is None:
                    raise
        if experiment.lifecycle_stage != "active":
            raise TrackingError(
                f"experiment {self.search_name!r} at {self.uri} is deleted; restore it "
                f"(mlflow experiments restore --experiment-id {experiment.experiment_id}) or use another search name")
        return experiment.experiment_id

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
        from ldlpose import plots

        self._require_started()
        with tempfile.TemporaryDirectory() as tmp:
            written = plots.save_figures(plots.search_figures(study), Path(tmp))
            if written:
                self.client.log_artifacts(self.parent_run_id, tmp, "plots")
        return [f"plots/{name}" for name in written]

    def finish(self, status: str = "FINISHED") -> None:
        self._require_started()
        status = _run_status(status)
        _log_batch(self.client, self.parent_run_id, tags={"ldlpose.status": status})
        self.client.set_terminated(self.parent_run_id, status=status)

    def _require_started(self) -> None:
        if self.parent_run_id is None:
            raise TrackingError(f"SearchTracker({self.search_name!r}).start(...) must be called first")

    # -- trials ---------------------------------------------------------------------------------

    def trial_started(self, trial_id: str, params: Mapping) -> str:
        """The trial's child run, created unless an earlier attempt made one; its id."""
        self._require_started()
        if not isinstance(trial_id, str) or not 0 < len(trial_id) <= 250:
            raise ConfigError(f"trial id must be a non-empty string of at most 250 characters, got {trial_id!r}")
        params = {_mlflow_key(k): _param_value(v) for k, v in _flatten(params).items()}
        run_id = self._trial_runs.get(trial_id)
        if run_id is None:
            run = self.client.create_run(self.experiment_id, run_name=trial_id, tags={
                TAG_PARENT: self.parent_run_id, TAG_SEARCH: self.search_name, TAG_TRIAL: trial_id,
                TAG_ROLE: "trial"})
            run_id = self._trial_runs[trial_id] = run.info.run_id
            old_params: dict = {}
        else:  # a retry or a resumed search: same run, back to RUNNING
            self.client.update_run(run_id, status="RUNNING")
            old_params = self.client.get_run(run_id).data.params
        new = {k: v for k, v in params.items() if k not in old_params}
        _log_batch(self.client, run_id, params=new, tags={"ldlpose.status": "RUNNING"})
        return run_id

    def _trial_run(self, trial_id: str) -> str:
        return self._trial_runs.get(trial_id) or self.trial_started(trial_id, {})

    def trial_result(self, trial_id: str, metrics: Mapping, step: int) -> None:
        """One epoch's numeric metrics at ``step`` (the epoch); other entries are ignored."""
        values = _numbers(metrics)
        if values:
            _log_batch(self.client, self._trial_run(trial_id), metrics=values, step=step)

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

    def log_trial_model(self, trial_id: str, checkpoint_dir) -> str:
        """Log the checkpoint as a pt2 model on the trial's run; ``models:/<model_id>``.

        Logging the same checkpoint again (a retried callback, a resumed search) returns the
        earlier model instead of logging a duplicate.
        """
        from ldlpose import export

        run_id = self._trial_run(trial_id)
        checkpoint = Path(checkpoint_dir)
        checkpoint_file = checkpoint / export.CHECKPOINT_FILE if checkpoint.is_dir() else checkpoint
        digest = _sha256(checkpoint_file) if checkpoint_file.is_file() else None
        tags = self.client.get_run(run_id).data.tags
        if digest and tags.get(TAG_MODEL_SHA) == digest and tags.get(TAG_MODEL_URI):
            return tags[TAG_MODEL_URI]
        predictor, info = export.predictor_from_checkpoint(checkpoint)
        info.update({"search_id": self.search_name, "trial_id": trial_id, "run_id": run_id})
        try:
            model_uri = _log_predictor(predictor, info, run_id=run_id, experiment_id=self.experiment_id,
                                       uri=self.uri)
        except Exception as err:  # torch.export (a method's decode) or the server; the search goes on
            raise TrackingError(f"could not log the model of trial {trial_id} ({info['method']}, "
                                f"{checkpoint}): {_short(err)}") from err
        _log_batch(self.client, run_id, tags={TAG_MODEL_URI: model_uri, TAG_MODEL_SHA: digest or ""})
        return model_uri

    def log_trial_artifacts(self, trial_id: str, checkpoint_dir, eval_data: Mapping) -> list[str]:
        """Plots of the checkpoint's predictions on ``eval_data``, as artifacts under ``plots/``.

        ``eval_data`` maps a benchmark name to ``(images, angles_deg)``: (N, H, W, 3) uint8 RGB face
        crops (any size; resized to the model's) and (N, 3) true yaw/pitch/roll in degrees. A few
        hundred samples per benchmark are plenty; inference runs on this process's CPU.
        """
        from ldlpose import export, plots

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


# ---------------------------------------------------------------------------------------------
# Models


def _log_predictor(predictor, info: dict, *, run_id: str, experiment_id: str, uri: str) -> str:
    import mlflow
    import mlflow.pytorch
    import torch
    from mlflow.models import infer_signature

    size = info["image_size"]
    # Batch 2, not 1: torch.export specialises size-1 dimensions, which would fix the batch size.
    example = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0)).numpy()
    with torch.no_grad():
        output = predictor(torch.from_numpy(example)).numpy()
    signature = infer_signature(example, output)  # TensorSpec (-1, 3, S, S) -> (-1, 3)
    with tempfile.TemporaryDirectory() as tmp:
        info_file = Path(tmp) / MODEL_INFO_FILE
        info_file.write_text(json.dumps(info, indent=2, default=str) + "\n")
        # log_model files the LoggedModel under the process's current experiment: make it the run's.
        with _global_uri(uri), _env(MLFLOW_EXPERIMENT_ID=experiment_id):
            logged = mlflow.pytorch.log_model(
                predictor, name="model", run_id=run_id, serialization_format="pt2",
                input_example=example, signature=signature, metadata={"ldlpose": info},
                extra_files=[str(info_file)],
                # Given explicitly: inferring them would load the model again in a subprocess.
                pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", "numpy"],
                tags={TAG_SEARCH: info["search_id"], TAG_TRIAL: info["trial_id"]})
    return f"models:/{logged.model_id}"


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    """Environment variables that mlflow reads at call time, set for one call."""
    old = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def load_predictor(model_uri: str, tracking_uri: str | None = None) -> tuple[export.LoadedPredictor, dict]:
    """``(predictor, info)`` of a logged or registered model, e.g. ``models:/headpose-synth@champion``.

    ``predictor(images)`` maps float32 (N, 3, S, S) RGB in [0, 1] to (N, 3) yaw/pitch/roll degrees;
    ``predictor.predict_images`` takes (H, W, 3) uint8 face crops. ``info`` is what
    :func:`ldlpose.export.export_info` recorded (image size, normalisation, method, ...).
    """
    import mlflow.artifacts
    import mlflow.pytorch

    from ldlpose.export import LoadedPredictor

    uri = resolve_tracking_uri(tracking_uri)
    _require_existing_store(uri)
    progress = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # quiet unless asked
    with tempfile.TemporaryDirectory() as tmp, _global_uri(uri), _env(MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=progress):
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp))
        except Exception as err:  # MlflowException, OSError, bad URI syntax: all say the same to a user
            raise ModelLoadError(f"cannot load model {model_uri!r} from {uri}: {_short(err)}") from None
        info_file = local / "extra_files" / MODEL_INFO_FILE
        if not info_file.is_file():
            raise ModelLoadError(f"{model_uri!r} is not an ldlpose pose model (it has no {MODEL_INFO_FILE}); "
                                 "log models with SearchTracker.log_trial_model")
        info = json.loads(info_file.read_text())
        try:
            module = mlflow.pytorch.load_model(str(local))
        except Exception as err:
            raise ModelLoadError(f"cannot load model {model_uri!r}: {_short(err)}") from None
    return LoadedPredictor(module, info), info


def _short(err: Exception) -> str:
    message = getattr(err, "message", None) or str(err)
    return f"{type(err).__name__}: {message.strip().splitlines()[0] if message.strip() else ''}"[:500]


# ---------------------------------------------------------------------------------------------
# Registry

# Tests set this to interleave two registrations at the worst moment: called with
# (model name, version about to become champion, attempt) just before each alias write.
_before_alias_write: Callable[[str, str, int], None] | None = None
_SETTLE_ATTEMPTS = 50


def _scored_versions(client, name: str) -> dict[str, float]:
    """Version -> MAE of every version of ``name`` that carries a numeric ``mae`` tag."""
    scored = {}
    for version in client.search_model_versions(f"name = '{name}'"):
        try:
            mae = float(version.tags.get("mae", "nan"))
        except ValueError:
            continue
        if math.isfinite(mae):
            scored[str(version.version)] = mae
    return scored


def _champion_version(client, name: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:  # no alias yet
        return None


def _settle_champion(client, name: str) -> str:
    """Point ``champion`` at the lowest-MAE version and return it, once a read confirms it.

    Why this is right with concurrent searches, whose alias writes are last-writer-wins: every
    registrant creates its version (``mae`` tag included, in the same request) *before* its first
    read here, and returns only after a read in which the alias already equals the best version it
    sees. Take the last alias write W overall, by registrant P. After W, P reads again: no write
    follows W, so P saw alias == best of every version created so far, or it would have written
    again. A version created later belongs to a registrant Q that reads after creating it; no write
    follows W, so Q too saw alias == best including its version. Hence the final alias is the
    best of all versions, whoever finishes last. Ties keep the older version (the champion is
    replaced only by a strictly lower MAE). Views only grow, so the loop ends.
    """
    for attempt in range(_SETTLE_ATTEMPTS):
        scored = _scored_versions(client, name)
        best = min(scored, key=lambda v: (scored[v], int(v)))
        if _champion_version(client, name) == best:
            return best
        if _before_alias_write is not None:
            _before_alias_write(name, best, attempt)
        client.set_registered_model_alias(name, CHAMPION, best)
    raise TrackingError(f"alias {CHAMPION!r} of {name} did not settle after {_SETTLE_ATTEMPTS} attempts; "
                        "are many searches registering at once? Run the registration again")


def _ensure_registered_model(client, name: str, benchmark: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name, tags={"benchmark": benchmark}, description=(
            f"Head pose on {benchmark}: RGB face crop -> yaw/pitch/roll degrees. Alias '{CHAMPION}' "
            "is the version with the lowest MAE (tag 'mae')."))
    except MlflowException as err:
        if err.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise


def _version_for(client, name: str, trial: Mapping, benchmark: str, mae: float, search_name: str) -> str:
    """The version of this trial's model, created unless an earlier registration made it."""
    for version in client.search_model_versions(f"name = '{name}'"):
        if (version.tags.get("search_id") == search_name and version.tags.get("trial_id") == str(trial["trial_id"])
                and version.tags.get("model_uri") == trial["model_uri"]):
            return str(version.version)
    model_uri = trial["model_uri"]
    model_id = model_uri[len("models:/"):] if model_uri.startswith("models:/m-") else None
    tags = {"search_id": search_name, "trial_id": str(trial["trial_id"]), "benchmark": benchmark,
            "mae": repr(mae), "method": str(trial.get("method", "")),
            "backbone": str(trial.get("backbone", "")), "run_id": str(trial.get("run_id", "")),
            "model_uri": model_uri}
    commit = _git(["rev-parse", "HEAD"])
    if commit:
        tags["git_sha"] = commit
    version = client.create_model_version(name, source=model_uri, run_id=trial.get("run_id"), tags=tags,
                                          model_id=model_id)
    return str(version.version)


def register_champions(uri: str, search_name: str, results: list[Mapping],
                       benchmarks: list[str]) -> dict[str, dict]:
    """Register each benchmark's best trial as a version of ``headpose-<benchmark>``; move ``champion``.

    ``results``: one dict per finished trial with a logged model: ``trial_id``, ``run_id``,
    ``model_uri`` (from :meth:`SearchTracker.log_trial_model`), ``method``, ``backbone`` and
    ``metrics``: ``{benchmark: mae}`` (or a flat result holding ``<benchmark>_mae``, e.g. ``synth_mae``). Returns ``{benchmark: {"model", "version", "mae", "champion",
    "moved"}}`` for every benchmark some trial has a finite MAE on; ``moved`` says whether this
    version became the champion. Registering the same trial again adds no version.
    """
    client = _client(uri)
    outcome = {}
    for benchmark in benchmarks:
        scored = []
        for trial in results:
            mae = _benchmark_mae(trial.get("metrics", {}), benchmark)
            if trial.get("model_uri") and mae is not None:
                scored.append((mae, trial))
        if not scored:
            continue
        mae, best = min(scored, key=lambda pair: pair[0])
        name = registered_model_name(benchmark)
        _ensure_registered_model(client, name, benchmark)
        version = _version_for(client, name, best, benchmark, mae, search_name)
        before = _champion_version(client, name)
        champion = _settle_champion(client, name)
        outcome[benchmark] = {"model": name, "version": version, "mae": mae, "champion": champion,
                              "moved": champion == version and before != version}
    return outcome


def _benchmark_mae(metrics: Mapping, benchmark: str) -> float | None:
    """``metrics[benchmark]``, or the reported ``<benchmark>_mae`` of a flat Ray result."""
    from ldlpose.report import metric_key

    value = metrics.get(benchmark, metrics.get(metric_key(benchmark, "mae")))
    return float(value) if _finite(value) else None


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def list_champions(uri: str) -> list[dict]:
    """The ``champion`` of every ``headpose-*`` registered model, by benchmark."""
    _require_existing_store(uri)
    client = _client(uri)
    rows = []
    for model in client.search_registered_models("name LIKE 'headpose-%'"):
        version = _champion_version(client, model.name)
        if version is None:
            continue
        tags = client.get_model_version(model.name, version).tags
        rows.append({"benchmark": tags.get("benchmark", model.name[len("headpose-"):]), "model": model.name,
                     "version": version, "mae": float(tags["mae"]) if _finite(tags.get("mae")) else None,
                     "method": tags.get("method"), "backbone": tags.get("backbone"),
                     "run_id": tags.get("run_id"), "search_id": tags.get("search_id"),
                     "trial_id": tags.get("trial_id"), "uri": f"models:/{model.name}@{CHAMPION}"})
    return sorted(rows, key=lambda r: r["benchmark"])
