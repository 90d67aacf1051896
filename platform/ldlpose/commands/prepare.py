"""Prepare a head-pose dataset as Parquet shards plus a manifest (see docs/data.md).

The datasets are the readers registered in ldlpose.data.readers (listed below with their help).

Files that cannot be used (corrupt image, missing or unreadable .mat or pose file, an angle that is
not a number) are skipped, printed, and listed in the manifest and OUT/_problems.jsonl. Rows with
an angle beyond +-180 degrees are stored and flagged in the manifest; benchmarks filter them.

Test sets (of the built-in readers: aflw2000, biwi, fsanet-npz) are stored losslessly by default
(PNG at full resolution), so that evaluation sees the pixels the protocol's reference code sees;
training sets as JPEG.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

# The sub-commands, their arguments and default folders come from the reader registry (stdlib only).
from ldlpose.data import readers
from ldlpose.infra.locations import DATA_ENV, DEFAULT_DATA_ROOT

DEFAULT_MAX_SIDE = 256  # the platform trains at <= 224 px (HopeNet: resize 240, crop 224)
# Evaluation images are stored without loss (readers' test_set): JPEG re-encoding moved single FSA-Net
# predictions on AFLW2000 by 0.9 degrees on average (up to 25-63 on a few images).


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", type=Path, help="output folder (default: the benchmarks' folder under "
                        f"--data-root, e.g. {DEFAULT_DATA_ROOT}/aflw2000)")
    common.add_argument("--data-root", type=Path, help="data root for the default --out "
                        f"(default: ${DATA_ENV} or ./{DEFAULT_DATA_ROOT})")
    common.add_argument("--workers", type=int, help="reader processes (default: all CPUs this process may use)")
    common.add_argument("--shard-rows", type=int, default=4096, help="rows per shard file (default 4096)")
    lossless = ", ".join(n for n in readers.available() if readers.get(n).test_set)
    common.add_argument("--format", choices=("jpeg", "png"),
                        help=f"image encoding (default: png for test sets {lossless}; else jpeg)")
    common.add_argument("--max-side", type=int, help=f"downscale crops whose longer side exceeds this "
                        f"(0 keeps all; default: 0 for test sets, else {DEFAULT_MAX_SIDE})")
    common.add_argument("--overwrite", action="store_true", help="replace a prepared dataset in --out")
    return common


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common = _common()
    sub = parser.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    for name in readers.available():
        reader = readers.get(name)
        p = sub.add_parser(name, parents=[common], help=reader.help)
        for arg in reader.arguments:
            p.add_argument(arg.flag, **arg.options)


def _command_line(args: argparse.Namespace) -> str:
    words = ["ldlpose", "prepare", args.dataset]
    for key, value in vars(args).items():
        if key.startswith("_") or key in ("command", "dataset") or value is None or value is False:
            continue
        words += [f"--{key.replace('_', '-')}"] + ([] if value is True else [str(value)])
    return shlex.join(words)


def _out_dir(args: argparse.Namespace, reader: readers.Reader) -> Path:
    if args.out is not None:
        return args.out
    from ldlpose.data import benchmarks
    from ldlpose.errors import ConfigError

    folder = reader.default_folder(vars(args))
    if folder is None:
        raise ConfigError(f"{args.dataset} has no standard folder; pass --out")
    return benchmarks.data_root(args.data_root) / folder


def run(args: argparse.Namespace) -> int:
    from ldlpose.data import preparation
    from ldlpose.data.records import ImageOptions
    from ldlpose.data.sources import Settings
    from ldlpose.errors import ConfigError

    for name in ("workers", "shard_rows"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    reader = readers.get(args.dataset)
    image_format = args.format or ("png" if reader.test_set else "jpeg")
    max_side = args.max_side if args.max_side is not None else (0 if reader.test_set else DEFAULT_MAX_SIDE)
    if max_side < 0:
        raise ConfigError(f"--max-side must be >= 0 (0 keeps the full resolution), got {max_side}")
    settings = Settings(workers=args.workers or preparation.default_workers(), shard_rows=args.shard_rows,
                        image=ImageOptions(format=image_format, max_side=max_side),
                        overwrite=args.overwrite, command=_command_line(args))
    out = _out_dir(args, reader)
    print(f"preparing {args.dataset} into {out} with {settings.workers} workers", flush=True)
    manifests = reader.run(out, settings, vars(args))
    for target, manifest in manifests.items():
        print(preparation.summary(manifest, out / target if target else out))
    return 0
