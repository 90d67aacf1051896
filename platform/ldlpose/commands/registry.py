"""List the champions of every benchmark in the MLflow model registry: one row per alias.

One registered model per benchmark (headpose-<benchmark>). Its alias 'champion' is the version with
the best validation objective among versions selected on the same validation rows (the benchmark's
test MAE is shown, never used to choose). A search under another champion rule moves that rule's
own alias ('champion-benchmark', 'champion-min-val_mae-where-latency_ms-le-5', ...; docs/tracking.md).
Load one with, e.g., `ldlpose predict --model models:/headpose-facegen@champion IMAGE`.
"""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, "
                                               "else sqlite:///mlflow.db in the working directory)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from ldlpose.report.tables import table
    from ldlpose.tracking import list_champions, redact, resolve_tracking_uri

    uri = resolve_tracking_uri(args.tracking_uri)
    champions = list_champions(uri)
    if args.json:
        print(json.dumps({"tracking_uri": redact(uri), "champions": champions}, indent=2))
        return 0
    if not champions:
        print(f"no champions registered at {redact(uri)} (a search registers them when it finishes)")
        return 0
    def number(value) -> str:
        return "-" if value is None else f"{value:.2f}"

    rows = [[c["benchmark"], c["model"], c["alias"], c["version"],
             f"{c['selection_metric'] or '-'} {number(c['selection_value'])}", number(c["mae"]),
             c["protocol"] or "-", (c["data_hash"] or "-")[:19], c["rule"] or "-",
             c["method"] or "-", c["backbone"] or "-", c["run_id"] or "-"] for c in champions]
    print(table(["benchmark", "model", "alias", "version", "selected by", "test MAE", "protocol", "data", "rule",
                 "method", "backbone", "run"], rows))
    return 0
