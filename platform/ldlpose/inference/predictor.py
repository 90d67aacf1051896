"""Inference: a trained checkpoint as one module from RGB face crops to yaw/pitch/roll in degrees.

:class:`PosePredictor` wraps the network, the input normalisation and the method's decoding, so the
exported graph is self-contained: input float32 ``(N, 3, S, S)`` RGB in [0, 1] (a face crop resized
to the training ``image_size`` S), output float32 ``(N, 3)`` yaw, pitch, roll in degrees in the
convention of :mod:`ldlpose.geometry`. Because decoding happens inside ``forward``, every method's
``decode`` must be traceable by ``torch.export`` (no Python branches on tensor values).

:func:`export_info` is what a loaded model needs besides its graph (image size, normalisation,
angle convention, where it came from); :mod:`ldlpose.tracking` stores it with the MLflow model.
This module never imports mlflow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

# The training pipeline's input normalisation, so that the exported model sees what training saw.
from ldlpose.data.inputs import IMAGENET_MEAN, IMAGENET_STD, to_unit
from ldlpose.errors import DataError, LdlposeError

# The checkpoint format has one home, shared with training (it imports no Ray).
from ldlpose.train.checkpoints import load_checkpoint

__all__ = [
    "EXPORT_FORMAT", "IMAGENET_MEAN", "IMAGENET_STD", "LoadedPredictor", "PosePredictor", "export_info", "load_image",
    "predictor_from_checkpoint", "predictor_from_run", "preprocess", "training_crop",
]

EXPORT_FORMAT = "ldlpose-pose-predictor/1"
ANGLE_CONVENTION = ("yaw, pitch, roll in degrees (ldlpose.geometry): positive yaw turns the face toward "
                    "the image's left, positive pitch tilts it up, positive roll tilts it clockwise in "
                    "the image; R = Rz(roll) Ry(yaw) Rx(pitch)")


class PosePredictor(nn.Module):
    """Images float32 (N, 3, S, S) RGB in [0, 1] -> float32 (N, 3) yaw/pitch/roll in degrees; as a
    :class:`ldlpose.inference.Predictor`, :meth:`predict` takes (N, S, S, 3) uint8 RGB."""

    mean: torch.Tensor  # buffers, registered in __init__
    std: torch.Tensor

    def __init__(self, net: nn.Module, method, image_size: int, info: dict | None = None):
        super().__init__()
        self.net = net
        self.method = method
        self.image_size = int(image_size)
        self.info = dict(info or {})  # export_info of the checkpoint it came from, where known
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1))

    def outputs(self, images: torch.Tensor) -> torch.Tensor:
        """The method's raw outputs (N, num_outputs), e.g. bin logits, before decoding."""
        return self.net((images - self.mean) / self.std)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.method.decode(self.outputs(images)).to(torch.float32)

    @property
    def input_size(self) -> int:
        return self.image_size

    def predict(self, images: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 RGB -> (N, 3) float64 yaw/pitch/roll degrees (:class:`ldlpose.inference.Predictor`)."""
        with torch.no_grad():
            return self(to_unit(images)).double().numpy()


def predictor_from_run(run: dict, model_state: dict) -> PosePredictor:
    """The predictor of a run config (as a dict) and a PoseNet state dict, in eval mode on the CPU."""
    from ldlpose import methods
    from ldlpose.models import build_model

    method = methods.create(run["method"]["name"], **run["method"].get("hparams", {}))
    # Weights come from the state dict; "none" avoids downloading ImageNet weights to overwrite them.
    net = build_model(method, run["model"]["backbone"], "none")
    net.load_state_dict(model_state)
    return PosePredictor(net, method, run["data"]["image_size"]).eval()


def predictor_from_checkpoint(checkpoint_dir) -> tuple[PosePredictor, dict]:
    """``(predictor, info)`` for a checkpoint folder written by the training loop."""
    state = load_checkpoint(checkpoint_dir)
    predictor = predictor_from_run(state["run"], state["model"])
    predictor.info = export_info(state)
    return predictor, predictor.info


def _plain(value):
    """JSON-safe copy of checkpoint values (tensors and numpy scalars become numbers or lists)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (torch.Tensor, np.ndarray, np.generic)):
        return np.asarray(value).tolist()
    return value


