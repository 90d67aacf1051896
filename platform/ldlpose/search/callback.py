"""The Ray Tune callback that mirrors a search into MLflow, from the Tune driver process only.

It uses the tracking package's public API and nothing of Tune's or the tracker's internals. It
holds plain data; the MLflow client is made on first use, so a restored search reconnects.
Tracking trouble never stops a search: it is collected in ``problems`` and printed at the end.

Every write (a trial's start, each epoch's metrics, a finished trial's finalisation: its model
exported and logged, its plots drawn) goes through one :class:`ldlpose.tracking.Outbox`: an
ordered queue written by one background thread, which retries while the tracking server is down.
Tune's loop, which runs these callbacks, never waits for MLflow: an outage or a slow model upload
would otherwise stall every trial at its next report. ``drain`` (called when Tune ends, and by the
search driver) waits for the queue; what a killed driver never finalised is caught from stored
state (search.trials).
"""

from __future__ import annotations

import json
import numbers
import time
from typing import TYPE_CHECKING

from ray import tune

from ldlpose.errors import LdlposeError
from ldlpose.infra import storage, trace
from ldlpose.search.confirm import point_of
from ldlpose.search.names import public_names
from ldlpose.search.space import SearchSpace
from ldlpose.search.trials import TAG_DRIVER, TAG_STORAGE, TrialSummary, finalise, run_name, trial_error
from ldlpose.train.checkpoints import request_stop

if TYPE_CHECKING:
    from ldlpose.tracking import Outbox, SearchTracking


def run_params(space: SearchSpace, assignment: dict) -> dict:
    """A trial's MLflow params: its whole run config by run-config key (``method.hparams.sigma``),
    so that runs of different searches line up whatever their search spaces were."""
    from ldlpose.tracking import flatten

    data = space.run_config(assignment).to_dict()
    data.pop("resources", None)  # infrastructure, not a hyperparameter
    data["data"].pop("root", None)
    return flatten(data)


