"""Search hyperparameters (and the method itself) described by a search-space YAML.

Runs on Ray Tune with Optuna; a trial of one CPU worker trains in its own Tune process, larger ones
on Ray Train. With --resume, a search whose state already exists continues where it stopped, without
re-running finished trials. The console shows one compact, updating view; --verbose shows Ray's own
output instead.
"""

from __future__ import annotations

import argparse

from ldlpose.infra.locations import DEFAULT_STORAGE, STORAGE_ENV, resolve_storage


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("space", help="search-space YAML (see search_spaces/ and docs/search-spaces.md)")
    parser.add_argument("--resume", action="store_true",
                        help="continue this search if its state exists (otherwise start it)")
    parser.add_argument("--smoke-test", action="store_true",
                        help="shrink trials, epochs and data to seconds (checks the whole pipeline)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a value by dotted key, e.g. --set search.budget.trials=4")
    parser.add_argument("--storage", default=resolve_storage(), help="where search state and checkpoints go "
                        f"(default: ${STORAGE_ENV}, else {DEFAULT_STORAGE})")
    parser.add_argument("--address", help="Ray cluster address, or auto for a `ray start` cluster on this machine "
                                          "(default: RAY_ADDRESS, else a new local Ray)")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, "
                                               "else sqlite:///mlflow.db in the working directory)")
    parser.add_argument("--verbose", action="store_true",
                        help="show everything Ray and Tune print (default: one compact view of the trials)")


def run(args: argparse.Namespace) -> int:
    from ldlpose.search.driver import search_and_report

    return search_and_report(args.space, overrides=args.overrides, resume=args.resume,
                             smoke_test=args.smoke_test, storage=args.storage, address=args.address,
                             tracking_uri=args.tracking_uri, verbose=args.verbose)
