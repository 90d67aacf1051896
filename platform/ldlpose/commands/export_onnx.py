"""Export an ldlpose model to ONNX, with the preprocessing description `ldlpose evaluate` reads.

MODEL is a registry or logged-model URI (models:/...) or a checkpoint folder (or checkpoint.pt).
Writes OUT (e.g. model.onnx: input float32 (N, 3, S, S) RGB in [0, 1], output (N, 3) yaw, pitch,
roll degrees, normalisation and decoding inside the graph) and OUT's .json description beside it.
ASG models cannot be exported: their decoding needs an SVD, which ONNX has no operator for.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="models:/ URI, or checkpoint folder or file")
    parser.add_argument("--out", type=Path, required=True, help="the .onnx file to write")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, "
                                               "else sqlite:///mlflow.db in the working directory)")


def run(args: argparse.Namespace) -> int:
    from ldlpose.errors import ConfigError
    from ldlpose.onnx_export import description_path, export_onnx

    if args.out.suffix != ".onnx":
        raise ConfigError(f"--out must name a .onnx file, got {args.out}")
    module, info = _load(args.model, args.tracking_uri)
    export_onnx(module, int(info["image_size"]), args.out, method=info.get("method"), backbone=info.get("backbone"))
    print(f"wrote {args.out} and {description_path(args.out)} ({info.get('method')}, {info['image_size']} px)")
    return 0


def _load(model: str, tracking_uri: str | None):
    if model.startswith("models:/"):
        from ldlpose.tracking import load_predictor

        predictor, info = load_predictor(model, tracking_uri)
        return predictor.module, info
    from ldlpose.export import predictor_from_checkpoint

    return predictor_from_checkpoint(model)
