"""One evaluation path, one predictor interface (issue 21 item 5).

The test scores a run logs and ``ldlpose evaluate``'s scores of its checkpoint agree on the same
rows: both read a benchmark through ldlpose.data.inputs. The benchmark here is stored as JPEG at
96 x 80 px and read at 32 px, where a training input would decode the JPEG at reduced scale (draft):
before the one path, the two scores of one checkpoint differed by 0.01-0.02 degrees MAE there.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from ldlpose.config import run_config_from_dict
from ldlpose.data import benchmarks
from ldlpose.data.inputs import benchmark_batches, normalise, to_unit
from ldlpose.data.records import ImageOptions, make_row
from ldlpose.data.shards import ShardWriter
from ldlpose.evaluation.harness import Model, evaluate, load_model
from ldlpose.inference import Predictor
from ldlpose.train.data import benchmark_loaders
from ldlpose.train.evaluation import score_checkpoint

SIZE = 32


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A data root whose ``synthhead/test`` (the synth benchmark) holds 40 noisy 96 x 80 JPEG faces."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    options = ImageOptions(format="jpeg")
    writer = ShardWriter(root / "synthhead/test", dataset="synthhead-test", image_format="jpeg")
    for i in range(40):
        pixels = rng.integers(0, 256, (80, 96, 3), dtype=np.uint8)
        angles = tuple(float(a) for a in rng.uniform(-60, 60, 3))
        writer.add(make_row(Image.fromarray(pixels), angles, subject=f"s{i % 4}", source="fixture", key=f"k{i}",
                            box=(0, 0, 96, 80), options=options))
    writer.close(source={}, crop={"name": benchmarks.get("synth").protocol.crop}, image=options.as_dict(),
                 subject_rule="test")
    return root


@pytest.fixture(scope="module")
def checkpoint(root, tmp_path_factory) -> Path:
    """A checkpoint as training writes it (random ResNet-18, 32 px; its outputs follow the pixels more
    than a random ShuffleNet's, whose near-constant answers would hide a difference), its run scoring synth."""
    from ldlpose import methods
    from ldlpose.models import build_model

    torch.manual_seed(0)
    run = run_config_from_dict({"name": "one-path", "method": {"name": "gldl"},
                                "model": {"backbone": "resnet18", "weights": "none"},
                                "data": {"root": str(root), "benchmarks": ["synth"], "image_size": SIZE}})
    net = build_model(methods.create("gldl"), "resnet18", "none")
    directory = tmp_path_factory.mktemp("ckpt")
    torch.save({"model": net.state_dict(), "run": run.to_dict(), "metrics": {}, "epoch": 0},
               directory / "checkpoint.pt")
    return directory


def test_the_loop_reads_a_benchmark_as_ldlpose_evaluate_feeds_a_predictor(root, checkpoint):
    run = run_config_from_dict(torch.load(checkpoint / "checkpoint.pt", weights_only=True)["run"])
    loader = benchmark_loaders(run)["synth"]
    bench = benchmarks.get("synth")
    folder = bench.resolve(root)
    rows = bench.row_indices(folder)
    reference = torch.cat([normalise(to_unit(images))
                           for images, _ in benchmark_batches(folder, rows, bench.protocol.input, SIZE)])
    loaded = torch.cat([batch["image"] for batch in loader])
    assert torch.equal(loaded, reference)  # the same tensors, bit for bit: the same rows, crop and arithmetic


def test_a_checkpoints_logged_test_scores_are_ldlpose_evaluates(root, checkpoint):
    from ldlpose import methods
    from ldlpose.models import build_model
    from ldlpose.train.loop import predict

    logged = score_checkpoint(checkpoint)  # how the loop and the search driver score the selected weights
    result = evaluate(load_model(str(checkpoint)), "synth", root)
    assert result["rows"] == 40
    # Row by row, the loop's predictions are the predictor's.
    state = torch.load(checkpoint / "checkpoint.pt", weights_only=True)
    method = methods.create("gldl")
    net = build_model(method, "resnet18", "none")
    net.load_state_dict(state["model"])
    pred, _ = predict(net, method, benchmark_loaders(run_config_from_dict(state["run"]))["synth"], torch.device("cpu"))
    assert np.ptp(result["pred_deg"], axis=0).min() > 0.3  # the answers vary with the input
    np.testing.assert_allclose(pred.numpy(), result["pred_deg"], atol=1e-4)
    for metric, value in result["metrics"].items():
        assert logged[f"selected_synth_{metric}"] == pytest.approx(value, abs=1e-4), metric


@pytest.mark.slow  # exports the model twice (20 s here)
def test_every_kind_of_model_is_one_predictor_and_they_agree(checkpoint, tmp_path):
    from ldlpose.deploy.export import export_pt2
    from ldlpose.deploy.onnx import export_onnx
    from ldlpose.inference.onnx import OnnxPredictor
    from ldlpose.inference.predictor import LoadedPredictor, predictor_from_checkpoint

    module, info = predictor_from_checkpoint(checkpoint)
    program = torch.export.load(str(export_pt2(module, SIZE, tmp_path / "m.pt2"))).module()
    predictors = {"checkpoint": module, "loaded": LoadedPredictor(program, info),
                  "onnx": OnnxPredictor(export_onnx(module, SIZE, tmp_path / "m.onnx", method="gldl")),
                  "harness": load_model(str(checkpoint))}
    assert isinstance(predictors["harness"], Model)
    images = np.random.default_rng(1).integers(0, 256, (5, SIZE, SIZE, 3), dtype=np.uint8)
    expected = module.predict(images)
    assert expected.shape == (5, 3) and expected.dtype == np.float64
    for kind, predictor in predictors.items():
        assert isinstance(predictor, Predictor), kind
        assert predictor.input_size == SIZE and predictor.info["method"] == "gldl", kind
        np.testing.assert_allclose(predictor.predict(images), expected, atol=1e-3, err_msg=kind)
        json.dumps(predictor.info)  # JSON-safe, as the interface says


@pytest.mark.slow
def test_ldlpose_trains_logged_test_mae_is_ldlpose_evaluates(synth_root, ray_local, mlflow_server, tmp_path,
                                                             capsys):
    """The acceptance test: a real ``ldlpose train`` (1 epoch, tracked), then ``ldlpose evaluate`` on its
    checkpoint; synth is stored at 64 px and read at 32 px, where the old training path drafted."""
    from mlflow import MlflowClient

    from ldlpose.cli import main

    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({
        "name": "logged-vs-evaluated", "method": {"name": "gldl"},
        "model": {"backbone": "resnet18", "weights": "none"},
        "data": {"root": str(synth_root), "train": "synthhead/train", "val": "synthhead/val",
                 "benchmarks": ["synth"], "image_size": SIZE, "max_train_samples": 16},
        "train": {"epochs": 1, "batch_size": 8, "max_failures": 0}}))
    assert main(["train", str(config), "--storage", str(tmp_path / "r"), "--tracking-uri", mlflow_server]) == 0
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("logged-vs-evaluated")
    (run,) = client.search_runs([experiment.experiment_id], "tags.`ldlpose.role` = 'train'")
    (checkpoint,) = {p.parent for p in (tmp_path / "r").rglob("checkpoint.pt")}
    capsys.readouterr()
    assert main(["evaluate", str(checkpoint), "--benchmark", "synth", "--data-root", str(synth_root), "--no-log",
                 "--out", str(tmp_path / "eval"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)["results"][0]
    assert result["rows"] == 32
    for metric in ("mae", "maev", "geodesic"):
        assert run.data.metrics[f"selected_synth_{metric}"] == pytest.approx(result["metrics"][metric], abs=1e-4)
