"""Train one model (no search) on Ray Train from a run-config YAML.

Starts a local Ray unless --address (or RAY_ADDRESS) names a cluster. Running the same config and
--name again continues from the latest checkpoint of that run.
"""

from __future__ import annotations

import argparse

from ldlpose.infra.locations import DEFAULT_STORAGE, STORAGE_ENV, resolve_storage


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="run-config YAML (see configs/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value by dotted key, e.g. --set train.epochs=3 (repeatable)")
    parser.add_argument("--name", help="run name (default: the config's name); results go to STORAGE/NAME")
    parser.add_argument("--storage", default=resolve_storage(), help="where checkpoints and results go "
                        f"(default: ${STORAGE_ENV}, else {DEFAULT_STORAGE})")
    parser.add_argument("--address", help="Ray cluster address, or auto for a `ray start` cluster on this machine "
                                          "(default: RAY_ADDRESS, else a new local Ray)")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, "
                                               "else sqlite:///mlflow.db in the working directory)")
    parser.add_argument("--register", action="store_true",
                        help="register the selected checkpoint as a version of headpose-<benchmark>; it becomes "
                             "champion only if it beats the champion on the same validation rows")
    parser.add_argument("--no-track", action="store_true", help="do not write to MLflow")


def run(args: argparse.Namespace) -> int:
    from ldlpose.config import load_run_config
    from ldlpose.config.run import check_name
    from ldlpose.config.schema import FieldError
    from ldlpose.config.splits import check_split_content
    from ldlpose.data.ensure import ensure_training_data
    from ldlpose.errors import ConfigError
    from ldlpose.infra.ray_cluster import ensure_ray
    from ldlpose.infra.storage import credentials_to_environment
    from ldlpose.report.tables import metrics_table
    from ldlpose.train.run import fit

    if args.register and args.no_track:
        raise ConfigError("--register needs tracking: drop --no-track")
    if args.name is not None:  # checked before data and Ray: the name becomes the folder STORAGE/NAME
        try:
            check_name(args.name)
        except FieldError as err:
            raise ConfigError(f"--name: {err.message}") from None
    if not args.no_track:  # not after the training: an unreachable tracking server fails now, in seconds
        from ldlpose.tracking import require_reachable, resolve_tracking_uri

        require_reachable(resolve_tracking_uri(args.tracking_uri))
    config = load_run_config(args.config, args.overrides)
    ensure_training_data(config)
    check_split_content(config.data, args.config)  # copies of a test set under another name, before training
    ensure_ray(args.address)
    name = args.name or config.name
    storage = credentials_to_environment(args.storage)  # Ray keeps the path it is given in its state
    outcome = fit(config, storage_path=storage, name=name)
    print()
    print(metrics_table(outcome.metrics, ["val"]))
    selected = outcome.selected
    if selected is not None:
        print(f"\nselected epoch {selected.epoch} by {config.train.select_metric} "
              f"({selected.metrics[config.train.select_metric]:.2f}): {selected.path}")
    print(f"latest checkpoint (resume point): {outcome.checkpoint_path}")
    if args.no_track:
        return 0
    from pathlib import Path

    from ldlpose import tracking
    from ldlpose.data.identity import RunData
    from ldlpose.report.tables import measured_on

    uri = tracking.resolve_tracking_uri(args.tracking_uri)
    data = RunData.of(config.data)
    tracked = tracking.record_training(tracking.open_tracker(uri, name), config, outcome, name,
                                       Path(args.config).read_text(), data=data, register=args.register)
    print("\nselected checkpoint on the test benchmarks (measured, never used to choose):")
    print(metrics_table(tracked["scores"], config.data.benchmarks))
    print(measured_on(data.benchmark_identities()))
    print(f"\nMLflow run {tracked['run_id']} at {tracking.redact(uri)}; model {tracked['model_uri']}")
    print(f"  in the UI: {tracking.experiment_page(uri, tracked['experiment_id'])}")
    for _benchmark, info in sorted(tracked["champions"].items()):
        verdict = "now the champion" if info["moved"] else f"champion stays version {info['champion']}"
        print(f"registered {info['model']} version {info['version']}: {verdict}")
    return 0
