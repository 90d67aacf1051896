"""List every model evaluated on a benchmark, best MAE first, with protocol and data hash.

Rows come from `ldlpose evaluate` runs (experiment ldlpose-evaluations): models of searches
(registry URIs), checkpoints and external ONNX models side by side. Two rows compare only when
their protocol and data hash agree; rows whose data differ from the newest preparation are marked.
"""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("benchmark", metavar="BENCHMARK", help="benchmark name, e.g. aflw2000")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, "
                                               "else sqlite:///mlflow.db in the working directory)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from ldlpose.data import benchmarks
    from ldlpose.report.tables import table
    from ldlpose.tracking.evaluations import leaderboard

    benchmarks.get(args.benchmark)
    entries = leaderboard(args.tracking_uri, args.benchmark)
    if args.json:
        print(json.dumps({"benchmark": args.benchmark, "entries": entries}, indent=2))
        return 0
    if not entries:
        print(f"no model has been evaluated on {args.benchmark}; run: ldlpose evaluate MODEL --benchmark "
              f"{args.benchmark}")
        return 0
    rows = []
    for rank, e in enumerate(entries, 1):
        m = e["metrics"]
        rows.append([str(rank), e["model"], e["kind"], e["method"] or "-", e["backbone"] or "-", str(e["rows"]),
                     *(f"{m[k]:.3f}" if k in m else "-" for k in ("mae", "mae_yaw", "mae_pitch", "mae_roll", "maev",
                                                                   "geodesic")),
                     e["protocol"], (e["content_hash"] or "-")[:23]])
    print(table(["#", "model", "kind", "method", "backbone", "rows", "MAE", "yaw", "pitch", "roll", "MAEV",
                 "geodesic", "protocol", "data"], rows))
    groups = {(e["protocol"], e["content_hash"]) for e in entries}
    if len(groups) > 1:
        print(f"note: {len(groups)} different protocol/data pairs above; compare rows only within one pair")
    return 0