def export_info(state: dict) -> dict:
    """What inference needs besides the graph, and where the model came from (JSON-safe)."""
    run = state["run"]
    size = int(run["data"]["image_size"])
    return {
        "format": EXPORT_FORMAT,
        "image_size": size,
        "input": f"float32 (N, 3, {size}, {size}) RGB in [0, 1]: a loosely cropped face resized to {size}x{size}",
        "normalisation": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
                          "applied": "inside the model: (x - mean) / std per channel"},
        "output": "float32 (N, 3): yaw, pitch, roll in degrees",
        "angle_convention": ANGLE_CONVENTION,
        "method": run["method"]["name"],
        "method_hparams": _plain(run["method"].get("hparams", {})),
        "backbone": run["model"]["backbone"],
        "epoch": _plain(state.get("epoch")),
        "metrics": _plain(state.get("metrics", {})),
        "crop": training_crop(run),
    }


def training_crop(run: dict) -> dict | None:
    """The crop recipe of the run's training faces as their manifest records it (``ldlpose predict``
    crops detected faces with it), or None where that folder cannot be read here."""
    from ldlpose.data.shards import read_manifest

    data = run.get("data", {})
    try:
        return read_manifest(Path(data.get("root", ".")) / data.get("train", "")).get("crop")
    except (DataError, OSError, ValueError):
        return None


def load_image(path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB; DataError naming the file if it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except Image.DecompressionBombError as err:  # not an OSError: Pillow refuses it before decoding
        raise DataError(f"cannot read image {path}: too large to decode safely ({err}); shrink it, "
                        "e.g. to a few thousand pixels a side") from None
    except (OSError, UnidentifiedImageError, ValueError) as err:
        raise DataError(f"cannot read image {path}: {err}") from None


def preprocess(images: list[np.ndarray], image_size: int) -> torch.Tensor:
    """(H, W, 3) uint8 RGB face crops -> float32 (N, 3, S, S) in [0, 1].

    As the evaluation pipeline (:mod:`ldlpose.data.augment`) does: the centred square of the
    shorter side, resized bilinearly to S x S.
    """
    from PIL import Image

    batch = np.empty((len(images), image_size, image_size, 3), dtype=np.uint8)
    for i, image in enumerate(images):
        if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
            raise LdlposeError(f"image {i} must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
        height, width = image.shape[:2]
        side = min(height, width)
        x0, y0 = (width - side) / 2, (height - side) / 2
        pil = Image.fromarray(image).resize((image_size, image_size), Image.Resampling.BILINEAR,
                                            box=(x0, y0, x0 + side, y0 + side))
        batch[i] = np.asarray(pil)
    return torch.from_numpy(batch).permute(0, 3, 1, 2).float().div_(255.0).contiguous()


class LoadedPredictor:
    """An exported predictor loaded back (``torch.export`` module) with its info.

    ``predictor(images)`` maps float32 (N, 3, S, S) RGB in [0, 1] to (N, 3) numpy yaw/pitch/roll
    degrees; :meth:`predict` (:class:`ldlpose.inference.Predictor`) takes (N, S, S, 3) uint8 RGB, and
    :meth:`predict_images` (H, W, 3) uint8 RGB face crops of any size."""

    def __init__(self, module, info: dict, batch_size: int = 32):
        self.module = module
        self.info = info
        self.image_size = int(info["image_size"])
        self.batch_size = batch_size

    def __call__(self, images) -> np.ndarray:
        batch = torch.as_tensor(np.asarray(images, dtype=np.float32))
        outputs = []
        with torch.no_grad():
            for start in range(0, batch.shape[0], self.batch_size):
                outputs.append(self.module(batch[start:start + self.batch_size]).numpy())
        return np.concatenate(outputs) if outputs else np.zeros((0, 3), np.float32)

    @property
    def input_size(self) -> int:
        return self.image_size

    def predict(self, images: np.ndarray) -> np.ndarray:
        return np.asarray(self(to_unit(images).numpy()), dtype=np.float64)

    def predict_images(self, images: list[np.ndarray]) -> np.ndarray:
        return self(preprocess(images, self.image_size))
