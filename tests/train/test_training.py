"""Training runs on both engines: in-process and a real local Ray's TorchTrainer (CPU, random init, 64 px)."""

from __future__ import annotations

import json
import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from conftest import tiny_run

from ldlpose import methods
from ldlpose.errors import LdlposeError
from ldlpose.infra.files import sha256_file
from ldlpose.train.checkpoints import load_checkpoint
from ldlpose.train.run import fit

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("method", methods.available())
def test_every_method_trains_one_epoch(method, synth_root, ray_local, tmp_path):
    run = tiny_run(synth_root, method__name=method, data__max_train_samples=32)
    outcome = fit(run, storage_path=str(tmp_path), name=f"m-{method}")
    assert outcome.metrics["epoch"] == 1
    for key in ("train_loss", "val_mae", "selected_synth_mae", "selected_synth_maev", "selected_synth_geodesic",
                "val_mae_yaw", "selected_val_mae"):
        assert math.isfinite(outcome.metrics[key]), key
    assert outcome.metrics["selected_epoch"] == 1
    assert "synth_mae" not in outcome.metrics  # no per-epoch test curve unless asked for
    state = load_checkpoint(outcome.checkpoint_path)  # weights_only=True: plain tensors only
    assert state["epoch"] == 0 and state["run"]["method"]["name"] == method
    assert set(state) >= {"model", "optimizer", "scheduler", "history"}
    assert "rng" not in state  # the loop reseeds every epoch; nothing restores an RNG state


def test_two_ddp_workers_make_the_training_loss_fall(synth_root, ray_local, tmp_path):
    run = tiny_run(synth_root, train__epochs=4, data__benchmarks_every_epoch=True,
                   train__optimizer={"name": "adam", "lr": 0.002}, train__schedule={"name": "none"},
                   resources={"workers": 2, "cpus_per_worker": 1},
                   data__augment={"flip": 0.0, "color": 0.0, "blur": 0.0, "shift": 0.0, "scale_min": 1.0})
    outcome = fit(run, storage_path=str(tmp_path), name="ddp")
    history = outcome.history
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert all(h["world_size"] == 2 for h in history)
    losses = [h["train_loss"] for h in history]
    assert losses[-1] < 0.8 * losses[0], losses
    assert all("synth_mae" in h for h in history)  # the per-epoch test curve, on request
    # The selected epoch is the best validation epoch, and the test score is that epoch's weights'.
    best = min(history, key=lambda h: (h["val_mae"], h["epoch"]))
    assert outcome.metrics["selected_epoch"] == best["epoch"] == outcome.selected.epoch
    assert outcome.metrics["selected_synth_mae"] == pytest.approx(best["synth_mae"], abs=1e-4)


def _final(outcome):
    return {k: v for k, v in outcome.metrics.items() if k.endswith(("_mae", "_maev", "_geodesic", "train_loss"))}


ENGINES = ["in_process", "ray_train"]


def test_the_engines_are_chosen_by_resources_and_refuse_what_they_cannot_run(synth_root):
    from ldlpose.errors import ConfigError
    from ldlpose.train.run import engine

    assert engine(tiny_run(synth_root)) == "in_process"  # one CPU worker: no Ray Train actors
    assert engine(tiny_run(synth_root, resources={"workers": 2})) == "ray_train"
    assert engine(tiny_run(synth_root, resources={"workers": 1, "engine": "ray_train"})) == "ray_train"
    with pytest.raises(ConfigError, match=r"resources.engine: in_process trains one CPU worker.*workers=2"):
        tiny_run(synth_root, resources={"workers": 2, "engine": "in_process"})


def test_both_engines_train_the_same_run_to_the_same_numbers(synth_root, ray_local, tmp_path):
    """The same per-worker loop on either engine: identical metrics, selection and history."""
    outcomes = {engine: fit(tiny_run(synth_root, train__epochs=2, data__max_train_samples=32,
                                     resources={"workers": 1, "engine": engine}),
                            storage_path=str(tmp_path), name=engine) for engine in ENGINES}
    local, ray_train = outcomes["in_process"], outcomes["ray_train"]
    assert [h["epoch"] for h in local.history] == [h["epoch"] for h in ray_train.history] == [1, 2]
    for key, value in _final(ray_train).items():
        assert local.metrics[key] == pytest.approx(value, abs=1e-3), key
    assert local.selected.epoch == ray_train.selected.epoch
    assert local.metrics["node_id"] == ray_train.metrics["node_id"]  # the Ray node, as Ray Train records it


@pytest.mark.parametrize("engine", ENGINES)
def test_a_stopped_run_continues_from_its_checkpoint(engine, synth_root, ray_local, tmp_path):
    run = tiny_run(synth_root, train__epochs=2, resources={"workers": 1, "engine": engine})
    straight = fit(run, storage_path=str(tmp_path), name="straight")

    with pytest.raises(LdlposeError, match="injected failure after epoch 1"):
        fit(run, storage_path=str(tmp_path), name="stopped", fail_after_epoch=1)
    resumed = fit(run, storage_path=str(tmp_path), name="stopped")  # same name: picks up the checkpoint
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    assert resumed.history[-1]["resumed_from_epoch"] == 1  # epoch 2 ran in the second attempt only
    # Deterministic on CPU: data order and augmentation derive from (seed, epoch), so resuming
    # reproduces the uninterrupted run. Tolerance: 1e-3 degrees (float summation order).
    for key, value in _final(straight).items():
        assert resumed.metrics[key] == pytest.approx(value, abs=1e-3), key


@pytest.mark.parametrize("engine", ENGINES)
def test_a_worker_failure_resumes_automatically(engine, synth_root, ray_local, tmp_path):
    run = tiny_run(synth_root, train__epochs=2, train__max_failures=1, resources={"workers": 1, "engine": engine})
    outcome = fit(run, storage_path=str(tmp_path), name="drill", fail_after_epoch=1)
    assert [h["epoch"] for h in outcome.history] == [1, 2]
    assert outcome.history[-1]["resumed_from_epoch"] == 1


@pytest.mark.parametrize("engine", ENGINES)
def test_a_non_finite_loss_ends_the_run_with_epoch_and_step(engine, synth_root, ray_local, tmp_path):
    # A corrupt copy of the training data whose labels are NaN makes the loss NaN at the first step.
    import shutil

    bad = tmp_path / "data"
    shutil.copytree(synth_root / "synthhead", bad / "synthhead")
    for shard in (bad / "synthhead" / "train").glob("part-*.parquet"):
        table = pq.read_table(shard)
        nan = torch.full((table.num_rows,), float("nan")).numpy()
        table = table.set_column(table.schema.get_field_index("yaw"), "yaw",
                                 pa.array(nan, type=table.schema.field("yaw").type))
        pq.write_table(table, shard)
    # Re-sign the copy: the manifest's shard hashes would refuse a modified shard before any training.
    manifest_file = bad / "synthhead" / "train" / "_manifest.json"
    manifest = json.loads(manifest_file.read_text())
    for entry in manifest["shards"]:
        entry["sha256"] = sha256_file(bad / "synthhead" / "train" / entry["file"])
    manifest_file.write_text(json.dumps(manifest))
    run = tiny_run(bad, train__epochs=1, resources={"workers": 1, "engine": engine})
    with pytest.raises(LdlposeError, match=r"non-finite training loss \(nan\) at epoch 1, step 0"):
        fit(run, storage_path=str(tmp_path), name="nan")
    # The launching process is unharmed and can train again.
    assert fit(tiny_run(synth_root, data__max_train_samples=16), storage_path=str(tmp_path), name="after").metrics
