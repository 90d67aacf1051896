"""Prepare a head-pose dataset as Parquet shards plus a manifest (see docs/data.md).

Datasets:
  300w-lp      official 300W-LP folder (AFW, AFW_Flip, HELEN, ...: *.jpg + *.mat)
  aflw2000     official AFLW2000(-3D) folder (image*.jpg + *.mat)
  biwi         FSA-Net's BIWI_*.npz files, or the raw BIWI folders 01..24 (--protocol 1 or 2)
  fsanet-npz   any npz in FSA-Net's format (BGR images, [yaw, pitch, roll] degrees)
  synthhead    the built-in synthetic heads, written as OUT/train, OUT/val, OUT/test

Files that cannot be used (corrupt image, missing or unreadable .mat or pose file, |angle| > 180)
are skipped, printed, and listed in the manifest and OUT/problems.jsonl.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

DEFAULT_MAX_SIDE = 256  # the platform trains at <= 224 px (HopeNet: resize 240, crop 224)

# The folder under the data root that the benchmarks look for (ldlpose.data.benchmarks).
STANDARD_OUT = {"300w-lp": "300w-lp", "aflw2000": "aflw2000", "biwi": "biwi-p{protocol}",
                "synthhead": "synthhead"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", type=Path, help="output folder (default: the benchmarks' folder under "
                        "--data-root, e.g. ldlpose-data/aflw2000)")
    common.add_argument("--data-root", type=Path, help="data root for the default --out "
                        "(default: $LDLPOSE_DATA or ./ldlpose-data)")
    common.add_argument("--workers", type=int, help="reader processes (default: all CPUs this process may use)")
    common.add_argument("--shard-rows", type=int, default=4096, help="rows per shard file (default 4096)")
    common.add_argument("--format", choices=("jpeg", "png"), default="jpeg", help="image encoding (default jpeg)")
    common.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE,
                        help=f"downscale crops whose longer side exceeds this (default {DEFAULT_MAX_SIDE}; 0 keeps all)")
    common.add_argument("--overwrite", action="store_true", help="replace a prepared dataset in --out")

    sub = parser.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    for name, help_text, k in (("300w-lp", "300W-LP folder", 0.4), ("aflw2000", "AFLW2000 folder", 0.2)):
        p = sub.add_parser(name, parents=[common], help=help_text)
        p.add_argument("--source", type=Path, required=True, help=f"the {help_text}")
        p.add_argument("--margin-k", type=float, default=k, help=f"HopeNet crop margin k (default {k})")
    p = sub.add_parser("biwi", parents=[common], help="BIWI from FSA-Net npz files or raw folders")
    p.add_argument("--source", type=Path, required=True, help="folder with BIWI_*.npz or video folders 01..24")
    p.add_argument("--protocol", type=int, choices=(1, 2), default=1,
                   help="1: all of BIWI as a test set; 2: 70/30 split by video into OUT/train and OUT/test")
    p.add_argument("--split-seed", type=int, default=0, help="protocol-2 video split seed (raw folders)")
    p.add_argument("--box-mm", type=float, default=300.0, help="raw folders: crop side in mm (default 300)")
    p = sub.add_parser("fsanet-npz", parents=[common], help="npz files in FSA-Net's format")
    p.add_argument("--source", type=Path, required=True, help="an npz file or a folder of them")
    p = sub.add_parser("synthhead", parents=[common], help="synthetic heads (train/val/test)")
    p.add_argument("--train", type=int, default=2000, help="training images (default 2000)")
    p.add_argument("--val", type=int, default=500, help="validation images (default 500)")
    p.add_argument("--test", type=int, default=500, help="test images (default 500)")
    p.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    p.add_argument("--no-occluders", action="store_true", help="render without occluders")


def _command_line(args: argparse.Namespace) -> str:
    words = ["ldlpose", "prepare", args.dataset]
    for key, value in vars(args).items():
        if key.startswith("_") or key in ("command", "dataset") or value in (None, False):
            continue
        words += [f"--{key.replace('_', '-')}"] + ([] if value is True else [str(value)])
    return shlex.join(words)


def _out_dir(args: argparse.Namespace) -> Path:
    if args.out is not None:
        return args.out
    from ldlpose.data import benchmarks
    from ldlpose.errors import ConfigError

    if args.dataset not in STANDARD_OUT:
        raise ConfigError(f"{args.dataset} has no standard folder; pass --out")
    return benchmarks.data_root(args.data_root) / STANDARD_OUT[args.dataset].format(
        protocol=getattr(args, "protocol", ""))


def run(args: argparse.Namespace) -> int:
    from ldlpose.data import preparation
    from ldlpose.data.records import ImageOptions
    from ldlpose.data.sources import Settings
    from ldlpose.errors import ConfigError

    for name in ("workers", "shard_rows"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.max_side < 0:
        raise ConfigError(f"--max-side must be >= 0 (0 keeps the full resolution), got {args.max_side}")
    settings = Settings(workers=args.workers or preparation.default_workers(), shard_rows=args.shard_rows,
                        image=ImageOptions(format=args.format, max_side=args.max_side),
                        overwrite=args.overwrite, command=_command_line(args))
    out = _out_dir(args)
    print(f"preparing {args.dataset} into {out} with {settings.workers} workers", flush=True)
    manifests = _prepare(args, out, settings)
    for target, manifest in manifests.items():
        print(preparation.summary(manifest, out / target if target else out))
    return 0


def _prepare(args: argparse.Namespace, out: Path, settings) -> dict[str, dict]:
    if args.dataset in ("300w-lp", "aflw2000"):
        from ldlpose.data.sources.landmarks import prepare_landmark_dataset

        return {"": prepare_landmark_dataset(args.dataset, args.source, out, settings, k=args.margin_k)}
    if args.dataset == "biwi":
        from ldlpose.data.sources.biwi import prepare_biwi

        return prepare_biwi(args.source, out, settings, protocol=args.protocol, split_seed=args.split_seed,
                            box_mm=args.box_mm)
    if args.dataset == "fsanet-npz":
        from ldlpose.data.sources.fsanet import prepare_fsanet_npz

        return {"": prepare_fsanet_npz(args.source, out, settings)}
    from ldlpose.data.sources.synth import prepare_synthhead

    counts = {"train": args.train, "val": args.val, "test": args.test}
    return prepare_synthhead(out, settings, counts=counts, size=args.size, seed=args.seed,
                             occluders=not args.no_occluders)
