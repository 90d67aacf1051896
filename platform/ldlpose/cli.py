"""The ``ldlpose`` command.

Each subcommand lives in ``ldlpose.commands.<name>`` and exposes ``add_arguments(parser)`` and
``run(args) -> int``. Those modules import only the standard library at module level, so that
``ldlpose --help`` stays fast; torch, ray and mlflow load inside ``run``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Iterator

from ldlpose import __version__
from ldlpose.errors import LdlposeError
from ldlpose.infra.ray_cluster import debug_logs

# Only subcommands that work are listed; later features add a line here and a module.
COMMANDS: dict[str, str] = {
    "prepare": "ldlpose.commands.prepare",
    "train": "ldlpose.commands.train",
    "search": "ldlpose.commands.search",
    "registry": "ldlpose.commands.registry",
    "predict": "ldlpose.commands.predict",
    "evaluate": "ldlpose.commands.evaluate",
    "leaderboard": "ldlpose.commands.leaderboard",
    "report": "ldlpose.commands.report",
    "export": "ldlpose.commands.export",
    "submit": "ldlpose.commands.submit",
    "ui": "ldlpose.commands.ui",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ldlpose",
        description="Hyperparameter search for head-pose estimation by label distribution learning, "
        "on Ray, tracked in MLflow.",
    )
    parser.add_argument("--version", action="version", version=f"ldlpose {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        doc = (module.__doc__ or "").strip().splitlines()
        summary = doc[0] if doc else ""
        command = sub.add_parser(name, help=summary, description=(module.__doc__ or "").strip(),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


# Read by MLflow when it is imported (which resets its logger's level): its INFO lines ("Creating initial
# MLflow database tables...") stay off the screen. Set for one command only, unless the user set it.
_CALM_ENV = {"MLFLOW_LOGGING_LEVEL": "WARNING"}


@contextlib.contextmanager
def _calm(verbose: bool) -> Iterator[None]:
    added = [] if verbose else [name for name in _CALM_ENV if name not in os.environ]
    os.environ.update({name: _CALM_ENV[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 0 if args.command is None else 2
    if debug_logs() and hasattr(args, "verbose"):
        args.verbose = True  # LDLPOSE_LOG=debug: Ray's, Tune's and MLflow's own output, as --verbose
    try:
        with _calm(getattr(args, "verbose", False) or debug_logs()):
            return int(args._run(args) or 0)
    except LdlposeError as err:
        from ldlpose.infra.locations import redact  # an error may quote a URI with its password

        print(f"ldlpose {args.command}: error: {redact(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ldlpose {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
