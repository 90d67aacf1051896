"""The evaluation harness behind ``ldlpose evaluate``: any model, any benchmark, one protocol each.

A model is loaded by :func:`load_model` from one of

* a registry or logged-model URI (``models:/headpose-aflw2000@champion``, ``models:/m-...``),
  through :func:`ldlpose.tracking.load_predictor`;
* a checkpoint folder or ``checkpoint.pt`` written by training, through
  :func:`ldlpose.inference.predictor.predictor_from_checkpoint`;
* an ONNX file with its preprocessing description next to it (:mod:`ldlpose.inference.onnx`).

:func:`evaluate` feeds it the benchmark's rows that count: each stored crop (lossless for test
sets) becomes the input as the benchmark's protocol says (:class:`ldlpose.data.protocols.InputView`),
as (N, S, S, 3) uint8 RGB (:func:`ldlpose.data.inputs.benchmark_batches`), which each kind of model
then scales and normalises its own way. The training loop reads a benchmark through the same
:func:`ldlpose.data.inputs.view_crop` and normalisation, so the test scores a run logs are the ones
``ldlpose evaluate`` gives its checkpoint on the same rows. The result carries the protocol name and
the prepared data's content hash with every score.

Two options, both off by default so that scores compare with the papers' single-view protocols:

* ``flip_tta``: horizontal-flip test-time augmentation. The network sees each crop and its mirror;
  the mirror's raw outputs are mapped back by the method's ``flip_outputs`` and the two averaged
  before decoding (:func:`flip_tta_outputs`). Scores are added as ``flip_tta_<metric>`` beside the
  single-view ones. It needs the raw outputs, so checkpoints only (exported graphs decode inside).
* ``bias``: the method's expectation bias on the benchmark's own angles
  (:func:`ldlpose.methods.expectation_bias`): the error a network that fitted its training targets
  exactly would still make, which bounds what the method can reach on these rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# The one evaluation input path (also the training loop's, for the test scores it logs).
from ldlpose.data.inputs import BATCH, benchmark_batches, to_unit
from ldlpose.errors import ConfigError, DataError

__all__ = ["Model", "benchmark_batches", "evaluate", "expectation_bias_summary", "flip_tta_outputs", "load_model",
           "predictions_format", "write_predictions"]


@dataclass
class Model:
    """A loaded model, itself a :class:`ldlpose.inference.Predictor` (``predict`` maps (N, S, S, 3)
    uint8 RGB to (N, 3) yaw/pitch/roll degrees: the ``predict`` of the predictor it was loaded as),
    with what identifies it and the extras a checkpoint allows.

    ``vectors``, where the raw outputs are at hand and the method scores MAEV on its own vectors
    (ASG-LDL), maps the same images to (N, 3, 3) left/down/front unit vectors. ``predict_flip_tta``,
    where the raw outputs are at hand, predicts from each image and its mirror (:func:`flip_tta_outputs`).
    """

    spec: str
    kind: str  # "registry", "checkpoint" or "onnx"
    id: str  # what identifies the weights: a logged model id, or a file's sha256
    input_size: int
    predict: Callable[[np.ndarray], np.ndarray]
    info: dict = field(default_factory=dict)
    vectors: Callable[[np.ndarray], np.ndarray] | None = None
    predict_flip_tta: Callable[[np.ndarray], np.ndarray] | None = None

    def describe(self) -> dict:
        return {"spec": self.spec, "kind": self.kind, "id": self.id, "info": self.info}


def load_model(spec: str, tracking_uri: str | None = None, description=None) -> Model:
    """The model named by ``spec`` (see the module docstring); ``description`` overrides the ONNX
    model's preprocessing description file."""
    if spec.startswith(("models:/", "runs:/")):
        return _registry_model(spec, tracking_uri)
    path = Path(spec)
    if path.suffix == ".onnx":
        return _onnx_model(path, description)
    if path.exists():
        return _checkpoint_model(path)
    raise DataError(f"model {spec!r} is neither a models:/ URI nor an existing checkpoint folder, "
                    "checkpoint.pt or .onnx file")


def _sha256(path: Path) -> str:
    from ldlpose.infra.files import sha256_file

    return "sha256:" + sha256_file(path)


