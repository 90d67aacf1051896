"""What the parts of :mod:`ldlpose.tracking` share: names, errors, the client and batched writes."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from ldlpose.errors import ConfigError, LdlposeError
from ldlpose.infra.locations import redact as redact  # re-exported: the one redaction, for every URI shown
from ldlpose.infra.locations import without_credentials
from ldlpose.selection.rules import CHAMPION as CHAMPION  # re-exported: the validation rule's alias

TAG_SEARCH = "ldlpose.search_id"
TAG_TRIAL = "ldlpose.trial_id"
TAG_ROLE = "ldlpose.role"  # "search" (parent), "trial" or "confirmation" (children), "train"
TAG_PARENT = "mlflow.parentRunId"
TAG_MODEL_URI = "ldlpose.model_uri"
TAG_MODEL_SHA = "ldlpose.model_checkpoint_sha256"
TAG_SELECTED_EPOCH = "ldlpose.selected_epoch"  # the epoch of the checkpoint a trial is judged by
TAG_SELECTED_SHA = "ldlpose.selected_checkpoint_sha256"  # set once the trial is finalised
TAG_CONFIRMS = "ldlpose.confirms"  # on a confirmation run: the trial whose configuration it repeats
# MLflow 3's UI opens an experiment by this tag: without it, it guesses GenAI (traces) for experiments
# without runs yet and shows its GenAI overview; this value opens the training runs. The name and value
# are MLflow's own (its UI's ExperimentKind enum), not ldlpose's.
TAG_EXPERIMENT_KIND = "mlflow.experimentKind"
MODEL_DEVELOPMENT = "custom_model_development"
MODEL_INFO_FILE = "ldlpose_model.json"
_STATUSES = {"FINISHED": "FINISHED", "FAILED": "FAILED", "KILLED": "KILLED",
             "TERMINATED": "FINISHED", "ERROR": "FAILED"}  # Ray Tune's names map onto MLflow's
# MLflow's per-request limits for log_batch.
_MAX_METRICS, _MAX_PARAMS, _MAX_TAGS = 1000, 100, 100
_MAX_PARAM_CHARS, _MAX_TAG_CHARS = 6000, 8000
REACH_TIMEOUT_S = 5.0  # a tracking server that accepts no connection in this long is reported as down
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


def credentials_to_environment(uri: str) -> str:
    """``uri`` without its password, which moves into this process's environment where MLflow reads
    it: an http(s) URI's user and password into MLFLOW_TRACKING_USERNAME/PASSWORD, a PostgreSQL
    URI's password into PGPASSWORD (libpq's). Credentials in the URI win over ones already set.

    A search keeps its tracking URI in objects that Ray pickles into the search's storage (Tune's
    callbacks, in tuner.pkl); without the password there, only the environment holds it, here and
    in the Ray workers this process starts. Other schemes come back unchanged.
    """
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    if parts.scheme in ("http", "https"):
        os.environ["MLFLOW_TRACKING_USERNAME"] = unquote(parts.username or "")
        os.environ["MLFLOW_TRACKING_PASSWORD"] = unquote(parts.password)
    elif parts.scheme.startswith("postgres"):
        os.environ["PGPASSWORD"] = unquote(parts.password)
    else:
        return uri
    return without_credentials(uri)


def registered_model_name(benchmark: str) -> str:
    return f"headpose-{benchmark}"


def _check_name(kind: str, value: str) -> str:
    if not isinstance(value, str) or not _SAFE_NAME.fullmatch(value):
        raise ConfigError(f"{kind} must be letters, digits, '.', '_', '/' or '-' (at most 250), got {value!r}")
    return value


def _sqlite_path(uri: str) -> Path | None:
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


def _require_existing_store(uri: str) -> None:
    """Read-only commands must not create an empty database where the user expected one, nor wait
    minutes in MLflow's HTTP retries for a server that is not there."""
    path = _sqlite_path(uri)
    if path is not None and not path.is_file():
        raise TrackingError(f"no tracking database at {path} ({redact(uri)}); run a search first, or pass "
                            "--tracking-uri (or set MLFLOW_TRACKING_URI) to where it logged")
    require_reachable(uri)


