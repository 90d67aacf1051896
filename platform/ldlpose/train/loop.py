"""The per-worker training loop: what each Ray Train worker runs, and what a one-worker CPU run
runs in-process (the engines differ only in their session, ldlpose.train.session).

Read top to bottom: build the method and network, restore the latest checkpoint if the session has
one (after a worker failure, or when a run with the same name is started again), then per epoch
train, evaluate on the validation split, and report metrics plus a checkpoint. The epoch with the
lowest ``train.select_metric`` is the run's selected epoch; the test benchmarks are scored once, on
its weights, after the last epoch (``selected_<benchmark>_<metric>``), and per epoch only when
``data.benchmarks_every_epoch`` asks for a test curve. Nothing is ever chosen on a test benchmark.

Everything random derives from ``train.seed`` and the epoch number, so a run resumed at epoch k sees
the same data order and augmentation as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import functools
import math
import random
import socket
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ldlpose import methods
from ldlpose.config import run_config_from_dict
from ldlpose.errors import LdlposeError
from ldlpose.infra import trace
from ldlpose.metrics import evaluate, metric_key
from ldlpose.models import build_model
from ldlpose.train import accel as fast_paths
from ldlpose.train import data as train_data
from ldlpose.train.checkpoints import checkpoint_dir_name, save_checkpoint
from ldlpose.train.optim import make_optimizer, make_scheduler


class NonFiniteLossError(LdlposeError):
    """The training loss became NaN or infinite."""


class InjectedFailure(RuntimeError):
    """Raised on purpose by a fault-tolerance drill (``fit(..., fail_after_epoch=k)``)."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_frozen_bn(model: nn.Module) -> None:
    """HopeNet's practice: BatchNorm layers keep their running statistics during training."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def unwrap(model: nn.Module) -> nn.Module:
    """The network itself under torch.compile's and DDP's wrappers: its state is what a checkpoint holds."""
    model = getattr(model, "_orig_mod", model)  # torch.compile's OptimizedModule
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _autocast(device: torch.device):
    if device.type == "cuda":  # bf16 needs no loss scaling; CPU stays in fp32 for determinism
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def _all_reduce_mean(value: torch.Tensor, world: int) -> torch.Tensor:
    if world > 1:
        torch.distributed.all_reduce(value)
        value = value / world
    return value


def train_one_epoch(model, method, loader, optimizer, device, *, epoch: int, grad_clip, frozen_bn: bool,
                    world: int, stop=None, trial: str | None = None) -> dict[str, float]:
    """One pass over ``loader``; ``stop()`` (one worker only) is asked before every step."""
    started = time.time()
    model.train()
    if frozen_bn:
        set_frozen_bn(model)
    totals: dict[str, float] = {}
    steps = 0
    for step, loaded in enumerate(loader):
        if stop is not None and stop():
            raise _StopRequested
        if step == 0:
            trace.mark("epoch.first_batch", trial, started, time.time())
        batch = _to_device(loaded, device)
        with _autocast(device):
            outputs = model(batch["image"])
        loss, parts = method.loss(outputs.float(), batch)
        # Every rank must learn of a divergence at the same step, or DDP would hang.
        reduced = _all_reduce_mean(loss.detach().clone(), world)
        if not bool(torch.isfinite(reduced)):
            raise NonFiniteLossError(f"non-finite training loss ({float(reduced)}) at epoch {epoch}, step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        totals["loss"] = totals.get("loss", 0.0) + float(reduced)
        for name, value in parts.items():
            totals[name] = totals.get(name, 0.0) + float(value)
        steps += 1
    return {f"train_{k}": v / max(steps, 1) for k, v in totals.items()}


@torch.no_grad()
def predict(model, method, loader, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoded predictions and ground truth (both (N, 3) degrees) of this worker's share of a set."""
    model.eval()
    preds, trues = [], []
    for loaded in loader:
        batch = _to_device(loaded, device)
        with _autocast(device):
            outputs = model(batch["image"])
        preds.append(method.decode(outputs.float()).cpu())
        trues.append(batch["angles_deg"].cpu())
    if not preds:
        return torch.zeros(0, 3), torch.zeros(0, 3)
    return torch.cat(preds), torch.cat(trues)


def _gather(tensor: torch.Tensor, world: int) -> torch.Tensor:
    if world == 1:
        return tensor
    pieces: list = [None] * world
    torch.distributed.all_gather_object(pieces, tensor)
    return torch.cat(pieces)


def evaluate_sets(model, method, eval_loaders: dict, device, world: int) -> dict[str, float]:
    """``{set}_{metric}`` for the validation split and every benchmark, gathered over workers."""
    results = {}
    for name, loader in eval_loaders.items():
        pred, true = predict(model, method, loader, device)
        pred, true = _gather(pred, world), _gather(true, world)
        for metric, value in evaluate(pred, true).items():
            results[metric_key(name, metric)] = value
    return results


