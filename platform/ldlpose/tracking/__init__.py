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

    tracker = open_tracker(uri, search_name)   # or SearchTracker(uri, search_name)
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
(:func:`ldlpose.selection.champion.champion_target`); see :func:`register_champions` for why that
holds when searches finish concurrently.

**The seam.** Search, training and evaluation speak to :class:`Tracker` (``seam``), a small Protocol:
start a run, log params and metrics, log a model, register, set an alias, log an evaluation; a search
also asks :class:`SearchTracking` (``seam``), its runs read back, plots and a summary on its parent run.
:func:`open_tracker` returns its one implementation, :class:`MlflowTracker` (``mlflow_tracker``).
Adding a tracking backend = one module implementing the Protocols, and ``open_tracker`` choosing it.
Code outside this package imports these public names only, never a submodule (a contract checked by
``tests/architecture.py``). Which version is champion is decided outside it, in :mod:`ldlpose.selection`.

The package's parts: ``runs`` (:class:`SearchTracker`, the parent and child runs), ``mlflow_tracker``
(the seam over it), ``models`` (logging and :func:`load_predictor`), ``registry``
(:func:`register_champions`, :func:`list_champions`: MLflow's model registry under the champion rules
of ldlpose.selection), ``evaluations``, ``search_record``, ``outbox``/``journal``, ``ui``, ``training``
(``ldlpose train``'s record, over the seam) and ``_common`` (names, errors, the client, batched writes).
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
from ldlpose.tracking.evaluations import EXPERIMENT as EVALUATIONS
from ldlpose.tracking.evaluations import leaderboard, log_evaluation, registry_model_identity
from ldlpose.tracking.export_worker import warm_up
from ldlpose.tracking.journal import FOLDER as JOURNAL_FOLDER
from ldlpose.tracking.journal import Journal
from ldlpose.tracking.mlflow_tracker import MlflowTracker, open_tracker
from ldlpose.tracking.models import load_predictor, log_run_files
from ldlpose.tracking.outbox import Outbox
from ldlpose.tracking.registry import RegistrationError, list_champions, register_champions, register_front
from ldlpose.tracking.runs import SearchTracker, flatten
from ldlpose.tracking.seam import SearchTracking, Tracker
from ldlpose.tracking.search_record import read_search
from ldlpose.tracking.training import record_training
from ldlpose.tracking.ui import pages as ui_pages
from ldlpose.tracking.ui import start_ui, stop_ui, wait_until_up

__all__ = [
    "CHAMPION", "EVALUATIONS", "JOURNAL_FOLDER", "MODEL_INFO_FILE", "TAG_CONFIRMS", "TAG_MODEL_SHA", "TAG_MODEL_URI",
    "TAG_PARENT", "TAG_ROLE", "TAG_SEARCH", "TAG_SELECTED_EPOCH", "TAG_SELECTED_SHA", "TAG_TRIAL", "Journal",
    "MlflowTracker", "ModelLoadError", "Outbox", "RegistrationError", "SearchTracker", "SearchTracking", "Tracker",
    "TrackingError",
    "credentials_to_environment", "experiment_page", "flatten", "leaderboard", "list_champions", "load_predictor",
    "log_evaluation", "log_run_files", "open_tracker", "read_search", "record_training", "redact",
    "register_champions", "register_front", "registered_model_name", "registry_model_identity",
    "require_authenticated", "require_reachable", "resolve_tracking_uri", "start_ui", "stop_ui", "ui_pages",
    "wait_until_up", "warm_up",
]