def require_reachable(uri: str, timeout_s: float = REACH_TIMEOUT_S) -> None:
    """For an http(s) tracking URI, a TrackingError within ``timeout_s`` when nothing accepts a
    connection at its host and port (MLflow's client would retry, silently, for minutes), or when the
    server refuses this client's credentials (MLflow's would end in a traceback)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        socket.create_connection((parts.hostname, port), timeout=timeout_s).close()
    except (OSError, ValueError) as err:  # refused, no route, unknown host, timed out, bad port
        reason = "timed out" if isinstance(err, TimeoutError) else (getattr(err, "strerror", None) or str(err))
        raise TrackingError(f"the MLflow tracking server at {redact(uri)} is unreachable ({reason}); start it, "
                            "or pass --tracking-uri (or set MLFLOW_TRACKING_URI) to one that runs") from None
    require_authenticated(uri, timeout_s)


def require_authenticated(uri: str, timeout_s: float = REACH_TIMEOUT_S) -> None:
    """For an http(s) tracking URI, one cheap request with the credentials MLflow's client sends (the
    URI's user part, else MLFLOW_TRACKING_USERNAME/PASSWORD, else MLFLOW_TRACKING_TOKEN); a
    TrackingError only when the server refuses them (401, 403). Anything else (no answer, TLS) is
    left to MLflow's client, which knows TLS settings this does not, and to the outbox's retries."""
    from urllib.parse import unquote, urlsplit

    import requests

    parts, headers = urlsplit(uri), {}
    if parts.scheme not in ("http", "https"):
        return
    auth = None
    if parts.username is not None:
        auth = (unquote(parts.username), unquote(parts.password or ""))
    elif os.environ.get("MLFLOW_TRACKING_USERNAME"):
        auth = (os.environ["MLFLOW_TRACKING_USERNAME"], os.environ.get("MLFLOW_TRACKING_PASSWORD", ""))
    elif os.environ.get("MLFLOW_TRACKING_TOKEN"):
        headers["Authorization"] = f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"
    url = without_credentials(uri).rstrip("/") + "/api/2.0/mlflow/experiments/search?max_results=1"
    try:
        status = requests.get(url, auth=auth, headers=headers, timeout=timeout_s).status_code
    except requests.RequestException:
        return
    if status not in (401, 403):
        return
    if auth:
        sent = f"it refused the credentials of user {auth[0]!r}"
    else:
        sent = "it refused MLFLOW_TRACKING_TOKEN" if headers else "no credentials were sent"
    raise TrackingError(f"the MLflow tracking server at {redact(uri)} requires authentication and {sent} "
                        f"(HTTP {status}); set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to an account "
                        "of the server (docs/cluster.md) rather than a password in the URI, which process lists show")


def _client(uri: str):
    from mlflow import MlflowClient

    if redact(uri) != uri:
        # MLflow prints "View run ... at: <the tracking URI>/#/..." whenever a run ends, password and
        # all; ldlpose prints its own link (experiment_page), without credentials.
        os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
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
        mlflow.set_tracking_uri(old)  # type: ignore[arg-type]  # None unsets it; the annotation omits None


def _experiment_id(client, uri: str, name: str, artifact_location: str | None,
                   tags: Mapping[str, str] | None = None, hint: str = "") -> str:
    """The id of the active experiment ``name``, created if missing; every experiment ldlpose writes to
    comes through here, so each is tagged as model development, an old one when it is next used."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name, artifact_location=artifact_location,
                                            tags={**(tags or {}), TAG_EXPERIMENT_KIND: MODEL_DEVELOPMENT})
        except MlflowException:  # created concurrently by someone else
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage != "active":
        raise TrackingError(f"experiment {name!r} at {redact(uri)} is deleted; restore it "
                            f"(mlflow experiments restore --experiment-id {experiment.experiment_id}){hint}")
    if experiment.tags.get(TAG_EXPERIMENT_KIND) != MODEL_DEVELOPMENT:  # made before ldlpose set the tag
        client.set_experiment_tag(experiment.experiment_id, TAG_EXPERIMENT_KIND, MODEL_DEVELOPMENT)
    return experiment.experiment_id


def experiment_page(uri: str, experiment_id: str | None) -> str:
    """Where a browser shows the experiment's runs: the server's page for an http(s) URI, else the page
    of ``mlflow ui`` on its default address.

    MLflow 3.17's UI takes the page from its GenAI / Model training switch (this URL's
    ``workflowType``, else the browser's last choice, else GenAI), not from the experiment's kind tag,
    so the link names the model-training view.
    """
    # Without the URI's user part: a browser asks for the login itself, and a link is copied around.
    base = without_credentials(uri).rstrip("/") if uri.startswith(("http://", "https://")) else "http://127.0.0.1:5000"
    where = f"/experiments/{experiment_id}/runs" if experiment_id else "/experiments"
    return f"{base}/#{where}?workflowType=machine_learning"


def _mlflow_key(name: str) -> str:
    """A metric or parameter name MLflow accepts (it rejects other characters)."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", str(name))[:250]


def _param_value(value) -> str:
    """What MLflow stores of a parameter: text, with every URI's password redacted (a storage or data
    root given as ``s3://key:secret@bucket`` would otherwise stay in the tracking store for good)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return redact(text)[:_MAX_PARAM_CHARS]


def _log_batch(client, run_id: str, *, metrics: Mapping[str, float] | None = None, step: int = 0,
               params: Mapping[str, str] | None = None, tags: Mapping[str, str] | None = None,
               timestamp_ms: int | None = None) -> None:
    """Everything in as few requests as MLflow's per-request limits allow (usually one).

    ``timestamp_ms``: when the metrics were measured. A write retried after an outage keeps it, so
    a request that did reach the server before its answer was lost is stored once, not twice.
    """
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000) if timestamp_ms is None else int(timestamp_ms)
    metric_list = [Metric(k, v, now, int(step)) for k, v in (metrics or {}).items()]
    param_list = [Param(_mlflow_key(k), _param_value(v)) for k, v in (params or {}).items()]
    tag_list = [RunTag(k, redact(str(v))[:_MAX_TAG_CHARS]) for k, v in (tags or {}).items()]  # as params
    while metric_list or param_list or tag_list:
        client.log_batch(run_id, metrics=metric_list[:_MAX_METRICS], params=param_list[:_MAX_PARAMS],
                         tags=tag_list[:_MAX_TAGS], synchronous=True)
        metric_list, param_list, tag_list = (metric_list[_MAX_METRICS:], param_list[_MAX_PARAMS:],
                                             tag_list[_MAX_TAGS:])


def _git(args: list[str]) -> str | None:
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _short(err: Exception) -> str:
    message = redact(getattr(err, "message", None) or str(err))  # a driver's error may quote its URL
    return f"{type(err).__name__}: {message.strip().splitlines()[0] if message.strip() else ''}"[:500]