def _registry_model(spec: str, tracking_uri: str | None) -> Model:
    from ldlpose.tracking import load_predictor, registry_model_identity

    predictor, info = load_predictor(spec, tracking_uri)
    return Model(spec, "registry", registry_model_identity(spec, tracking_uri), predictor.input_size,
                 predictor.predict, info)


def _checkpoint_model(path: Path) -> Model:
    import torch

    from ldlpose.inference.predictor import predictor_from_checkpoint
    from ldlpose.train.checkpoints import checkpoint_file

    predictor, info = predictor_from_checkpoint(path)
    file = checkpoint_file(path)

    def predict_flip_tta(images):
        with torch.no_grad():
            x = to_unit(images)
            combined = flip_tta_outputs(predictor.method, predictor.outputs(x), predictor.outputs(x.flip(-1)))
            return predictor.method.decode(combined).double().numpy()

    vectors = None
    if hasattr(predictor.method, "expectation_vectors"):
        def vectors(images):
            with torch.no_grad():
                return predictor.method.expectation_vectors(predictor.outputs(to_unit(images))).double().numpy()
    return Model(str(path), "checkpoint", _sha256(file), predictor.input_size, predictor.predict, info, vectors,
                 predict_flip_tta)


def flip_tta_outputs(method, outputs, mirrored_outputs):
    """One set of raw outputs from those of an image and of its horizontal mirror.

    ``method.flip_outputs`` turns the mirror's outputs into outputs for the original view (yaw and
    roll change sign, pitch stays), then the two are averaged. For softmax heads, averaging logits
    multiplies the two distributions (renormalised), so a bin scores high only where both views
    agree; for regression heads (RankPose, 6DRepNet's rotation columns) it averages the estimates.
    """
    return (outputs + method.flip_outputs(mirrored_outputs)) / 2


def _onnx_model(path: Path, description) -> Model:
    from ldlpose.inference.onnx import OnnxPredictor, read_description

    if not path.is_file():
        raise DataError(f"no ONNX model at {path}")
    predictor = OnnxPredictor(path, read_description(description) if description else None)
    return Model(str(path), "onnx", _sha256(path), predictor.input_size, predictor.predict, predictor.info)


def evaluate(model: Model, benchmark: str, root=None, batch: int = BATCH, *, flip_tta: bool = False,
             bias: bool = False) -> dict:
    """Scores of ``model`` on the rows of ``benchmark`` that count, with protocol and data hash.

    Returns ``benchmark``, ``protocol``, ``content_hash``, ``rows`` (evaluated), ``rows_stored``,
    ``metrics`` (:func:`ldlpose.metrics.evaluate`, plus ``maev_asg`` for ASG checkpoints and
    ``flip_tta_<metric>`` with ``flip_tta``), ``expectation_bias`` with ``bias``, and the
    ``pred_deg`` / ``true_deg`` arrays with each row's index in the prepared folder (``row_indices``)
    and its ``keys`` (:func:`write_predictions`).
    """
    if flip_tta and model.predict_flip_tta is None:
        raise ConfigError(f"flip test-time augmentation needs the network's raw outputs, which a {model.kind} "
                          f"model ({model.spec}) does not expose; evaluate its checkpoint folder instead")
    from ldlpose import metrics
    from ldlpose.data import benchmarks
    from ldlpose.data.shards import read_labels

    bench = benchmarks.get(benchmark)
    folder = bench.resolve(root)
    identity = bench.identity(folder)
    labels = read_labels(folder)
    true_all = labels["angles_deg"]
    rows = bench.row_indices(folder)
    if len(rows) == 0:
        raise DataError(f"benchmark {benchmark!r}: none of the {len(true_all)} rows of {folder} passes its filter "
                        f"({bench.protocol.keeps()})")
    preds, vecs, tta = [], [], []
    predict_flip = model.predict_flip_tta if flip_tta else None  # checked above: present when asked for
    for images, _ in benchmark_batches(folder, rows, bench.protocol.input, model.input_size, batch):
        preds.append(np.asarray(model.predict(images), dtype=np.float64))
        if model.vectors is not None:
            vecs.append(model.vectors(images))
        if predict_flip is not None:
            tta.append(np.asarray(predict_flip(images), dtype=np.float64))
    pred, true = np.concatenate(preds), true_all[rows]
    scores = metrics.evaluate(pred, true)
    if vecs:
        scores["maev_asg"] = metrics.maev_from_vectors(np.concatenate(vecs), true)
    if tta:
        scores.update({f"flip_tta_{k}": v for k, v in metrics.evaluate(np.concatenate(tta), true).items()})
    result = {"benchmark": benchmark, **identity, "rows": len(rows), "rows_stored": len(true_all),
              "filter": bench.protocol.keeps(), "metrics": scores, "pred_deg": pred, "true_deg": true,
              "row_indices": np.asarray(rows), "keys": labels["key"][rows]}
    if bias:
        result["expectation_bias"] = expectation_bias_summary(model.info, true)
    return result


