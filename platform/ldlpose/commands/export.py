"""Export a model to ONNX or a torch.export program (pt2), with its preprocessing description beside it.

MODEL is a registry or logged-model URI (models:/headpose-facegen@champion, models:/headpose-facegen/3,
models:/m-...) or a checkpoint folder (or checkpoint.pt) written by training. Writes OUT (model.onnx
or model.pt2: input float32 (N, 3, S, S) RGB in [0, 1], any batch; output (N, 3) yaw, pitch, roll
in degrees; normalisation and decoding inside) and OUT's .json description beside it, the one
`ldlpose evaluate` reads for ONNX models and `ldlpose predict` takes its face crop recipe from.
--format defaults to OUT's suffix. An existing OUT or .json is replaced only
with --force. ASG models cannot go to ONNX: their decoding needs an SVD,
which ONNX has no operator for (pt2 works).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="models:/ URI, or checkpoint folder or file")
    parser.add_argument("--out", type=Path, required=True, help="the file to write: model.onnx or model.pt2")
    parser.add_argument("--format", choices=("onnx", "pt2"),
                        help="onnx (onnxruntime, TensorRT, ...) or pt2 (torch.export.load); default: OUT's suffix")
    parser.add_argument("--force", action="store_true", help="overwrite OUT and its .json if they exist")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, "
                                               "else sqlite:///mlflow.db in the working directory)")


def run(args: argparse.Namespace) -> int:
    from ldlpose.deploy.export import check_targets, export_model, load_exportable
    from ldlpose.errors import ConfigError

    fmt = args.format or args.out.suffix.lstrip(".")
    if fmt not in ("onnx", "pt2"):
        raise ConfigError(f"--out {args.out}: name a .onnx or .pt2 file, or pass --format")
    check_targets(args.out, force=args.force)  # before loading the model, which may take a while
    module, info = load_exportable(args.model, args.tracking_uri)
    model_file, description = export_model(module, info, args.out, fmt, force=args.force)
    print(f"wrote {model_file} and {description} ({info.get('method')}, {info['image_size']} px, from {args.model})")
    return 0
