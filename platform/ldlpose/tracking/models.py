"""Logging checkpoints as MLflow ``pt2`` models and loading them back (:func:`load_predictor`)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ldlpose.infra.environment import temporarily
from ldlpose.tracking._common import (
    MODEL_INFO_FILE,
    TAG_SEARCH,
    TAG_TRIAL,
    ModelLoadError,
    _global_uri,
    _require_existing_store,
    _short,
    redact,
    resolve_tracking_uri,
)

if TYPE_CHECKING:  # torch stays out of `import ldlpose.tracking`
    from ldlpose.inference import predictor as export


def warm_up_export() -> None:
    """Load torch.export's tracing and saving (a one-layer export) and MLflow's PyTorch flavour: the
    export worker's warm-up."""
    try:
        import io

        import mlflow.pytorch  # noqa: F401
        import torch

        import ldlpose.inference.predictor  # noqa: F401

        program = torch.export.export(torch.nn.Linear(2, 2), (torch.zeros(2, 2),))
        torch.export.save(program, io.BytesIO())
    except Exception:  # the real export says what is wrong, with the trial's model
        pass


def _log_predictor(predictor, info: dict, *, run_id: str, experiment_id: str, uri: str,
                   tags: dict | None = None) -> str:
    import mlflow
    import mlflow.pytorch
    import torch
    from mlflow.models import infer_signature

    size = info["image_size"]
    # Batch 2, not 1: torch.export specialises size-1 dimensions, which would fix the batch size.
    example = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0)).numpy()
    with torch.no_grad():
        output = predictor(torch.from_numpy(example)).numpy()
    signature = infer_signature(example, output)  # TensorSpec (-1, 3, S, S) -> (-1, 3)
    with tempfile.TemporaryDirectory() as tmp:
        info_file = Path(tmp) / MODEL_INFO_FILE
        info_file.write_text(json.dumps(info, indent=2, default=str) + "\n")
        # log_model files the LoggedModel under the process's current experiment: make it the run's.
        with _global_uri(uri), temporarily(MLFLOW_EXPERIMENT_ID=experiment_id):
            logged = mlflow.pytorch.log_model(
                predictor, name="model", run_id=run_id, serialization_format="pt2",
                input_example=example, signature=signature, metadata={"ldlpose": info},
                extra_files=[str(info_file)],
                # Given explicitly: inferring them would load the model again in a subprocess.
                pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", "numpy"],
                # MLflow would load the saved program back to run the example (3-4 s per trial on
                # a CPU); ldlpose's own load path is tested instead (tests/tracking).
                validate_serving_input=False,
                tags={TAG_SEARCH: info["search_id"], TAG_TRIAL: info["trial_id"], **(tags or {})})
    return f"models:/{logged.model_id}"


def load_predictor(model_uri: str, tracking_uri: str | None = None) -> tuple[export.LoadedPredictor, dict]:
    """``(predictor, info)`` of a logged or registered model, e.g. ``models:/headpose-facegen@champion``.

    ``predictor(images)`` maps float32 (N, 3, S, S) RGB in [0, 1] to (N, 3) yaw/pitch/roll degrees;
    ``predictor.predict_images`` takes (H, W, 3) uint8 face crops. ``info`` is what
    :func:`ldlpose.inference.predictor.export_info` recorded (image size, normalisation, method, ...).
    """
    import mlflow.artifacts
    import mlflow.pytorch

    from ldlpose.inference.predictor import LoadedPredictor

    uri = resolve_tracking_uri(tracking_uri)
    _require_existing_store(uri)
    progress = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # quiet unless asked
    # Closed by default: ldlpose logs models as pickle-free torch.export archives (pt2), so a model that
    # needs unpickling is not one of ours and would run its code on load. No MLflow release refuses
    # pickle by default yet (3.18.0 still allows it); ldlpose asks for the refusal unless the user set it.
    pickle = os.environ.get("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    with tempfile.TemporaryDirectory() as tmp, _global_uri(uri), temporarily(
            MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=progress, MLFLOW_ALLOW_PICKLE_DESERIALIZATION=pickle):
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp))
        except Exception as err:  # MlflowException, OSError, bad URI syntax: all say the same to a user
            raise ModelLoadError(f"cannot load model {model_uri!r} from {redact(uri)}: {_short(err)}") from None
        info_file = local / "extra_files" / MODEL_INFO_FILE
        if not info_file.is_file():
            raise ModelLoadError(f"{model_uri!r} is not an ldlpose pose model (it has no {MODEL_INFO_FILE}); "
                                 "log models with SearchTracker.log_trial_model")
        info = json.loads(info_file.read_text())
        try:
            module = mlflow.pytorch.load_model(str(local))
        except Exception as err:
            raise ModelLoadError(f"cannot load model {model_uri!r}: {_short(err)}") from None
    return LoadedPredictor(module, info), info


def log_run_files(uri: str, run_id: str, folder: str, figures: dict | None = None,
                  texts: dict | None = None) -> list[str]:
    """Figures (``{name: matplotlib figure}``, closed afterwards) and text files (``{name: str}``) as
    artifacts of a run under ``folder``; the artifact paths written."""
    from ldlpose.report import figures as plots
    from ldlpose.tracking._common import _client

    with tempfile.TemporaryDirectory() as tmp:
        written = plots.save_figures(figures or {}, Path(tmp))
        for name, text in (texts or {}).items():
            (Path(tmp) / name).write_text(redact(text))  # a config's data root may carry a password
            written.append(name)
        if written:
            _client(uri).log_artifacts(run_id, tmp, folder)
    return [f"{folder}/{name}" for name in written]
