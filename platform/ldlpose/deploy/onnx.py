"""Exporting an ldlpose predictor to ONNX, with the preprocessing description that travels beside it.

The description's format, and running a described model: :mod:`ldlpose.inference.onnx`.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from ldlpose.errors import LdlposeError
from ldlpose.inference.onnx import Preprocessing, description_path

__all__ = ["OPSET", "export_onnx", "write_description"]

OPSET = 18  # the torch.export-based exporter's default; onnxruntime >= 1.14 runs it


def export_onnx(module, image_size: int, path, *, method: str | None = None, backbone: str | None = None,
                crop: dict | None = None) -> Path:
    """Write ``module`` (an ldlpose predictor: (N, 3, S, S) RGB in [0, 1] -> (N, 3) yaw/pitch/roll
    degrees, such as :class:`ldlpose.inference.predictor.PosePredictor` or a loaded registry model) to ``path``
    as ONNX with a dynamic batch, and its preprocessing description next to it; returns ``path``."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Batch 2, not 1: torch.export specialises size-1 dimensions, which would fix the batch size.
    example = torch.rand(2, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))
    try:
        module.eval()
    except NotImplementedError:
        pass  # a loaded torch.export graph: exported in eval mode already, and it cannot switch
    try:
        with warnings.catch_warnings():  # the loaded graph above reports training mode; it is not
            warnings.filterwarnings("ignore", message="Exporting a model while it is in training mode")
            torch.onnx.export(module, (example,), str(path), dynamo=True, input_names=["images"],
                              output_names=["angles_deg"], dynamic_shapes=({0: torch.export.Dim("batch")},),
                              opset_version=OPSET, external_data=False, verbose=False)
    except Exception as err:  # torch.onnx raises its own conversion errors
        hint = (" ASG decodes through an SVD (nearest rotation), which ONNX has no operator for."
                if method == "asg" else "")
        raise LdlposeError(f"cannot export the {method or 'given'} predictor to ONNX: {type(err).__name__}."
                           f"{hint}") from None
    write_description(path, image_size, method=method, backbone=backbone, crop=crop,
                      names=("images", "angles_deg"))
    return path


def write_description(model_path, image_size: int, *, method: str | None = None, backbone: str | None = None,
                      crop: dict | None = None, names: tuple[str | None, str | None] = (None, None)) -> Path:
    """The description of an exported ldlpose predictor (RGB in [0, 1], NCHW, degrees) next to
    ``model_path``; ``names``: its input and output names, where the format has them."""
    about = tuple((k, v) for k, v in (("method", method), ("backbone", backbone)) if v)
    description = Preprocessing(size=int(image_size), input_name=names[0], output_name=names[1], about=about,
                                crop=crop)
    target = description_path(model_path)
    target.write_text(json.dumps(description.as_dict(), indent=2) + "\n")
    return target
