"""List every model scored on a benchmark, best MAE first, within groups of one protocol and data hash.

Rows come from `ldlpose evaluate` runs (experiment ldlpose-evaluations: models of searches as registry
URIs, checkpoints and external ONNX models) and from the registered versions of headpose-BENCHMARK,
with the test scores their search (or `ldlpose train --register`) measured. Two rows are ranked
together only when their protocol and data hash agree: each such group is its own table.
"""

from __future__ import annotations

import argparse
import json

_METRICS = ("mae", "mae_yaw", "mae_pitch", "mae_roll", "maev", "geodesic")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("benchmark", metavar="BENCHMARK", help="benchmark name, e.g. aflw2000")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, "
                                               "else sqlite:///mlflow.db in the working directory)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from ldlpose.data import benchmarks
    from ldlpose.tracking import leaderboard

    benchmarks.get(args.benchmark)
    entries = leaderboard(args.tracking_uri, args.benchmark)
    if args.json:
        print(json.dumps({"benchmark": args.benchmark, "entries": entries}, indent=2))
        return 0
    if not entries:
        print(f"no model has been scored on {args.benchmark}: no evaluation and no registered version with "
              f"test scores; run: ldlpose evaluate MODEL --benchmark {args.benchmark}")
        return 0
    print(_tables(entries))
    return 0


def _tables(entries: list[dict]) -> str:
    from ldlpose.report.tables import table

    blocks = []
    for group in sorted({e["group"] for e in entries}):
        members = [e for e in entries if e["group"] == group]
        protocol, data = members[0]["protocol"] or "(not recorded)", members[0]["content_hash"] or "(not recorded)"
        rows = [[str(e["rank"]), e["model"], _source(e), e["method"] or "-", e["backbone"] or "-",
                 "-" if e["rows"] is None else str(e["rows"]),
                 *(f"{e['metrics'][k]:.3f}" if k in e["metrics"] else "-" for k in _METRICS)] for e in members]
        blocks.append(f"protocol {protocol}, data {data}:\n" + table(
            ["#", "model", "source", "method", "backbone", "rows", "MAE", "yaw", "pitch", "roll", "MAEV", "geodesic"],
            rows))
    if len(blocks) > 1:
        blocks.append(f"note: {len(blocks)} protocol/data pairs; rows are ranked only within one pair")
    return "\n\n".join(blocks)


def _source(entry: dict) -> str:
    """Where the score was measured: ``evaluate (<kind>)``, or ``search <id>`` for a registered version."""
    if entry["source"] == "search":
        return f"search {entry.get('search_id') or '?'}"
    version = f", version {entry['version']}" if entry.get("version") else ""
    return f"evaluate ({entry['kind']}{version})"
