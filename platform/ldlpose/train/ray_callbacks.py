"""Ray Train callbacks of the ``ray_train`` engine; this module imports Ray Train, so only
``build_trainer`` imports it."""

from __future__ import annotations

import ray.train

from ldlpose.train.failures import record_failure


class RecordFailedAttempts(ray.train.UserCallback):
    """Records each failed attempt of a run's worker group in the run's folder (ldlpose.train.failures).

    Ray Train retries the worker group while ``FailureConfig.max_failures`` allows (-1: always) and
    offers no public way to fail a run for good. So the controller, which sees every attempt's
    worker errors, records them; each worker of the next attempt reads the record and, once it
    shows the same failure :data:`~ldlpose.train.failures.SAME_FAILURE_CAP` times in a row, returns
    without training (ldlpose.train.loop.train_loop_per_worker); the driver then raises the recorded
    error (ldlpose.train.run). Runs on the controller actor, so it holds only the run folder's path.
    """

    def __init__(self, run_dir: str):
        self.run_dir = run_dir

    def after_exception(self, run_context, worker_exceptions: dict) -> None:
        # The lowest failing rank's error stands for the attempt (a deterministic fault strikes every
        # rank alike). Ray's own errors (a lost worker, a failed health check) are never counted:
        # they are the transient kind, and Ray may report one at several polls while it waits out a
        # node's preemption.
        raised = {rank: err for rank, err in worker_exceptions.items()
                  if type(err).__module__.partition(".")[0] != "ray"}
        if raised:
            record_failure(self.run_dir, raised[min(raised)])
