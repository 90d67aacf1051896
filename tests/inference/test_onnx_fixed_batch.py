"""ONNX models with a fixed batch size (input 1x3x64x64, as many published ones are) are evaluated and
predicted in batches of the model's size (they crashed with onnxruntime's INVALID_ARGUMENT once)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from PIL import Image

from ldlpose.cli import main
from ldlpose.deploy.onnx import write_description
from ldlpose.inference.onnx import OnnxPredictor

SIZE = 64


class Tiny(torch.nn.Module):
    """A head-pose model in miniature: (N, 3, 64, 64) in [0, 1] -> (N, 3) degrees."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3))) * 30


def fixed_batch_onnx(path: Path, batch: int) -> tuple[Path, Tiny]:
    torch.manual_seed(0)
    model = Tiny().eval()
    with warnings.catch_warnings():  # the TorchScript exporter keeps every dimension static, as wanted here
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.rand(batch, 3, SIZE, SIZE),), str(path), dynamo=False,
                          input_names=["images"], output_names=["angles_deg"])
    write_description(path, SIZE, names=("images", "angles_deg"))
    return path, model


def test_a_fixed_batch_model_runs_any_number_of_images_in_its_batches(tmp_path):
    path, model = fixed_batch_onnx(tmp_path / "fixed3.onnx", batch=3)
    assert onnxruntime.InferenceSession(str(path)).get_inputs()[0].shape == [3, 3, SIZE, SIZE]
    images = np.random.default_rng(0).integers(0, 256, (7, SIZE, SIZE, 3), dtype=np.uint8)  # 3 + 3 + 1
    predictor = OnnxPredictor(path)
    assert predictor.batch_size == 3
    got = predictor.predict(images)
    with torch.no_grad():
        want = model(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255).numpy()
    assert got.shape == (7, 3)
    np.testing.assert_allclose(got, want, atol=1e-3)


def test_evaluate_and_predict_a_batch_of_one_model(synth_root, tmp_path, capsys):
    path, _ = fixed_batch_onnx(tmp_path / "fixed1.onnx", batch=1)
    capsys.readouterr()
    assert main(["evaluate", str(path), "--benchmark", "synth", "--data-root", str(synth_root), "--no-log",
                 "--out", str(tmp_path / "eval"), "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)["results"]
    assert result["rows"] == 32  # every test row, one batch of 1 at a time
    assert all(np.isfinite(v) for v in result["metrics"].values())
    photos = []
    for i, colour in enumerate([(120, 100, 90), (30, 60, 200)]):
        photos.append(tmp_path / f"p{i}.png")
        Image.new("RGB", (80, 80), colour).save(photos[-1])
    assert main(["predict", *map(str, photos), "--model", str(path), "--no-detect", "--json"]) == 0
    faces = [r["faces"] for r in json.loads(capsys.readouterr().out)["predictions"]]
    assert [len(f) for f in faces] == [1, 1]
