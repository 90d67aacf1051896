"""Checkpoint retention and selection: the best validation epoch is kept and chosen, whatever came after."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch
from conftest import tiny_run

from ldlpose import methods
from ldlpose.models import build_model
from ldlpose.train.checkpoints import (
    CHECKPOINT_FILE,
    METRICS_FILE,
    checkpoint_dir_name,
    load_checkpoint,
    resume_state,
    retention,
    save_checkpoint,
    select_checkpoint,
)
from ldlpose.train.loop import BestEpoch, evaluate_sets, score_selected

# A validation curve whose best epoch (2) is provably not among the last two (4, 5).
VAL_CURVE = [9.0, 4.0, 8.0, 7.0, 6.0]


def _scripted_loop(config: dict) -> None:
    """Reports the scripted validation curve with real ldlpose checkpoints (weights marked by epoch)."""
    import ray.train

    for epoch, val in enumerate(config["curve"], start=1):
        net = torch.nn.Linear(2, 1)
        torch.nn.init.constant_(net.weight, float(epoch))
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        sched = torch.optim.lr_scheduler.StepLR(opt, 1)
        metrics = {"epoch": epoch, "val_mae": val}
        with tempfile.TemporaryDirectory() as tmp:
            save_checkpoint(Path(tmp), model_state=net.state_dict(), optimizer=opt, scheduler=sched,
                            epoch=epoch - 1, history=[metrics], run={})
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp),
                             checkpoint_dir_name=checkpoint_dir_name(epoch))


@pytest.mark.slow
def test_ray_keeps_the_best_checkpoint_and_the_latest_and_the_best_is_selected(ray_local, tmp_path):
    import sys

    import ray.cloudpickle
    import ray.train
    from ray.train.torch import TorchTrainer

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
    trainer = TorchTrainer(_scripted_loop, train_loop_config={"curve": VAL_CURVE},
                           scaling_config=ray.train.ScalingConfig(num_workers=1),
                           run_config=ray.train.RunConfig(name="curve", storage_path=str(tmp_path),
                                                          checkpoint_config=retention("val_mae")))
    result = trainer.fit()
    run_dir = tmp_path / "curve"
    kept = sorted(p.name for p in run_dir.glob("checkpoint_*") if p.is_dir())
    assert kept == [checkpoint_dir_name(2), checkpoint_dir_name(5)]  # the best, and the latest to resume from
    assert Path(result.checkpoint.path).name == checkpoint_dir_name(5)
    selected = select_checkpoint(run_dir, "val_mae")
    assert selected.epoch == 2 and selected.metrics["val_mae"] == 4.0
    assert float(load_checkpoint(selected.path)["model"]["weight"].flatten()[0]) == 2.0
    # What Tune saw last bounds the choice: a checkpoint after it may be half-written.
    assert select_checkpoint(run_dir, "val_mae", last_epoch=1) is None


def test_an_in_process_run_keeps_the_same_checkpoints_as_ray_train(tmp_path):
    """LocalSession applies Ray Train's retention rule itself: the best epoch and the latest."""
    from ldlpose.train.session import LocalSession

    published = []
    session = LocalSession(str(tmp_path / "curve"), "val_mae", published.append)
    for epoch, val in enumerate(VAL_CURVE, start=1):
        net = torch.nn.Linear(2, 1)
        torch.nn.init.constant_(net.weight, float(epoch))
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        sched = torch.optim.lr_scheduler.StepLR(opt, 1)
        metrics = {"epoch": epoch, "val_mae": val}

        def write(folder, net=net, opt=opt, sched=sched, epoch=epoch, metrics=metrics):
            save_checkpoint(folder, model_state=net.state_dict(), optimizer=opt, scheduler=sched,
                            epoch=epoch - 1, history=[metrics], run={})

        session.report(metrics, write, checkpoint_dir_name(epoch))
    run_dir = tmp_path / "curve"
    assert sorted(p.name for p in run_dir.iterdir()) == [checkpoint_dir_name(2), checkpoint_dir_name(5)]
    assert [m["epoch"] for m in published] == [1, 2, 3, 4, 5]
    assert session.restore()["epoch"] == 4  # resumes after epoch 5 (0-based 4)
    selected = select_checkpoint(run_dir, "val_mae")
    assert selected.epoch == 2 and float(load_checkpoint(selected.path)["model"]["weight"].flatten()[0]) == 2.0


def test_selection_skips_unreadable_checkpoints_and_prefers_the_earlier_of_a_tie(tmp_path):
    net = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1)
    for epoch, val in ((1, 5.0), (2, 3.0), (3, 3.0)):
        folder = tmp_path / checkpoint_dir_name(epoch)
        folder.mkdir()
        save_checkpoint(folder, model_state=net.state_dict(), optimizer=opt, scheduler=sched, epoch=epoch - 1,
                        history=[{"epoch": epoch, "val_mae": val}], run={})
    broken = tmp_path / checkpoint_dir_name(4)
    broken.mkdir()
    (broken / CHECKPOINT_FILE).write_bytes(b"half-written")
    (broken / METRICS_FILE).write_text('{"epoch": 4, "val_mae"')  # cut off while being written
    assert select_checkpoint(tmp_path, "val_mae").epoch == 2
    assert select_checkpoint(tmp_path, "val_maev") is None  # never reported


