"""Training checkpoints: the file format, Ray Train's retention rule and the choice of a run's best.

One checkpoint folder per epoch (``checkpoint_epoch_NNNN``) holding ``checkpoint.pt``: the model,
optimizer and scheduler state, the epoch, the run config and every epoch's metrics so far. Ray
Train keeps the best checkpoint by the run's selection metric (a validation error) plus the latest
one, so the run can always resume and its best epoch is never deleted.

No RNG state is stored: the loop reseeds every epoch from ``(train.seed, epoch, rank)``, which is
what makes a resumed run repeat an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CHECKPOINT_FILE = "checkpoint.pt"
CHECKPOINT_PREFIX = "checkpoint_"
# Every metric the loop reports on the validation split is an error in degrees: lower is better.
SELECTION_ORDER = "min"


# A search writes this file into a training run's folder when Tune has stopped the trial (ASHA). Ray
# 2.60 stops a trial's driver gracefully and keeps its trainer running until the driver's next
# result; left alone, the run trains on, and its later checkpoints can push out the one Tune judged.
STOP_FILE = "stop_requested"


def request_stop(run_dir) -> None:
    path = Path(run_dir)
    path.mkdir(parents=True, exist_ok=True)
    (path / STOP_FILE).touch()


def stop_requested(run_dir: str | None) -> bool:
    return bool(run_dir) and (Path(run_dir) / STOP_FILE).is_file()


def checkpoint_dir_name(epoch: int) -> str:
    """Named by epoch, not by time, so a run's files read the same however often it resumed."""
    return f"{CHECKPOINT_PREFIX}epoch_{epoch:04d}"


def retention(select_metric: str):
    """Ray Train's CheckpointConfig: the best epoch by ``select_metric``, plus the latest (Ray keeps
    the latest checkpoint whatever its score, so a run resumes from where it stopped)."""
    import ray.train

    return ray.train.CheckpointConfig(num_to_keep=1, checkpoint_score_attribute=select_metric,
                                      checkpoint_score_order=SELECTION_ORDER)


def save_checkpoint(directory: Path, *, model_state: dict, optimizer, scheduler, epoch: int,
                    history: list[dict], run: dict) -> None:
    """``history`` holds every epoch's metrics so far; its last entry is this epoch's (0-based ``epoch``)."""
    import torch

    torch.save({"model": model_state, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "epoch": epoch, "metrics": history[-1], "history": history, "run": run},
               Path(directory) / CHECKPOINT_FILE)


def load_checkpoint(path) -> dict:
    """A checkpoint written by :func:`save_checkpoint` (plain tensors and containers only)."""
    import torch

    path = Path(path)
    return torch.load(path / CHECKPOINT_FILE if path.is_dir() else path, map_location="cpu", weights_only=True)


@dataclass(frozen=True)
class Selected:
    """The checkpoint a run is judged by: its folder, its metrics and its (1-based) epoch."""

    path: str
    metrics: dict
    epoch: int


def select_checkpoint(run_dir, metric: str, last_epoch: int | None = None) -> Selected | None:
    """The kept checkpoint of a training run with the lowest ``metric``; None if there is none.

    Only checkpoints up to ``last_epoch`` (the last epoch the caller saw reported) count: a trial
    stopped by ASHA may leave a later checkpoint half-written while its trainer shuts down, and an
    unreadable one is skipped. Ties go to the earlier epoch.
    """
    if not run_dir or not Path(run_dir).is_dir():
        return None
    candidates = []
    for folder in sorted(Path(run_dir).glob(f"{CHECKPOINT_PREFIX}*")):
        if not folder.is_dir():  # checkpoint_manager_snapshot.json lives beside them
            continue
        try:
            metrics = load_checkpoint(folder)["metrics"]
        except (OSError, RuntimeError, KeyError, EOFError):
            continue
        epoch = int(metrics.get("epoch", 0))
        if metric in metrics and (last_epoch is None or epoch <= last_epoch):
            candidates.append((float(metrics[metric]), epoch, str(folder), metrics))
    if not candidates:
        return None
    _, epoch, folder, metrics = min(candidates, key=lambda c: (c[0], c[1]))
    return Selected(folder, dict(metrics), epoch)
