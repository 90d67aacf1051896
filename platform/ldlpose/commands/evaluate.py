"""Evaluate a model on named benchmarks, each under its protocol, and log the scores to MLflow.

MODEL is a registry or logged-model URI (models:/headpose-aflw2000@champion, models:/m-...), a
checkpoint folder (or its checkpoint.pt) written by training, or an ONNX file with its
preprocessing description next to it (model.onnx -> model.json; see ldlpose.inference.onnx).

Prints per-angle MAE, MAE, MAEV (from the decoded angles, the same for every method; ASG
checkpoints also get maev_asg, from ASG's raw vectors) and the geodesic error, in degrees, with
the rows evaluated, the protocol and the prepared data's content hash; draws the error against
each angle into --out; logs one evaluation run per benchmark (see `ldlpose leaderboard`).
--predictions FILE writes every evaluated row: its key, true and predicted angles and errors (CSV or
Parquet by FILE's extension; every benchmark in one file, with a benchmark column).

--flip-tta (checkpoints) adds the scores with horizontal-flip test-time augmentation, as
flip_tta_<metric> beside the single-view ones; --bias prints the method's expectation bias on the
benchmark's angles: the error a network that fitted its training targets exactly would still make.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ldlpose.infra.locations import DATA_ENV, DEFAULT_DATA_ROOT

_COLUMNS = ("mae_yaw", "mae_pitch", "mae_roll", "mae", "maev", "geodesic")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="models:/ URI, checkpoint folder or file, or .onnx file")
    parser.add_argument("--benchmark", nargs="+", required=True, metavar="NAME",
                        help="benchmark names (ldlpose.data.benchmarks), e.g. aflw2000 aflw2000-fsanet")
    parser.add_argument("--data-root", type=Path, help=f"data root (default: ${DATA_ENV} or ./{DEFAULT_DATA_ROOT})")
    parser.add_argument("--preprocessing", type=Path, help="ONNX models: the description file "
                                                           "(default: the .json next to the .onnx)")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, "
                                               "else sqlite:///mlflow.db in the working directory)")
    parser.add_argument("--no-log", action="store_true", help="print and plot only; log nothing to MLflow")
    parser.add_argument("--out", type=Path, default=Path("ldlpose-eval"),
                        help="folder for the error-vs-angle plots and JSON results (default: %(default)s)")
    parser.add_argument("--predictions", type=Path, metavar="FILE",
                        help="write each row's key, true and predicted angles and errors to FILE "
                             "(.csv or .parquet), every benchmark in one file, also logged with each run")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--flip-tta", action="store_true",
                        help="also score with horizontal-flip test-time augmentation (checkpoints only)")
    parser.add_argument("--bias", action="store_true",
                        help="print the method's expectation bias on each benchmark's angles")


def run(args: argparse.Namespace) -> int:
    from ldlpose.data import benchmarks
    from ldlpose.evaluation.harness import evaluate, load_model, predictions_format, write_predictions

    for name in args.benchmark:
        benchmarks.get(name)  # unknown names fail before the model loads
    if not args.no_log:  # an unreachable tracking server fails before the work, in seconds
        from ldlpose.tracking import require_reachable, resolve_tracking_uri

        require_reachable(resolve_tracking_uri(args.tracking_uri))
    if args.predictions:
        predictions_format(args.predictions)  # so does a file name we cannot write
    model = load_model(args.model, args.tracking_uri, args.preprocessing)
    results = []
    for name in args.benchmark:
        result = evaluate(model, name, root=args.data_root, flip_tta=args.flip_tta, bias=args.bias)
        result["files"] = _save(args.out, model, result)
        results.append(result)
    written = write_predictions(args.predictions, results) if args.predictions else None
    if not args.no_log:
        from ldlpose import tracking

        tracker = tracking.open_tracker(tracking.resolve_tracking_uri(args.tracking_uri), tracking.EVALUATIONS)
        for result in results:
            artifacts = [*result["files"], *([written] if written else [])]
            result["run_id"] = tracker.log_evaluation(result, model.describe(), artifacts)
    if args.json:
        print(json.dumps({**_plain(model, results), "predictions": str(written) if written else None}, indent=2))
    else:
        print(_text(model, results) + (f"\nper-row predictions: {written}" if written else ""))
    return 0


def _save(out: Path, model, result: dict) -> list[Path]:
    from ldlpose.evaluation.harness import slug
    from ldlpose.report.figures import error_vs_angle, save_figures

    out.mkdir(parents=True, exist_ok=True)
    stem = f"{result['benchmark']}__{slug(model.spec)}"
    title = f"{result['benchmark']} ({result['protocol']}, {result['rows']} rows): {Path(model.spec).name}"
    figure = error_vs_angle(result["pred_deg"], result["true_deg"], title)
    save_figures({f"{stem}.png": figure}, out)
    record = out / f"{stem}.json"
    record.write_text(json.dumps(_plain(model, [result])["results"][0], indent=2) + "\n")
    return [out / f"{stem}.png", record]


def _plain(model, results: list[dict]) -> dict:
    keep = ("benchmark", "protocol", "content_hash", "rows", "rows_stored", "filter", "metrics", "expectation_bias",
            "run_id")
    return {"model": model.spec, "kind": model.kind, "model_id": model.id,
            "method": model.info.get("method"), "backbone": model.info.get("backbone"),
            "input_size": model.input_size,
            "results": [{k: r[k] for k in keep if k in r} | {"files": [str(f) for f in r.get("files", [])]}
                        for r in results]}


def _text(model, results: list[dict]) -> str:
    from ldlpose.report.tables import table

    about = ", ".join(f"{k} {model.info[k]}" for k in ("method", "backbone") if model.info.get(k))
    lines = [(f"model {model.spec} ({model.kind}, {model.id}){': ' + about if about else ''}, "
              f"input {model.input_size} px")]
    asg = any("maev_asg" in r["metrics"] for r in results)
    headers = ["benchmark", "protocol", "rows", "yaw", "pitch", "roll", "MAE", "MAEV", "geodesic"]
    headers += ["MAEV(ASG)"] if asg else []
    rows = []
    for r in results:
        for prefix, label in (("", r["benchmark"]), ("flip_tta_", f"{r['benchmark']} + flip TTA")):
            if f"{prefix}mae" not in r["metrics"]:
                continue
            values = [f"{r['metrics'][prefix + k]:.3f}" for k in _COLUMNS]
            values += [f"{r['metrics']['maev_asg']:.3f}" if "maev_asg" in r["metrics"] and not prefix else "-"] \
                if asg else []
            rows.append([label, r["protocol"], f"{r['rows']} of {r['rows_stored']}", *values])
    lines += [table(headers, rows), "degrees; MAE = mean of yaw/pitch/roll MAE; MAEV from the decoded angles"
              + ("; MAEV(ASG) from ASG's raw vectors" if asg else "")]
    for r in results:
        lines.append(f"{r['benchmark']}: data {r['content_hash']}, {r['filter']}; plot {r['files'][0]}"
                     + (f"; MLflow run {r['run_id']}" if "run_id" in r else ""))
        if "expectation_bias" in r:
            lines.append(f"{r['benchmark']}: expectation bias {_bias_text(r['expectation_bias'])}")
    return "\n".join(lines)


def _bias_text(bias: dict) -> str:
    if "none" in bias:
        return f"none ({bias['none']})"
    per_angle = ", ".join(f"{a} {bias[f'mean_abs_{a}']:.3f}" for a in ("yaw", "pitch", "roll"))
    return (f"mean |E[target] - angle| {bias['mean_abs']:.3f} ({per_angle}), largest {bias['max_abs']:.3f} "
            "degrees: what a network fitting its targets exactly would still miss")