def test_test_benchmarks_are_scored_on_the_selected_weights_not_the_latest(synth_root):
    from ldlpose.train.data import build_loaders

    run = tiny_run(synth_root)
    method = methods.create("gldl")
    torch.manual_seed(0)
    model = build_model(method, "resnet18", "none")
    loaders = build_loaders(run, method)
    tests = {"synth": loaders.evaluation["synth"]}
    best = BestEpoch("val_mae", [])
    assert best.update({"epoch": 1, "val_mae": 10.0}, model)
    at_best = evaluate_sets(model, method, tests, torch.device("cpu"), 1)
    with torch.no_grad():  # epoch 2: other weights, a worse validation score
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    latest = {k: v.clone() for k, v in model.state_dict().items()}
    assert not best.update({"epoch": 2, "val_mae": 12.0}, model)
    assert best.metrics() == {"selected_epoch": 1, "selected_val_mae": 10.0}
    scores = score_selected(model, method, best, tests, torch.device("cpu"), 1)
    assert scores["selected_synth_mae"] == pytest.approx(at_best["synth_mae"], abs=1e-6)
    latest_mae = evaluate_sets(model, method, tests, torch.device("cpu"), 1)["synth_mae"]
    assert scores["selected_synth_mae"] != pytest.approx(latest_mae, abs=1e-3)
    assert all(torch.equal(v, latest[k]) for k, v in model.state_dict().items())  # the latest weights are back


def test_after_a_resume_past_the_best_epoch_nothing_is_claimed_from_memory():
    model = torch.nn.Linear(2, 1)
    best = BestEpoch("val_mae", [{"epoch": 1, "val_mae": 3.0}, {"epoch": 2, "val_mae": 5.0}])
    best.adopt(2, model)  # the restored checkpoint is epoch 2, the best was epoch 1
    assert best.epoch == 1 and best.state is None
    assert score_selected(model, None, best, {"synth": []}, torch.device("cpu"), 1) == {}
    best.adopt(1, model)
    assert best.state is not None


def _write_epoch(run_dir: Path, epoch: int) -> Path:
    """A real checkpoint of 1-based ``epoch`` in ``run_dir``, its weights set to the epoch."""
    net = torch.nn.Linear(2, 1)
    torch.nn.init.constant_(net.weight, float(epoch))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    folder = run_dir / checkpoint_dir_name(epoch)
    folder.mkdir(parents=True)
    save_checkpoint(folder, model_state=net.state_dict(), optimizer=opt,
                    scheduler=torch.optim.lr_scheduler.StepLR(opt, 1), epoch=epoch - 1,
                    history=[{"epoch": e, "val_mae": 10.0 - e} for e in range(1, epoch + 1)], run={})
    return folder


def test_a_restart_continues_from_the_newest_complete_checkpoint_on_storage(tmp_path):
    """Ray Train hands back epoch 1 (the last report its controller received), but epoch 2 reached
    storage before the node died: the run continues after epoch 2, not after epoch 1."""
    first = _write_epoch(tmp_path, 1)
    _write_epoch(tmp_path, 2)
    registered = load_checkpoint(first)
    state = resume_state(registered, tmp_path)
    assert state["epoch"] == 1 and state["model"]["weight"].flatten().tolist() == [2.0, 2.0]
    assert len(state["history"]) == 2
    # Ray already has the newest epoch, or there is no folder to look in: Ray's checkpoint as it is.
    assert resume_state(load_checkpoint(tmp_path / checkpoint_dir_name(2)), tmp_path)["epoch"] == 1
    assert resume_state(registered, None) is registered
    # Nothing registered (a first attempt that died before its first report reached Ray): storage.
    assert resume_state(None, tmp_path)["epoch"] == 1


def test_a_newer_checkpoint_cut_off_mid_upload_is_passed_over(tmp_path):
    """Epoch 3's upload was cut off when the node died (metrics there, model file truncated):
    the run continues from epoch 2, the newest one that loads, not from Ray's epoch 1."""
    first = _write_epoch(tmp_path, 1)
    _write_epoch(tmp_path, 2)
    third = _write_epoch(tmp_path, 3)
    model_file = third / CHECKPOINT_FILE
    model_file.write_bytes(model_file.read_bytes()[:100])
    assert (third / METRICS_FILE).is_file()
    state = resume_state(load_checkpoint(first), tmp_path)
    assert state["epoch"] == 1 and state["model"]["weight"].flatten().tolist() == [2.0, 2.0]
