"""Workarounds for Ray 2.60 behaviour that the rest of the search should not need to know about.

Each reaches into Ray internals, so each is kept small, here, and says which Ray behaviour it
works around; delete one when the Ray version that fixes it is the oldest supported.
"""

from __future__ import annotations

import time

from ray.tune import Callback
from ray.tune.search import ConcurrencyLimiter, SearchGenerator


def wait_for_reports_to_drain(timeout_s: float = 60.0) -> None:
    """Return only once Tune has taken the trial's last report.

    Ray 2.60 race: Tune's function runner moves each Train report from an inter-actor queue into its
    one-slot result queue on the trial's main thread; when the trial function returns at that moment,
    the runner's end-of-trial marker can fill the slot first and the main thread blocks forever on
    its ``put``. Waiting here until both queues stay empty closes the window.
    """
    from ray.train._internal.session import get_session

    session = get_session()
    assert session is not None, "called from a Ray Train worker, which has a session"
    inter_actor = getattr(session, "_inter_actor_queue", None)

    def drained() -> bool:
        return (inter_actor is None or inter_actor.empty()) and session.result_queue.empty()

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if drained():
            time.sleep(0.5)  # the main thread may be between taking an item and queueing it
            if drained():
                return
        time.sleep(0.1)


def replace_callbacks(tuner, kind: type | tuple[type, ...], callbacks: list) -> None:
    """A restored Tuner brings back its pickled callbacks; give it this session's instead.

    ``Tuner.restore`` has no argument for callbacks (Ray 2.60), and the pickled ones hold the
    previous session's state.
    """
    internal = getattr(tuner, "_local_tuner", None)
    run_config = getattr(internal, "_run_config", None)
    if run_config is not None:
        run_config.callbacks = [c for c in (run_config.callbacks or []) if not isinstance(c, kind)] + list(callbacks)


def budgeted_search(searcher, trials: int, concurrency: int) -> BudgetedSearch:
    """``searcher`` as Tune runs it (at most ``concurrency`` trials at once, ``trials`` in all), with a
    budget that :func:`set_budget` can raise on a restored Tuner."""
    return BudgetedSearch(ConcurrencyLimiter(searcher, max_concurrent=concurrency), trials)


class BudgetedSearch(SearchGenerator):
    """Tune's SearchGenerator, whose trial budget and concurrency are this session's after a restore.

    Ray 2.60 restores a search's generator with the number of trials it was started with (its
    pickled state), and ``Tuner.restore`` takes no TuneConfig: a search resumed with a raised
    ``search.budget.trials`` would stop at the old one.
    """

    def __init__(self, searcher: ConcurrencyLimiter, budget: int):
        super().__init__(searcher)
        self.budget = budget
        self.concurrency = searcher.max_concurrent

    def restore_from_dir(self, dirpath: str) -> None:
        super().restore_from_dir(dirpath)
        self._total_samples = self.budget
        self._finished = self._finished and self._counter >= self.budget
        self.searcher.set_max_concurrency(self.concurrency)


def set_budget(tuner, trials: int, concurrency: int, time_budget_s: float | None) -> None:
    """A restored Tuner keeps the budget it was pickled with; give it this session's (see BudgetedSearch)."""
    internal = getattr(tuner, "_local_tuner", None)
    tune_config = getattr(internal, "_tune_config", None)
    assert tune_config is not None, "Ray's Tuner no longer keeps _local_tuner._tune_config: see set_budget"
    search = tune_config.search_alg
    if isinstance(search, BudgetedSearch):  # searches started before it keep their stored budget
        search.budget, search.concurrency = trials, concurrency
    tune_config.num_samples = trials
    tune_config.time_budget_s = time_budget_s


class StopRepeatedFailures(Callback):
    """Ends a trial whose attempts failed the same way ``SAME_FAILURE_CAP`` times in a row.

    Ray 2.60 retries a failed trial while ``FailureConfig.max_failures`` allows (-1: always) and has
    no public way for a trial to fail for good. Under ``train.max_failures: -1`` a trial's failed
    attempts are recorded in its run folder (ldlpose.train.failures: by the trial itself in process,
    by Ray Train's controller on ray_train); once they show the cap reached, the trial's own limit is
    lowered to what it has used, so the attempt Tune has just queued (which raises the same error at
    once, without training) is its last: the trial ends ERROR with that error. Trials that record no
    failures (under a finite ``train.max_failures``) are left to Tune's own limit.
    """

    def __init__(self, storage: str, prefix: str):
        self.storage, self.prefix = storage, prefix

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        from ldlpose.infra.storage import join
        from ldlpose.train.failures import repeated_failure

        if repeated_failure(join(self.storage, f"{self.prefix}-{trial.trial_id}")) is not None:
            trial.max_failures = 0  # Trial.should_recover: num_failures <= max_failures, or max_failures < 0
