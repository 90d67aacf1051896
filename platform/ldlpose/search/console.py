"""What ``ldlpose search`` shows while it runs: one compact view instead of Ray's log lines.

Per trial: method, its key parameters, epoch, validation MAE at its selected epoch, state; above
them the best trial so far, trials done/running/left, the elapsed and an estimate of the remaining
time (an upper bound: ASHA may stop trials early). On a terminal the view is redrawn in place; in a
log (a Ray job, a file) each change is one line. ``--verbose`` shows Ray's own output instead.
Warnings and errors still show in either mode: a failed trial prints its reason.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator

from ray import tune

from ldlpose.search.trials import sampled_values

# Loggers whose INFO lines (Ray start-up, Tune's result files, Optuna's study) are noise here.
_NOISY = ("ray", "ray.tune", "ray.train", "ray.data", "optuna", "mlflow")


# Set for the search when it is quiet: MLflow's artifact progress bars and its INFO lines (read when
# mlflow is imported, which resets the level of its logger), and Tune's experiment table, which Ray
# 2.60's new output engine prints even at verbose=0; its legacy engine at verbose=0 prints nothing.
_QUIET_ENV = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "MLFLOW_LOGGING_LEVEL": "WARNING",
              "RAY_AIR_NEW_OUTPUT": "0"}


@contextlib.contextmanager
def quiet_logs(verbose: bool) -> Iterator[None]:
    """Raise the noisy loggers to WARNING for the search (unless ``verbose``), then restore them."""
    if verbose:
        yield
        return
    import optuna  # it configures its logger on import, which would undo the level set here

    saved_env = {name: os.environ.get(name) for name in _QUIET_ENV}
    os.environ.update({name: value for name, value in _QUIET_ENV.items() if saved_env[name] is None})
    loggers = [logging.getLogger(name) for name in _NOISY]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            # ldlpose passes Optuna's experimental TPE ``group`` on purpose (conditional spaces).
            warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


class ConsoleView(tune.Callback):
    """``objective``: the Tune metric (``selected_val_mae``); ``total``: the trials the search may run."""

    def __init__(self, name: str, objective: str, total: int, epochs: int, concurrency: int, out=None):
        super().__init__()
        self.name, self.objective, self.total, self.epochs = name, objective, total, epochs
        self.concurrency = max(1, concurrency)
        self.out = out or sys.stdout
        self.started = time.time()
        self.rows: dict[str, dict] = {}
        self.epoch_seconds: list[float] = []
        self._drawn = 0

    def __getstate__(self):
        return {**self.__dict__, "out": None}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.out = sys.stdout

    # --- Tune's events -------------------------------------------------------------------------

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self.rows.setdefault(trial.trial_id, {"params": _params(trial.config), "epoch": 0, "value": None})
        self.rows[trial.trial_id]["state"] = "running"
        self._show(f"trial {trial.trial_id} started: {self.rows[trial.trial_id]['params']}")

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        row = self.rows.setdefault(trial.trial_id, {"params": _params(trial.config), "state": "running"})
        row["epoch"] = int(result.get("epoch", 0))
        row["value"] = result.get(self.objective)
        if "time_this_iter_s" in result:
            self.epoch_seconds.append(float(result["time_this_iter_s"]))
        value = "-" if row["value"] is None else f"{row['value']:.2f}"
        self._show(f"trial {trial.trial_id} epoch {row['epoch']}/{self.epochs}: {self._label()} {value}")

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        row = self.rows.setdefault(trial.trial_id, {"params": _params(trial.config), "epoch": 0, "value": None})
        row["state"] = "done" if row["epoch"] >= self.epochs else "stopped"
        self._show(f"trial {trial.trial_id} {row['state']} after epoch {row['epoch']}")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        from ldlpose.search.trials import trial_error

        row = self.rows.setdefault(trial.trial_id, {"params": _params(trial.config), "epoch": 0, "value": None})
        row["state"] = "failed"
        row["error"] = trial_error(trial)
        # An error is never redrawn away: it goes to stderr as a line of its own.
        self._clear()
        print(f"[ldlpose] trial {trial.trial_id} failed: {row['error']}", file=sys.stderr, flush=True)
        self._show(f"trial {trial.trial_id} failed (reason above)")

    def on_experiment_end(self, trials, **info) -> None:
        self._drawn = 0  # leave the last view on screen

    # --- the view ------------------------------------------------------------------------------

    def _label(self) -> str:
        return self.objective.removeprefix("selected_").replace("_", " ")

    def counts(self) -> tuple[int, int, int]:
        done = sum(1 for r in self.rows.values() if r.get("state") in ("done", "stopped", "failed"))
        running = sum(1 for r in self.rows.values() if r.get("state") == "running")
        return done, running, max(0, self.total - done - running)

    def remaining_s(self) -> float | None:
        """At most this long still: the epochs not yet run, at the mean epoch time, over the concurrency."""
        if not self.epoch_seconds:
            return None
        *_, left = self.counts()
        epochs = left * self.epochs + sum(self.epochs - r.get("epoch", 0) for r in self.rows.values()
                                          if r.get("state") == "running")
        return epochs * (sum(self.epoch_seconds) / len(self.epoch_seconds)) / self.concurrency

    def best(self) -> tuple[str, dict] | None:
        scored = [(r["value"], tid) for tid, r in self.rows.items() if r.get("value") is not None]
        if not scored:
            return None
        _, tid = min(scored)
        return tid, self.rows[tid]

    def header(self) -> str:
        done, running, left = self.counts()
        remaining = self.remaining_s()
        eta = "-" if remaining is None else f"<= {_clock(remaining)}"
        best = self.best()
        best_text = "-" if best is None else f"{best[1]['value']:.2f} ({best[0]}, {best[1]['params']})"
        return (f"search {self.name}: {done} done, {running} running, {left} left | elapsed "
                f"{_clock(time.time() - self.started)}, remaining {eta} | best {self._label()} {best_text}")

    def lines(self) -> list[str]:
        lines = [self.header()]
        for tid, row in self.rows.items():
            value = "-" if row.get("value") is None else f"{row['value']:.2f}"
            lines.append(f"  {tid}  {row['params']:<48.48}  epoch {row.get('epoch', 0)}/{self.epochs}  "
                         f"{self._label()} {value:>6}  {row.get('state', '')}")
        return lines

    def _tty(self) -> bool:
        return bool(getattr(self.out, "isatty", lambda: False)())

    def _clear(self) -> None:
        if self._tty() and self._drawn:
            self.out.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def _show(self, event: str | None) -> None:
        if self._tty():
            self._clear()
            lines = self.lines()
            self.out.write("\n".join(lines) + "\n")
            self._drawn = len(lines)
        elif event is not None:
            done, running, left = self.counts()
            best = self.best()
            best_text = "" if best is None else f"; best {best[1]['value']:.2f} ({best[0]})"
            self.out.write(f"[ldlpose] {event}  [{done} done, {running} running, {left} left{best_text}]\n")
        self.out.flush()


def _params(config: dict) -> str:
    """The method and its sampled values, the backbone among them: ``gldl backbone=resnet18 lr=0.002``."""
    config = config or {}
    return f"{config.get('method', '')} {sampled_values(config, backbone=True)}".strip()
