"""The ``ldlpose`` command.

Each subcommand lives in ``ldlpose.commands.<name>`` and exposes ``add_arguments(parser)`` and
``run(args) -> int``. Those modules import only the standard library at module level, so that
``ldlpose --help`` stays fast; torch, ray and mlflow load inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ldlpose import __version__
from ldlpose.errors import LdlposeError

# Only subcommands that work are listed; later features add a line here and a module.
COMMANDS: dict[str, str] = {
    "prepare": "ldlpose.commands.prepare",
    "train": "ldlpose.commands.train",
    "search": "ldlpose.commands.search",
    "registry": "ldlpose.commands.registry",
    "predict": "ldlpose.commands.predict",
    "evaluate": "ldlpose.commands.evaluate",
    "leaderboard": "ldlpose.commands.leaderboard",
    "export": "ldlpose.commands.export",
    "submit": "ldlpose.commands.submit",
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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 0 if args.command is None else 2
    try:
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
