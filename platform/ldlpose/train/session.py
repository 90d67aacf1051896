"""Where the training loop runs: what it asks of its surroundings, for each of the two engines.

The loop (:mod:`ldlpose.train.loop`) is the same code on both. It needs its rank and world size,
a device, the checkpoint to resume from, a way to report an epoch (metrics plus a checkpoint),
and to know whether it was asked to stop. :class:`RayTrainSession` gives it these inside a Ray
Train worker (``TorchTrainer``: several workers, GPUs, several nodes). :class:`LocalSession` gives
them to a run of one CPU worker in the calling process: a Tune trial or ``ldlpose train`` itself,
with no controller or worker actors to start, and checkpoints written straight into the run folder
with Ray Train's retention rule (the best epoch by the selection metric, plus the latest).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from ldlpose.train.checkpoints import load_checkpoint, prune, resume_state, stop_requested, store

Writer = Callable[[Path], None]  # writes one checkpoint into the folder it is given


class RayTrainSession:
    """Inside a ``TorchTrainer`` worker: Ray Train restores, reports and keeps checkpoints."""

    def __init__(self, run_dir: str | None):
        import ray
        import ray.train
        import ray.train.torch

        context = ray.train.get_context()
        self.rank, self.world = context.get_world_rank(), context.get_world_size()
        self.device = ray.train.torch.get_device()
        self.node_id = ray.get_runtime_context().get_node_id()
        self.cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
        self.run_dir = run_dir

    def restore(self) -> dict | None:
        import ray.train

        checkpoint = ray.train.get_checkpoint()
        registered = None
        if checkpoint is not None:
            with checkpoint.as_directory() as directory:
                registered = load_checkpoint(Path(directory))
        # Every rank reads the same storage, so all of them continue from the same epoch.
        return resume_state(registered, self.run_dir)

    def report(self, metrics: dict, write: Writer | None, name: str) -> None:
        """Every rank calls this once per epoch (it is a barrier); rank 0 alone writes the checkpoint."""
        import ray.train

        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = None
            if write is not None:
                write(Path(tmp))
                checkpoint = ray.train.Checkpoint.from_directory(tmp)
            ray.train.report(metrics, checkpoint=checkpoint, checkpoint_dir_name=name)

    def stop_requested(self) -> bool:
        return stop_requested(self.run_dir)


class LocalSession:
    """One CPU worker in this process, its checkpoints in ``run_dir``; ``publish`` receives each
    epoch's metrics (``ray.tune.report`` in a Tune trial, nothing for ``ldlpose train``)."""

    rank, world = 0, 1

    def __init__(self, run_dir: str, select_metric: str, publish: Callable[[dict], None] | None = None,
                 cpus: float = 1.0):
        self.run_dir, self.select_metric, self.publish, self.cpus = run_dir, select_metric, publish, cpus
        self.device = torch.device("cpu")
        self.node_id = _node_id()
        self.last_metrics: dict = {}

    def restore(self) -> dict | None:
        """The newest checkpoint that loads in full, as Ray Train's path finds it: one cut off by a
        crash (its folder renamed into place but its file damaged since) is passed over."""
        return resume_state(None, self.run_dir)

    def report(self, metrics: dict, write: Writer | None, name: str) -> None:
        if write is not None:
            store(self.run_dir, name, write)
            prune(self.run_dir, self.select_metric)
        self.last_metrics = metrics
        if self.publish is not None:
            self.publish(metrics)

    def stop_requested(self) -> bool:
        return stop_requested(self.run_dir)


def _node_id() -> str:
    """The Ray node this process runs on, as Ray Train workers record it; "local" outside Ray."""
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else "local"