class TrackingCallback(tune.Callback):
    """``points``: for a confirmation search, its points; each trial carries its own as ``config["_point"]``."""

    def __init__(self, uri: str, space: SearchSpace, start_info: dict, storage: str, prefix: str,
                 points: list[dict] | None = None, eval_samples: dict | None = None, tracker=None,
                 driver: str | None = None):
        super().__init__()
        self.uri, self.space, self.start_info = uri, space, start_info
        self.storage, self.prefix, self.points, self.eval_samples = storage, prefix, points, eval_samples
        self.driver = driver  # the lease holder id of this driver (ldlpose.infra.lease)
        self._tracker = tracker  # a started tracker to share (the confirmation's), else made on first use
        self.problems: list[str] = []
        self._outbox: Outbox | None = None

    def __getstate__(self):  # Tune stores its callbacks with the experiment state
        return {**self.__dict__, "_tracker": None, "_outbox": None}

    def in_background(self, what: str, fn, detail: str = "", record: dict | None = None) -> None:
        """Run ``fn`` on the writing thread, after every write queued before it (see the outbox);
        ``record``: the same write as data, journaled in the storage until MLflow has it."""
        self._writer().put(what, fn, detail, record)

    def _writer(self) -> Outbox:
        if self._outbox is None:
            from ldlpose.tracking import JOURNAL_FOLDER, Journal, Outbox

            self._outbox = Outbox(self.uri, self.problems,
                                  journal=Journal(storage.join(self.storage, self.prefix, JOURNAL_FOLDER)))
        return self._outbox

    def replay(self) -> int:
        """Queue the journaled writes an earlier driver of this search never delivered (it was killed
        during an MLflow outage), before anything new; how many."""
        journal = self._writer().journal
        assert journal is not None  # _writer gives every outbox one
        records = journal.undelivered()
        for record in records:
            self.in_background(f"trial {record['trial']} {record['kind']} (journaled)",
                               lambda r=record: self._apply(r), _detail(record), record)
        return len(records)

    def _apply(self, record: dict) -> None:
        """Write one journaled write (a trial's start or one epoch's metrics) to MLflow."""
        if record["kind"] == "start":
            with trace.phase("start.mlflow", record["trial"]):
                self.tracker.start_run(record["trial"], record["params"], record["tags"], record["role"],
                                       record.get("name"))
        else:
            self.tracker.log_metrics(record["trial"], record["metrics"], record["step"],
                                     timestamp_ms=record["timestamp_ms"])

    def drain(self) -> None:
        """Wait until every queued write is done (or, with the server still down, given up on)."""
        if self._outbox is not None:
            self._outbox.drain()

    def on_experiment_end(self, trials, **info) -> None:
        self.drain()

    @property
    def tracker(self) -> SearchTracking:
        """The search's tracking backend (ldlpose.tracking's seam), its experiment started on first use."""
        if self._tracker is None:
            from ldlpose.tracking import open_tracker

            tracker: SearchTracking = open_tracker(self.uri, self.space.name)  # mypy checks the Protocol here
            info = self.start_info  # its keys as a search's pickled state holds them
            tracker.start_experiment(info["space_yaml_text"], info["resolved_space"], info["sampler"], info["seed"],
                                     info["manifests"])
            self._tracker = tracker
        return self._tracker

    def safely(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # tracking trouble never stops the search; it is reported at the end
            self.problems.append(f"{what}: {type(err).__name__}: {err}")
            return None

    def summary(self, trial) -> TrialSummary:
        config = dict(trial.config or {})
        confirms = None
        if self.points is not None and "_point" in config:
            point = point_of(config, self.points)
            assignment, confirms = point["assignment"], point["confirms"]
        else:
            assignment = public_names({k: v for k, v in config.items() if not k.startswith("_")})
        return TrialSummary(trial.trial_id, "TERMINATED", assignment, dict(trial.last_result or {}), None,
                            storage.join(self.storage, f"{self.prefix}-{trial.trial_id}"), confirms)

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        trace.mark("tune.trial_start", trial.trial_id, time.time())
        summary = self.summary(trial)
        tags = {"ldlpose.confirms": summary.confirms} if summary.confirms else {}
        try:
            params = run_params(self.space, summary.assignment)
        except LdlposeError:  # an invalid combination: the trial fails when it starts and says why
            params = {key: str(value) for key, value in summary.assignment.items()}
        tags = {**tags, "ldlpose.assignment": _json(summary.assignment), **self.owner_tags()}
        role = "confirmation" if summary.confirms else "trial"
        number = next((i + 1 for i, t in enumerate(trials) if t is trial), len(trials))
        name = run_name(str(params.get("method.name", summary.assignment.get("method", ""))), summary.assignment,
                        number, summary.confirms)
        record = _jsonable({"kind": "start", "trial": trial.trial_id, "params": params, "tags": tags, "role": role,
                            "name": name})
        self.in_background(f"trial {trial.trial_id} start", lambda: self._apply(record), "", record)

    def owner_tags(self) -> dict[str, str]:
        """Which storage and driver a trial's run belongs to: orphan closing touches only its own."""
        from ldlpose.tracking import redact

        tags = {TAG_STORAGE: redact(storage.join(self.storage, self.space.name))}
        return {**tags, TAG_DRIVER: self.driver} if self.driver else tags

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        step = int(result.get("epoch", result.get("training_iteration", 0)))
        # The time it was reported, kept across retries and replays: MLflow stores a metric once per
        # (key, step, timestamp, value), so a replayed epoch is not a second one.
        record = {"kind": "result", "trial": trial.trial_id, "step": step, "timestamp_ms": int(time.time() * 1000),
                  "metrics": {k: float(v) for k, v in result.items()
                              if isinstance(v, numbers.Real) and not isinstance(v, bool)}}
        self.in_background(f"trial {trial.trial_id} result", lambda: self._apply(record), f"epoch {step}", record)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        # First, before anything slow: a trial Tune stopped must not train on (see STOP_FILE).
        trace.mark("tune.trial_complete", trial.trial_id, time.time())
        self.safely(f"trial {trial.trial_id} stop", request_stop, self.summary(trial).run_dir)
        summary = self.summary(trial)

        def complete():
            with trace.phase("end.finalise", trial.trial_id):
                finalise(self.tracker, summary, self.space, self.eval_samples)

        self.in_background(f"trial {trial.trial_id} completion", complete)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        reason = trial_error(trial)
        self.in_background(f"trial {trial.trial_id} end", lambda: self.tracker.end_run(
            trial.trial_id, "FAILED", {}, reason, None, None))


def _json(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _jsonable(record: dict) -> dict:
    """``record`` as it reads back from the journal, so that a replay writes what the live write did."""
    return json.loads(json.dumps(record, default=str))


def _detail(record: dict) -> str:
    return f"epoch {record['step']}" if record["kind"] == "result" else ""
