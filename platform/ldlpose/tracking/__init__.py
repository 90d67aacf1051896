"""MLflow tracking, models and registry: the only package of ldlpose that imports mlflow.

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
    tracker.trial_started(trial_id, params, tags, role, name)                   # -> child run id
    tracker.trial_result(trial_id, metrics, step)                               # once per epoch
    tracker.log_trial_model(trial_id, checkpoint_dir)                           # -> "models:/m-..."
    tracker.log_trial_artifacts(trial_id, checkpoint_dir, eval_data)            # plots
    tracker.trial_selected(trial_id, epoch, scores, checkpoint_sha256)          # the judged checkpoint
    tracker.trial_finished(trial_id, status, final_metrics, failure_reason, node, device)
    tracker.trial_record(trial_id)                                              # what MLflow holds
    tracker.log_search_plots(study)                                             # optuna plots
    tracker.log_search_summary(metrics, figures, tags)                          # search.story
    tracker.finish("FINISHED")
    register_champions(uri, search_name, best, benchmarks, rule=...)            # registry + aliases

**Models** are logged in MLflow 3's ``pt2`` format (``torch.export``; loading unpickles no code)
as :class:`ldlpose.inference.predictor.PosePredictor`: RGB in [0, 1] to yaw/pitch/roll degrees, with a
dynamic batch dimension. What inference needs is in the model's metadata and in the extra file
``ldlpose_model.json``. :func:`load_predictor` loads one, e.g. ``models:/headpose-facegen@champion``.

**Registry.** One registered model per benchmark, ``headpose-<benchmark>``, alias ``champion`` on
the version with the best validation objective among versions selected on the same validation rows
(:func:`ldlpose.tracking.registry.champion_target`); see :func:`register_champions` for why that
holds when searches finish concurrently.

The package's parts: ``runs`` (:class:`SearchTracker`), ``models`` (logging and
:func:`load_predictor`), ``registry`` (:func:`register_champions`, :func:`list_champions`) and
``_common`` (names, errors, the client, batched writes).
"""

from ldlpose.tracking._common import (
    CHAMPION,
    MODEL_INFO_FILE,
    TAG_CONFIRMS,
    TAG_MODEL_SHA,
    TAG_MODEL_URI,
    TAG_PARENT,
    TAG_ROLE,
    TAG_SEARCH,
    TAG_SELECTED_EPOCH,
    TAG_SELECTED_SHA,
    TAG_TRIAL,
    ModelLoadError,
    TrackingError,
    _global_uri,  # noqa: F401  (tests set the URI with it)
    credentials_to_environment,
    experiment_page,
    redact,
    registered_model_name,
    require_authenticated,
    require_reachable,
    resolve_tracking_uri,
)
from ldlpose.tracking.models import load_predictor
from ldlpose.tracking.registry import list_champions, register_champions
from ldlpose.tracking.runs import SearchTracker

__all__ = [
    "CHAMPION", "MODEL_INFO_FILE", "TAG_CONFIRMS", "TAG_MODEL_SHA", "TAG_MODEL_URI", "TAG_PARENT", "TAG_ROLE",
    "TAG_SEARCH", "TAG_SELECTED_EPOCH", "TAG_SELECTED_SHA", "TAG_TRIAL", "ModelLoadError", "SearchTracker",
    "TrackingError", "credentials_to_environment", "experiment_page", "list_champions", "load_predictor", "redact",
    "register_champions", "registered_model_name", "require_authenticated", "require_reachable", "resolve_tracking_uri",
]
