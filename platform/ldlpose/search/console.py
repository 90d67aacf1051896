"""What ``ldlpose search`` shows while it runs: one compact view instead of Ray's log lines.

Per trial: method, its key parameters, epoch, validation MAE at its selected epoch, state; above
them the best trial so far, trials done/running/left, the elapsed time and an estimate of the time
left: the trial-epochs still to run at the rate measured so far (trial-epochs per second since the
first trial started), an upper bound when ASHA stops trials early. On a terminal the view is redrawn
in place at every event and at least once a second (from Tune's driver loop, so nothing else writes
meanwhile); in a log (a Ray job, a file) each change is one line, which carries the elapsed and left
times too. ``--verbose`` (or ``LDLPOSE_LOG=debug``) shows Ray's own output instead. Warnings and
errors still show in either mode: a failed trial prints its reason.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
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
    """``objective``: the Tune metric (``selected_val_mae``); ``total``: the trials the search may run.

    ``concurrency`` is kept for callers; the measured rate already includes how many trials run at once.
    """

    def __init__(self, name: str, objective: str, total: int, epochs: int, concurrency: int, out=None):
        super().__init__()
        self.name, self.objective, self.total, self.epochs = name, objective, total, epochs
        self.concurrency = max(1, concurrency)
        self.out = out or sys.stdout
        self.started = time.time()
        self.rows: dict[str, dict] = {}
        # The rate: trial-epochs trained in this session, since the first trial started, until the last one.
        self.first_start: float | None = None
        self.epochs_run = 0
        self.last_epoch_at: float | None = None
        self._drawn = 0
        self._second = -1  # the elapsed second last drawn on a terminal
        self._ended = False

    def __getstate__(self):
        return {**self.__dict__, "out": None}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.out = sys.stdout

    # --- Tune's events -------------------------------------------------------------------------

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self.rows.setdefault(trial.trial_id, {"params": _params(trial.config), "epoch": 0, "value": None})
        self.rows[trial.trial_id]["state"] = "running"
        if self.first_start is None:
            self.first_start = time.time()
        self._show(f"trial {trial.trial_id} started: {self.rows[trial.trial_id]['params']}")

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        row = self.rows.setdefault(trial.trial_id, {"params": _params(trial.config), "state": "running"})
        epoch = int(result.get("epoch", 0))
        if epoch > row.get("epoch", 0):  # one more trial-epoch (a multi-objective trial's cost report is not)
            self.epochs_run += 1
            self.last_epoch_at = time.time()
            if self.first_start is None:  # a trial restored while running: Tune may not start it anew
                self.first_start = self.started
        row["epoch"] = epoch
        row["value"] = result.get(self.objective)
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

    def on_step_end(self, iteration, trials, **info) -> None:
        """Tune's driver loop (several times a second): redraw a terminal's view when the elapsed second
        changed, so the clock and the estimate move between trial events."""
        if self._tty() and not self._ended and int(time.time() - self.started) != self._second:
            self._show(None)

    def on_experiment_end(self, trials, **info) -> None:
        self._drawn, self._ended = 0, True  # leave the last view on screen

    # --- the view ------------------------------------------------------------------------------

    def _label(self) -> str:
        return self.objective.removeprefix("selected_").replace("_", " ")

    def counts(self) -> tuple[int, int, int]:
        done = sum(1 for r in self.rows.values() if r.get("state") in ("done", "stopped", "failed"))
        running = sum(1 for r in self.rows.values() if r.get("state") == "running")
        return done, running, max(0, self.total - done - running)

    def epochs_to_go(self) -> int:
        """Trial-epochs still to run: every epoch of the trials not started, the rest of the running ones."""
        *_, left = self.counts()
        return left * self.epochs + sum(max(0, self.epochs - r.get("epoch", 0)) for r in self.rows.values()
                                        if r.get("state") == "running")

    def remaining_s(self, now: float | None = None) -> float | None:
        """The trial-epochs to go at the measured rate, counted down since the last epoch ended; None
        before the first epoch. An upper bound where ASHA stops trials early."""
        if not self.epochs_run or self.first_start is None or self.last_epoch_at is None:
            return None
        rate = self.epochs_run / max(self.last_epoch_at - self.first_start, 1e-3)  # trial-epochs per second
        now = time.time() if now is None else now
        return max(0.0, self.epochs_to_go() / rate - (now - self.last_epoch_at))

    def times(self) -> str:
        remaining = self.remaining_s()
        left = "?" if remaining is None else f"~{_clock(remaining)}"
        return f"elapsed {_clock(time.time() - self.started)}, time left {left}"

    def best(self) -> tuple[str, dict] | None:
        scored = [(r["value"], tid) for tid, r in self.rows.items() if r.get("value") is not None]
        if not scored:
            return None
        _, tid = min(scored)
        return tid, self.rows[tid]

    def header(self) -> str:
        done, running, left = self.counts()
        best = self.best()
        best_text = "-" if best is None else f"{best[1]['value']:.2f} ({best[0]}, {best[1]['params']})"
        return (f"search {self.name}: {done} done, {running} running, {left} left | {self.times()} | "
                f"best {self._label()} {best_text}")

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
            # A line wider than the terminal wraps, and moving up by lines would then miss its rest.
            width = _width(self.out)
            lines = [line[:width] for line in self.lines()]
            self.out.write("\n".join(lines) + "\n")
            self._drawn = len(lines)
            self._second = int(time.time() - self.started)
        elif event is not None:
            done, running, left = self.counts()
            best = self.best()
            best_text = "" if best is None else f"; best {best[1]['value']:.2f} ({best[0]})"
            self.out.write(f"[ldlpose] {event}  [{done} done, {running} running, {left} left{best_text}; "
                           f"{self.times()}]\n")
        self.out.flush()


def _width(out) -> int:
    """The terminal's columns less one (no line reaches the last column), 200 where it is not known
    (a pseudo-terminal that was never given a size says 0)."""
    try:
        columns = os.get_terminal_size(out.fileno()).columns
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        columns = 0
    return max(20, columns - 1) if columns > 0 else 200


def _params(config: dict) -> str:
    """The method and its sampled values, the backbone among them: ``gldl backbone=resnet18 lr=0.002``."""
    config = config or {}
    return f"{config.get('method', '')} {sampled_values(config, backbone=True)}".strip()


# --- what the search prints besides the live view: every line the driver's steps say goes through here ---

def say(text: str = "") -> None:
    """One message of the search to the terminal (the driver's steps print nothing themselves)."""
    print(text, flush=True)


def view(space, name: str, total: int, concurrency: int) -> ConsoleView:
    """The compact view of a search (or its confirmation) running ``concurrency`` trials at once."""
    from ldlpose.search.trials import objective_key

    return ConsoleView(name, objective_key(space), total, space.base_run.train.epochs, concurrency)


def results_table(ranked: list[dict], space, limit: int = 10) -> str:
    """The best trials by the validation objective, with the test scores of their selected checkpoints."""
    from ldlpose.metrics import metric_key
    from ldlpose.report.tables import table
    from ldlpose.search.trials import objective_name

    benchmarks = space.base_run.data.benchmarks
    headers = ["trial", "method", "backbone", "parameters", f"selected {objective_name(space)}",
               *(f"{b} MAE (test)" for b in benchmarks), "epoch"]
    rows = []
    for c in ranked[:limit]:
        tests = [c["scores"].get(metric_key(b, "mae")) for b in benchmarks]
        rows.append([c["trial_id"], c["method"], c["backbone"], sampled_values(c["assignment"]),
                     f"{c['objective']:.2f}",
                     *("-" if v is None else f"{v:.2f}" for v in tests), str(c["selected_epoch"])])
    return table(headers, rows)


def results(space, ranked: list[dict], outcome, identities: dict[str, dict]) -> None:
    """The search's trials, best first, what their test scores were measured on, and its failures."""
    from ldlpose.report.tables import measured_on
    from ldlpose.search.trials import objective_name

    say(f"\nsearch {space.name}: {len(ranked)} of {len(outcome.trials)} trials finished with a selected "
        f"checkpoint; best {objective_name(space)} first (test benchmarks are measured, never used to choose):\n")
    say(results_table(ranked, space))
    say(measured_on(identities))
    failed = "\n".join(f"  {t.trial_id}: {t.error}" for t in outcome.trials if t.status == "ERROR")
    if failed:
        say(f"\nfailed trials:\n{failed}")


def confirmation_table(rows: list[dict], space) -> str:
    from ldlpose.report.tables import table
    from ldlpose.search import confirm
    from ldlpose.search.trials import objective_name

    objective = objective_name(space)
    lines = [table(["configuration", "method", "parameters", "search", f"mean {objective}", "std", "95% CI", "n"],
                   [[r["trial_id"], r["method"], sampled_values(r["assignment"]), f"{r['original']:.2f}",
                     f"{r['stats'].mean:.2f}", f"{r['stats'].std:.2f}",
                     f"[{r['stats'].ci_low:.2f}, {r['stats'].ci_high:.2f}]", str(r["stats"].n)] for r in rows])]
    methods = confirm.per_method(rows)
    if methods:
        lines.append(table(["method", f"mean {objective}", "std", "95% CI", "n"],
                           [[m, f"{s.mean:.2f}", f"{s.std:.2f}", f"[{s.ci_low:.2f}, {s.ci_high:.2f}]", str(s.n)]
                            for m, s in methods.items()]))
    return "\n\n".join(lines)


def champions(registered: dict, uri: str, experiment_id: str | None = None) -> None:
    """Each benchmark's registered version and whether it took the rule's alias; where to look and predict."""
    from ldlpose.tracking import experiment_page, redact, resolve_tracking_uri

    for benchmark, info in sorted(registered.items()):
        alias = info["alias"]  # "champion" under rule validation; each other rule has its own
        if info["moved"]:
            verdict = f"now the {alias}"
        elif not info["comparable"]:
            verdict = (f"{alias} stays version {info['champion']}: it was selected on other validation rows, "
                       "so the two are not comparable (set search.champion.rule: benchmark to compare test MAEs)")
        else:
            verdict = f"{alias} stays version {info['champion']}"
        mae = "-" if info["mae"] is None else f"{info['mae']:.2f}"
        say(f"registered {info['model']} version {info['version']} ({benchmark} test MAE {mae}): {verdict}")
    page, shown = experiment_page(uri, experiment_id), redact(uri)
    if shown.startswith(("http://", "https://")):
        say(f"MLflow:  {shown}\n  the search's runs: {page}")
    else:
        # ldlpose ui picks a free port and prints this search's page there (the latest search).
        flag = "" if shown == resolve_tracking_uri(None) else f" --tracking-uri {shown}"
        say(f"MLflow:  {shown}\n  open it in MLflow's UI with: ldlpose ui{flag}")
    if registered:
        first = registered[sorted(registered)[0]]
        say(f"  predict with:     ldlpose predict --model models:/{first['model']}@{first['alias']} IMAGE...")


def _number(value, digits: int = 2) -> str:
    finite = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return f"{value:.{digits}f}" if finite else "-"


def front_table(rows: list[dict], space, champion: str | None = None) -> str:
    """Every finished trial of a multi-objective search with its objectives, costs and test scores; the
    front marked (the rows of ldlpose.search.pareto.front_rows)."""
    from ldlpose.metrics import metric_key
    from ldlpose.report.tables import table

    names = [o.name for o in space.objectives]
    benchmarks = space.base_run.data.benchmarks
    headers = ["trial", "method", "backbone", *names, "latency p90 ms", "MACs (M)",
               *(f"{b} MAE (test)" for b in benchmarks), "pareto", "champion"]
    body = []
    for r in sorted(rows, key=lambda r: (not r["pareto"], r["values"][names[0]])):
        body.append([r["trial_id"], r["method"], r["backbone"], *(_number(r["values"][n]) for n in names),
                     _number(r["costs"].get("latency_p90_ms")), _number(r["costs"].get("macs_m"), 1),
                     *(_number(r["scores"].get(metric_key(b, "mae"))) for b in benchmarks),
                     "yes" if r["pareto"] else "", "yes" if r["trial_id"] == champion else ""])
    return table(headers, body)


def pareto_front(space, rows: list[dict], champion: str | None) -> None:
    """The Pareto front of a multi-objective search, before its plot and registration."""
    names = ", ".join(o.name for o in space.objectives)
    members = sum(1 for r in rows if r["pareto"])
    say(f"\nPareto front on {names} ({members} of {len(rows)} trials; test benchmarks are reported, "
        "never used to choose):\n")
    say(front_table(rows, space, champion))


def front_registered(registered: dict, rule: str) -> None:
    """Each benchmark's registered front and where the rule's alias went; how to predict with it."""
    for _benchmark, info in sorted(registered.items()):
        trial_of = {v: t for t, v in info["versions"].items()}
        versions = ", ".join(sorted(info["versions"].values(), key=int))
        if info["champion"] is None:
            verdict = f"no version meets the rule {rule!r}, so alias {info['alias']!r} names none"
        elif info["moved"]:
            verdict = (f"alias {info['alias']!r} is now version {info['champion']} (trial {trial_of[info['champion']]})"
                       f" by {rule!r}")
        elif not info["comparable"]:
            verdict = (f"alias {info['alias']!r} stays version {info['champion']}: it was selected on other "
                       "validation rows, so the two are not comparable")
        else:
            verdict = f"alias {info['alias']!r} stays version {info['champion']} by {rule!r}"
        say(f"registered {info['model']} versions {versions} (its Pareto front, ldlpose.pareto=true): {verdict}")
    with_champion = sorted(b for b, info in registered.items() if info["champion"] is not None)
    if with_champion:
        first = registered[with_champion[0]]
        say(f"  predict with:     ldlpose predict --model models:/{first['model']}@{first['alias']} IMAGE...")
