"""The driver side of one training run: build Ray Train's ``TorchTrainer`` and fit it.

A run is named; starting a run whose ``(storage_path, name)`` already holds checkpoints continues
from the latest one (Ray Train V2 restores by name), which is also how a search trial resumes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ldlpose.config import RunConfig
from ldlpose.errors import LdlposeError
from ldlpose.train.checkpoints import Selected, load_checkpoint, retention, select_checkpoint

DEFAULT_STORAGE = "ldlpose-results"


@dataclass(frozen=True)
class TrainOutcome:
    metrics: dict  # the last epoch's metrics (rank 0)
    checkpoint_path: str | None  # the latest checkpoint (what a resume continues from)
    run_path: str
    selected: Selected | None = None  # the best checkpoint by train.select_metric

    @property
    def history(self) -> list[dict]:
        """Every epoch's metrics, including those of earlier attempts this run resumed from."""
        if self.checkpoint_path is None:
            return []
        return load_checkpoint(Path(self.checkpoint_path))["history"]


def resolve_paths(run: RunConfig) -> RunConfig:
    """Absolute data paths: Ray workers do not share the launching process's working directory."""
    root = str(Path(run.data.root).expanduser().resolve())
    return dataclasses.replace(run, data=dataclasses.replace(run.data, root=root))


def loop_config(run: RunConfig, fail_after_epoch: int | None = None, run_dir: str | None = None) -> dict:
    """What travels to the workers: the run without its infrastructure (resources) settings, and
    the run's folder, where a search may ask it to stop (train.checkpoints.STOP_FILE)."""
    data = run.to_dict()
    data.pop("resources")
    return {"run": data, "fail_after_epoch": fail_after_epoch, "run_dir": run_dir}


def build_trainer(run: RunConfig, *, storage_path: str, name: str, callbacks=(), fail_after_epoch=None):
    import ray.train
    from ray.train.torch import TorchTrainer

    from ldlpose.train.loop import train_loop_per_worker

    res = run.resources
    scaling = ray.train.ScalingConfig(
        num_workers=res.workers,
        use_gpu=res.gpus_per_worker > 0,
        resources_per_worker={"CPU": res.cpus_per_worker, **({"GPU": res.gpus_per_worker} if res.gpus_per_worker else {})},
    )
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config=loop_config(run, fail_after_epoch, str(Path(storage_path) / name)),
        scaling_config=scaling,
        run_config=ray.train.RunConfig(
            name=name,
            storage_path=storage_path,
            failure_config=ray.train.FailureConfig(max_failures=run.train.max_failures),
            checkpoint_config=retention(run.train.select_metric),
            callbacks=list(callbacks),
        ),
    )


def fit(run: RunConfig, *, storage_path: str = DEFAULT_STORAGE, name: str | None = None, callbacks=(),
        fail_after_epoch: int | None = None) -> TrainOutcome:
    """Train ``run`` on Ray Train (Ray must be initialised); raises LdlposeError on failure.

    ``fail_after_epoch`` is a fault-tolerance drill: an attempt that starts from scratch fails after
    that epoch, so the run must resume from its checkpoint (within ``train.max_failures``, or when
    ``fit`` is called again with the same name).
    """
    import ray.train

    run = resolve_paths(run)
    storage = str(Path(storage_path).expanduser().resolve())
    name = name or run.name
    trainer = build_trainer(run, storage_path=storage, name=name, callbacks=callbacks,
                            fail_after_epoch=fail_after_epoch)
    try:
        result = trainer.fit()
    except ray.train.TrainingFailedError as err:
        raise LdlposeError(f"training run {name!r} failed: {_root_cause(err)}") from err
    run_path = str(Path(storage) / name)
    return TrainOutcome(
        metrics=dict(result.metrics or {}),
        checkpoint_path=result.checkpoint.path if result.checkpoint else None,
        run_path=run_path,
        selected=select_checkpoint(run_path, run.train.select_metric),
    )


def _root_cause(err: BaseException) -> str:
    """The innermost message of a Ray error chain, e.g. the worker's NonFiniteLossError."""
    failures = getattr(err, "worker_failures", None)
    if failures:
        rank, failure = sorted(failures.items())[0]
        cause = getattr(failure, "cause", None) or failure
        return f"worker {rank}: {type(cause).__name__}: {_last_line(str(cause))}"
    return _last_line(str(err))


def _last_line(text: str) -> str:
    """The last line naming an error in a (possibly multi-line, traceback-carrying) message."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error:" in line or "Failure:" in line:
            return line
    return lines[-1] if lines else "unknown error"
