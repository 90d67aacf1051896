"""Train one model (no search) on Ray Train from a run-config YAML.

Starts a local Ray unless --address (or RAY_ADDRESS) names a cluster. Running the same config and
--name again continues from the latest checkpoint of that run.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="run-config YAML (see configs/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value by dotted key, e.g. --set train.epochs=3 (repeatable)")
    parser.add_argument("--name", help="run name (default: the config's name); results go to STORAGE/NAME")
    parser.add_argument("--storage", default="ldlpose-results", help="where checkpoints and results go")
    parser.add_argument("--address", help="Ray cluster address, or auto for a `ray start` cluster on this machine "
                                          "(default: RAY_ADDRESS, else a new local Ray)")


def run(args: argparse.Namespace) -> int:
    from ldlpose.cluster import ensure_ray
    from ldlpose.config import load_run_config
    from ldlpose.data.ensure import ensure_training_data
    from ldlpose.report import metrics_table
    from ldlpose.train.run import fit

    config = load_run_config(args.config, args.overrides)
    ensure_training_data(config)
    ensure_ray(args.address)
    outcome = fit(config, storage_path=args.storage, name=args.name)
    sets = ["val", *config.data.benchmarks]
    print()
    print(metrics_table(outcome.metrics, sets))
    print(f"\ncheckpoint: {outcome.checkpoint_path}")
    return 0