class BestEpoch:
    """The epoch with the lowest selection metric so far, and a CPU copy of its weights.

    The copy lets the loop score the test benchmarks on the selected weights at the end of the run
    without reading a checkpoint back. After a resume the weights of an earlier best epoch are not
    in memory (``state`` is None); the selected checkpoint on storage still holds them.
    """

    def __init__(self, metric: str, history: list[dict]):
        self.metric = metric
        scored: list[tuple[float, int]] = [(h[metric], h["epoch"]) for h in history if metric in h]
        self.value, self.epoch = min(scored) if scored else (math.inf, 0)
        self.state: dict | None = None

    def update(self, metrics: dict, model) -> bool:
        value = float(metrics[self.metric])
        if not value < self.value:
            return False
        self.value, self.epoch = value, int(metrics["epoch"])
        self.state = {k: v.detach().to("cpu", copy=True) for k, v in unwrap(model).state_dict().items()}
        return True

    def adopt(self, epoch: int, model) -> None:
        """After a resume: the restored weights are the best epoch's when that epoch was the latest."""
        if epoch == self.epoch:
            self.state = {k: v.detach().to("cpu", copy=True) for k, v in unwrap(model).state_dict().items()}

    def metrics(self) -> dict:
        return {"selected_epoch": self.epoch, f"selected_{self.metric}": self.value}


def score_selected(model, method, best: BestEpoch, loaders: dict, device, world: int) -> dict[str, float]:
    """``selected_<benchmark>_<metric>``: the test benchmarks scored once, on the selected weights."""
    if best.state is None or not loaders:
        return {}
    current = {k: v.detach().clone() for k, v in unwrap(model).state_dict().items()}
    unwrap(model).load_state_dict(best.state)
    try:
        scores = evaluate_sets(model, method, loaders, device, world)
    finally:
        unwrap(model).load_state_dict(current)
    return {f"selected_{k}": v for k, v in scores.items()}


def _restore(state: dict | None, model, optimizer, scheduler) -> tuple[int, list[dict]]:
    """Load a checkpoint's state if there is one: (first epoch still to run, history so far)."""
    if state is None:
        return 0, []
    unwrap(model).load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return int(state["epoch"]) + 1, list(state.get("history", []))


def train_loop_per_worker(loop_config: dict) -> None:
    """Entry point of each Ray Train worker (``TorchTrainer``). An attempt that Ray Train starts after
    the run's recorded attempts failed the same way ``SAME_FAILURE_CAP`` times in a row returns at
    once, without training: the driver then raises that error (ldlpose.train.failures says why)."""
    from ldlpose.train.failures import repeated_failure
    from ldlpose.train.session import RayTrainSession

    run_dir = loop_config.get("run_dir")
    if run_dir and loop_config["run"]["train"]["max_failures"] < 0 and repeated_failure(run_dir):
        return
    train_loop(RayTrainSession(run_dir), loop_config)


class _StopRequested(Exception):
    """The search stopped this run in the middle of an epoch (one worker only: see ``_stop``)."""


def _setup(run, session):
    """The network (DDP-wrapped on several workers), method, optimizer and schedule, restored from
    the session's checkpoint if it has one; with the first epoch still to run and the history."""
    device = session.device
    if device.type == "cpu":
        # CPU kernels are deterministic for a fixed thread count (the resume test checks it);
        # torch.use_deterministic_algorithms would only cost 5-9 % per step here.
        # Use the CPUs this worker was given (Ray may otherwise leave torch at one thread).
        torch.set_num_threads(max(1, int(session.cpus)))
    accel = fast_paths.resolve(run.train.accel, device)
    fast_paths.set_backend(accel)
    seed_everything(run.train.seed)  # identical initial weights on every rank
    method = methods.create(run.method.name, **run.method.hparams)
    model: nn.Module = build_model(method, run.model.backbone, run.model.weights).to(device)
    model = fast_paths.to_memory_format(model, accel)  # before the optimizer sees the parameters
    optimizer = make_optimizer(model, run.train.optimizer)
    scheduler = make_scheduler(optimizer, run.train.schedule, run.train.epochs)
    start_epoch, history = _restore(session.restore(), model, optimizer, scheduler)
    if session.world > 1:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    model = fast_paths.compiled(model, accel, device)
    return model, method, optimizer, scheduler, start_epoch, history