def expectation_bias_summary(info: dict, true_deg: np.ndarray) -> dict:
    """Mean and largest |E[target] - angle| in degrees per angle over ``true_deg``, for the method
    that ``info`` names (a model's export info); ``{"none": why}`` for methods without distributions."""
    from ldlpose import methods

    name = info.get("method")
    if name is None:
        raise ConfigError("the expectation bias needs the model's method, which its description does not name")
    if not methods.method_class(name).has_distributions:
        return {"none": f"{name} regresses the pose directly: no label distribution, no expectation bias"}
    hparams = info.get("method_hparams") or {}
    error = np.abs(methods.expectation_bias(name, true_deg, **hparams).numpy())
    summary = {f"mean_abs_{a}": float(error[:, i].mean()) for i, a in enumerate(("yaw", "pitch", "roll"))}
    return {**summary, "mean_abs": float(error.mean()), "max_abs": float(error.max())}


def slug(spec: str) -> str:
    """A file-name-safe short name of a model spec, with a hash so two specs never collide."""
    tail = "".join(c if c.isalnum() or c in "-_." else "-" for c in spec.rstrip("/").split("/")[-1])[:40]
    return f"{tail}-{hashlib.sha256(spec.encode()).hexdigest()[:8]}"


_PREDICTION_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def predictions_format(path: Path) -> str:
    """``csv`` or ``parquet``, from the file's extension."""
    kind = _PREDICTION_FORMATS.get(Path(path).suffix.lower())
    if kind is None:
        raise ConfigError(f"--predictions {path}: the extension must be one of {sorted(_PREDICTION_FORMATS)} "
                          "(CSV or Parquet); e.g. --predictions predictions.csv")
    return kind


def write_predictions(path: Path, results: list[dict]) -> Path:
    """One line per evaluated row of every result of :func:`evaluate`, for error analysis: benchmark,
    protocol, row (index in the prepared folder), key, true and predicted yaw/pitch/roll, their
    absolute errors, and the row's MAEV and geodesic errors, all in degrees (:mod:`ldlpose.metrics`).
    CSV or Parquet by the extension (:func:`predictions_format`)."""
    import pyarrow as pa

    kind = predictions_format(path)
    table = pa.concat_tables([_prediction_table(r) for r in results])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "csv":
        import pyarrow.csv as pa_csv

        pa_csv.write_csv(table, path)
    else:
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    return path


def _prediction_table(result: dict):
    import pyarrow as pa

    from ldlpose.metrics import per_sample_errors

    pred, true = np.asarray(result["pred_deg"]), np.asarray(result["true_deg"])
    errors = {k: v.numpy() for k, v in per_sample_errors(pred, true).items()}
    n = len(pred)
    columns = {"benchmark": [result["benchmark"]] * n, "protocol": [result["protocol"]] * n,
               "row": np.asarray(result["row_indices"], dtype=np.int64),
               "key": [str(k) for k in result["keys"]]}
    for i, angle in enumerate(("yaw", "pitch", "roll")):
        columns[f"true_{angle}_deg"] = true[:, i]
        columns[f"pred_{angle}_deg"] = pred[:, i]
        columns[f"abs_error_{angle}_deg"] = errors["abs"][:, i]
    columns["mae_deg"] = errors["abs"].mean(axis=1)
    columns["maev_deg"] = errors["vector"].mean(axis=1)
    columns["geodesic_deg"] = errors["geodesic"]
    return pa.table(columns)
