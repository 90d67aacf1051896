"""Training checkpoints: the file format, Ray Train's retention rule and the choice of a run's best.

This is the one checkpoint module: training writes and keeps checkpoints through it, and export,
evaluation and tracking read them through :func:`load_checkpoint`. It imports neither Ray nor torch at
module level (Ray only for :func:`retention`), so reading a checkpoint never starts Ray.

One checkpoint folder per epoch (``checkpoint_epoch_NNNN``) holding ``checkpoint.pt``: the model,
optimizer and scheduler state, the epoch, the run config and every epoch's metrics so far, and
``metrics.json``, that epoch's metrics alone, so that choosing among checkpoints reads a few bytes
instead of every model. Each run keeps the best checkpoint by its selection metric (a validation
error) plus the latest one, so it can always resume and its best epoch is never deleted: Ray Train
applies that rule (:func:`retention`) to its runs, :func:`prune` to in-process runs.

No RNG state is stored: the loop reseeds every epoch from ``(train.seed, epoch, rank)``, which is
what makes a resumed run repeat an uninterrupted one.

A run folder may be a URI (``s3://bucket/prefix/run``, see :mod:`ldlpose.infra.storage`). Object storage
has no atomic rename, so there a checkpoint's files are uploaded model first and ``metrics.json``
last, which keeps the rule that a folder with ``metrics.json`` holds a complete checkpoint; the
selected checkpoint is copied to a local folder for the callers that read it as files.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ldlpose.errors import DataError
from ldlpose.infra import storage
from ldlpose.infra.files import replace_durably

CHECKPOINT_FILE = "checkpoint.pt"
METRICS_FILE = "metrics.json"
CHECKPOINT_PREFIX = "checkpoint_"
# Every metric the loop reports on the validation split is an error in degrees: lower is better.
SELECTION_ORDER = "min"


# A search writes this file into a training run's folder when Tune has stopped the trial (ASHA). Ray
# 2.60 stops a trial's driver gracefully and keeps its trainer running until the driver's next
# result; left alone, the run trains on, and its later checkpoints can push out the one Tune judged.
STOP_FILE = "stop_requested"


def request_stop(run_dir) -> None:
    if storage.is_uri(run_dir):
        storage.write_bytes(storage.join(run_dir, STOP_FILE), b"")
        return
    path = Path(run_dir)
    path.mkdir(parents=True, exist_ok=True)
    (path / STOP_FILE).touch()


def stop_requested(run_dir: str | None) -> bool:
    if storage.is_uri(run_dir):
        return storage.exists(storage.join(run_dir, STOP_FILE))
    return run_dir is not None and run_dir != "" and (Path(run_dir) / STOP_FILE).is_file()


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
    # Written last: a folder with metrics.json holds a complete checkpoint.
    (Path(directory) / METRICS_FILE).write_text(json.dumps(_finite(history[-1]), default=str))


def _finite(metrics: dict) -> dict:
    """JSON has no NaN or infinity: such a value is left out (it can never be the best)."""
    return {k: v for k, v in metrics.items() if not (isinstance(v, float) and not math.isfinite(v))}


def read_metrics(folder) -> dict:
    """The metrics of the epoch a checkpoint folder holds (older checkpoints: read from the model file)."""
    if storage.is_uri(folder):  # no metrics.json yet: still being uploaded
        try:
            return json.loads(storage.read_bytes(storage.join(folder, METRICS_FILE)))
        except ValueError as err:
            raise OSError(f"unreadable {storage.join(folder, METRICS_FILE)}: {err}") from err
    folder = Path(folder)
    try:
        return json.loads((folder / METRICS_FILE).read_text())
    except FileNotFoundError:
        return load_checkpoint(folder)["metrics"]
    except ValueError as err:  # a half-written file: treat like an unreadable checkpoint
        raise OSError(f"unreadable {folder / METRICS_FILE}: {err}") from err


def checkpoint_file(path) -> Path:
    """The model file of a checkpoint folder; a path to the file itself is returned as it is."""
    path = Path(path)
    return path / CHECKPOINT_FILE if path.is_dir() else path


def load_checkpoint(path) -> dict:
    """A checkpoint written by :func:`save_checkpoint`, from its folder or its file, loaded without
    unpickling code (plain tensors and containers only); DataError naming the file otherwise."""
    import torch

    if storage.is_uri(path):
        file = path if str(path).endswith("/" + CHECKPOINT_FILE) else storage.join(path, CHECKPOINT_FILE)
        try:
            return torch.load(io.BytesIO(storage.read_bytes(file)), map_location="cpu", weights_only=True)
        except Exception as err:
            raise DataError(f"cannot read checkpoint {file}: {type(err).__name__}: {err}") from err
    file = checkpoint_file(path)
    if not file.is_file():
        raise DataError(f"no checkpoint at {file}: expected a checkpoint folder holding {CHECKPOINT_FILE}")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt or half-written file, or one holding more than tensors and containers
        raise DataError(f"cannot read checkpoint {file}: {type(err).__name__}: {err}") from err
    missing = [key for key in ("model", "run") if not isinstance(state, dict) or key not in state]
    if missing:
        raise DataError(f"checkpoint {file} lacks {missing}; it was not written by ldlpose's training loop")
    return state


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
    candidates = [(float(m[metric]), e, f, m) for e, f, m in _kept(run_dir)
                  if metric in m and (last_epoch is None or e <= last_epoch)]
    if not candidates:
        return None
    _, epoch, folder, metrics = min(candidates, key=lambda c: (c[0], c[1]))
    return Selected(str(_local(folder, metrics)), dict(metrics), epoch)


def latest_checkpoint(run_dir) -> Path | str | None:
    """The readable checkpoint of the latest epoch: what a resumed run continues from."""
    kept = _kept(run_dir)
    return max(kept, key=lambda k: k[0])[1] if kept else None


def resume_state(registered: dict | None, run_dir) -> dict | None:
    """What a restarted run continues from: ``registered`` (the checkpoint state Ray Train handed
    back) or, when ``run_dir`` holds a later checkpoint that loads in full, that one.

    A worker lost after its checkpoint reached storage but before its report reached the Train
    controller leaves the controller one epoch behind what storage holds; without this the run
    would train that epoch again. A later folder that does not load (its upload cut off when the
    node died, or a truncated file) is passed over for the next older one, with a line on stderr.
    With ``registered`` None (the in-process engine) this is the newest checkpoint that loads.
    """
    done = -1 if registered is None else int(registered["epoch"])  # 0-based, as saved
    for epoch, folder, _ in sorted(_kept(run_dir) if run_dir else [], key=lambda k: -k[0]):
        if epoch - 1 <= done:  # metrics count epochs from 1
            break
        try:
            return load_checkpoint(folder)
        except DataError as err:
            print(f"ldlpose: checkpoint of epoch {epoch} does not load ({err}); resuming from an older one",
                  file=sys.stderr, flush=True)
    return registered


def _kept(run_dir) -> list[tuple[int, Path | str, dict]]:
    """``(epoch, folder, metrics)`` of every readable checkpoint of a run."""
    if storage.is_uri(run_dir):
        return _kept_at_uri(run_dir)
    if not run_dir or not Path(run_dir).is_dir():
        return []
    kept: list[tuple[int, Path | str, dict]] = []
    for folder in sorted(Path(run_dir).glob(f"{CHECKPOINT_PREFIX}*")):
        if not folder.is_dir():  # checkpoint_manager_snapshot.json lives beside them
            continue
        try:
            metrics = read_metrics(folder)
        except (OSError, RuntimeError, KeyError, EOFError, DataError):
            continue
        kept.append((int(metrics.get("epoch", 0)), folder, metrics))
    return kept


def _kept_at_uri(run_dir: str) -> list[tuple[int, Path | str, dict]]:
    import pyarrow.fs

    kept: list[tuple[int, Path | str, dict]] = []
    for info in sorted(storage.listing(run_dir), key=lambda i: i.base_name):
        if info.type != pyarrow.fs.FileType.Directory or not info.base_name.startswith(CHECKPOINT_PREFIX):
            continue
        folder = storage.join(run_dir, info.base_name)
        try:
            metrics = read_metrics(folder)
        except OSError:
            continue
        kept.append((int(metrics.get("epoch", 0)), folder, metrics))
    return kept


_FETCHED: list[tempfile.TemporaryDirectory] = []  # local copies of selected checkpoints, removed at exit


def _local(folder, metrics: dict) -> Path | str:
    """A folder on object storage copied to a local one (once per content); a local folder as it is."""
    if not storage.is_uri(folder):
        return folder
    if not _FETCHED:
        _FETCHED.append(tempfile.TemporaryDirectory(prefix="ldlpose-checkpoints-"))
    key = hashlib.sha256(json.dumps([folder, metrics], sort_keys=True, default=str).encode()).hexdigest()[:16]
    local = Path(_FETCHED[0].name) / key / storage.name(folder)
    if not (local / METRICS_FILE).is_file():
        shutil.rmtree(local, ignore_errors=True)
        storage.download(folder, local)
    return local


def store(run_dir, name: str, write) -> Path | str:
    """``write(folder)`` into a fresh folder, then move it to ``run_dir/name`` in one step, so a
    reader never sees a half-written checkpoint under its final name."""
    if storage.is_uri(run_dir):
        return _store_at_uri(run_dir, name, write)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    target, partial = run_dir / name, run_dir / f".partial-{name}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    write(partial)
    if target.exists():  # the same epoch, trained again after a failure
        shutil.rmtree(target)
    replace_durably(partial, target)  # flushed first: after a crash the name holds a complete checkpoint
    return target


def _store_at_uri(run_dir: str, name: str, write) -> str:
    target = storage.join(run_dir, name)
    with tempfile.TemporaryDirectory(prefix="ldlpose-checkpoint-") as tmp:
        write(Path(tmp))
        storage.delete(target)  # the same epoch, trained again after a failure
        files = sorted(Path(tmp).rglob("*"), key=lambda f: f.name == METRICS_FILE)  # metrics.json last
        for file in files:
            if file.is_file():
                storage.upload(file, storage.join(target, str(file.relative_to(tmp))))
    return target


def prune(run_dir, select_metric: str) -> list[Path | str]:
    """Delete every checkpoint but the latest and the best by ``select_metric`` (Ray Train's
    :func:`retention` rule, for runs that write their own checkpoints); the folders deleted."""
    kept = _kept(run_dir)
    if not kept:
        return []
    keep = {max(kept, key=lambda k: k[0])[1]}
    scored = [(float(m[select_metric]), epoch, folder) for epoch, folder, m in kept if select_metric in m]
    if scored:  # the best, as select_checkpoint chooses it (ties to the earlier epoch), from what was just read
        keep.add(min(scored, key=lambda c: (c[0], c[1]))[2])
    removed: list[Path | str] = [folder for _, folder, _ in kept if folder not in keep]
    for folder in removed:
        if storage.is_uri(folder):
            storage.delete(folder)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return removed