def train_loop(session, loop_config: dict) -> None:
    """The training loop, the same on every engine (``session``: ldlpose.train.session).

    ``loop_config = {"run": RunConfig as a dict, "fail_after_epoch": k or None, "run_dir": ...}``;
    ``fail_after_epoch`` makes an attempt that started from scratch fail after epoch k, to drill
    resuming from checkpoints.
    """
    run = run_config_from_dict(loop_config["run"])
    rank, world, device = session.rank, session.world, session.device
    trial = trace.trial_of(loop_config.get("run_dir")) if rank == 0 else None
    with trace.phase("loop.setup", trial):  # the network, optimizer and checkpoint
        model, method, optimizer, scheduler, start_epoch, history = _setup(run, session)
    fail_after = loop_config.get("fail_after_epoch") if start_epoch == 0 else None
    with trace.phase("loop.open_data", trial):
        loaders = train_data.build_loaders(run, method, rank=rank, world=world)
    tests = {k: v for k, v in loaders.evaluation.items() if k != "val"}
    best = BestEpoch(run.train.select_metric, history)
    best.adopt(start_epoch, model)  # `start_epoch` is the restored checkpoint's 1-based epoch
    if start_epoch >= run.train.epochs and history:
        # Resumed after its last epoch (stopped between writing it and the search recording it):
        # nothing to train, but the search must still see the run's final metrics.
        session.report(history[-1], None, checkpoint_dir_name(start_epoch))
        return
    # One worker checks for a stop at every step; several agree once per epoch (a collective).
    step_stop = session.stop_requested if world == 1 else None
    for epoch in range(start_epoch, run.train.epochs):
        if _stop(session, world, device):  # the search stopped this trial: train no further
            return
        seed_everything(run.train.seed * 1000 + epoch * 10 + rank)
        loaders.set_epoch(epoch)
        try:
            metrics = _train_and_validate(run, session, model, method, loaders, optimizer, scheduler, epoch,
                                          stop=step_stop, trial=trial)
        except _StopRequested:
            return
        metrics["resumed_from_epoch"] = start_epoch  # 0: this attempt started from scratch
        best.update(metrics, model)
        metrics.update(best.metrics())
        write = None
        if rank == 0:  # the checkpoint holds this epoch's metrics, before the test scores below
            write = functools.partial(_write_checkpoint, model=unwrap(model), optimizer=optimizer,
                                      scheduler=scheduler, epoch=epoch, history=[*history, dict(metrics)],
                                      run=run.to_dict())
        if epoch + 1 == run.train.epochs:  # test benchmarks: once, on the selected epoch's weights
            started = time.perf_counter()
            with trace.phase("end.test", trial):
                metrics.update(score_selected(model, method, best, tests, device, world))
            metrics["test_time_s"] = time.perf_counter() - started
        if _stop(session, world, device):  # stopped while this epoch ran: keep the checkpoints Tune judged
            return
        history.append(metrics)
        if rank == 0:  # not print(): Ray Train patches it into a logger that echoes every line twice
            sys.stdout.write(_progress_line(metrics, run.train.epochs) + "\n")
            sys.stdout.flush()
        with trace.phase("epoch.checkpoint_and_report", trial):
            session.report(metrics, write, checkpoint_dir_name(epoch + 1))
        if fail_after is not None and epoch + 1 >= fail_after:
            raise InjectedFailure(f"injected failure after epoch {epoch + 1} (fault-tolerance drill)")


def _train_and_validate(run, session, model, method, loaders, optimizer, scheduler, epoch: int, *, stop,
                        trial) -> dict:
    """One epoch's training steps and validation (plus the benchmarks, where they run every epoch)."""
    world, device = session.world, session.device
    metrics = {"epoch": epoch + 1, "world_size": world, "device": str(device),
               "worker_node": socket.gethostname(), "node_id": session.node_id}
    started = time.perf_counter()
    with trace.phase("epoch.train", trial):
        metrics.update(train_one_epoch(model, method, loaders.train, optimizer, device, epoch=epoch + 1,
                                       grad_clip=run.train.grad_clip, frozen_bn=run.model.frozen_bn,
                                       world=world, stop=stop, trial=trial))
    metrics["train_time_s"] = time.perf_counter() - started
    metrics["lr"] = optimizer.param_groups[0]["lr"]
    scheduler.step()
    started = time.perf_counter()
    sets = loaders.evaluation if run.data.benchmarks_every_epoch else {"val": loaders.evaluation["val"]}
    with trace.phase("epoch.validation", trial):
        metrics.update(evaluate_sets(model, method, sets, device, world))
    metrics["eval_time_s"] = time.perf_counter() - started
    return metrics


def _write_checkpoint(directory: Path, *, model, optimizer, scheduler, epoch: int, history: list[dict],
                      run: dict) -> None:
    save_checkpoint(directory, model_state=fast_paths.dense(model.state_dict()), optimizer=optimizer,
                    scheduler=scheduler, epoch=epoch, history=history, run=run)


def _stop(session, world: int, device) -> bool:
    """Whether the search asked this run to stop; every rank agrees, or DDP would hang."""
    flag = torch.tensor([1.0 if session.stop_requested() else 0.0], device=device)
    if world > 1:
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
    return bool(flag.item())


def _progress_line(metrics: dict, epochs: int) -> str:
    maes = "  ".join(f"{k[:-4].replace('selected_', 'selected ')} MAE {v:.2f}" for k, v in metrics.items()
                     if k.endswith("_mae") and not k.startswith("selected_val"))
    return f"[ldlpose] epoch {metrics['epoch']}/{epochs}  loss {metrics['train_loss']:.4f}  {maes}"
