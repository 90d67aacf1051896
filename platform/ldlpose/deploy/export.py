"""Deployable files of a model: ONNX or a ``torch.export`` program (``.pt2``), each with its
preprocessing description beside it (``model.onnx`` / ``model.pt2`` -> ``model.json``, the format of
:mod:`ldlpose.inference.onnx`, which ``ldlpose evaluate`` reads for ONNX models).

Both files hold the whole predictor: input float32 (N, 3, S, S) RGB in [0, 1] with a dynamic batch,
output (N, 3) yaw, pitch, roll in degrees (:mod:`ldlpose.geometry`), normalisation and the method's
decoding inside. A ``.pt2`` loads back with ``torch.export.load(path).module()`` and unpickles no
code. The model comes from a registry or logged-model URI (``models:/name@alias``,
``models:/name/version``, ``models:/m-...``) or a checkpoint folder or ``checkpoint.pt``.
"""

from __future__ import annotations

from pathlib import Path

from ldlpose.errors import ConfigError, DataError

__all__ = ["FORMATS", "check_targets", "export_model", "export_pt2", "load_exportable"]

FORMATS = ("onnx", "pt2")


def load_exportable(spec: str, tracking_uri: str | None = None):
    """``(module, info)`` of the model named by ``spec``: the torch predictor and its export info."""
    if spec.startswith(("models:/", "runs:/")):
        from ldlpose.tracking import load_predictor

        predictor, info = load_predictor(spec, tracking_uri)
        return predictor.module, info
    path = Path(spec)
    if path.suffix in (".onnx", ".pt2"):
        raise ConfigError(f"{spec} is an exported model already; export takes a models:/ URI or a checkpoint "
                          "folder or checkpoint.pt")
    if not path.exists():
        raise DataError(f"model {spec!r} is neither a models:/ URI nor an existing checkpoint folder or "
                        "checkpoint.pt")
    from ldlpose.inference.predictor import predictor_from_checkpoint

    return predictor_from_checkpoint(path)


def export_pt2(module, image_size: int, path) -> Path:
    """``module`` as a ``torch.export`` program with a dynamic batch, saved to ``path``."""
    import torch

    from ldlpose.errors import LdlposeError

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Batch 2, not 1: torch.export specialises size-1 dimensions, which would fix the batch size.
    example = torch.rand(2, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))
    try:
        program = torch.export.export(module, (example,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    except Exception as err:  # torch.export raises its own errors for untraceable decoders
        raise LdlposeError(f"cannot export the predictor with torch.export: {type(err).__name__}: {err}") from None
    torch.export.save(program, str(path))
    return path


def check_targets(out, *, force: bool = False) -> None:
    """Refuse to replace an existing ``out`` or its description unless ``force``: an exported model
    may be the one a deployment serves, and its .json may carry a description edited by hand."""
    from ldlpose.inference.onnx import description_path

    existing = [str(p) for p in (Path(out), description_path(out)) if p.exists()]
    if existing and not force:
        raise ConfigError(f"--out {out}: {' and '.join(existing)} exist{'s' if len(existing) == 1 else ''} "
                          "already; pass --force to overwrite, or choose another --out")


def export_model(module, info: dict, out, fmt: str, *, force: bool = False) -> tuple[Path, Path]:
    """Write ``module`` to ``out`` in format ``fmt`` ("onnx" or "pt2") and its description beside
    it; returns both paths. Existing files are replaced only with ``force`` (:func:`check_targets`)."""
    from ldlpose.deploy.onnx import export_onnx, write_description
    from ldlpose.inference.onnx import description_path

    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {list(FORMATS)}, got {fmt!r}")
    out = Path(out)
    if out.suffix != f".{fmt}":
        raise ConfigError(f"--out must end in .{fmt} for --format {fmt}, got {out}")
    check_targets(out, force=force)
    size, method, backbone = int(info["image_size"]), info.get("method"), info.get("backbone")
    if fmt == "onnx":
        export_onnx(module, size, out, method=method, backbone=backbone, crop=info.get("crop"))
    else:
        export_pt2(module, size, out)
        write_description(out, size, method=method, backbone=backbone, crop=info.get("crop"))
    return out, description_path(out)
