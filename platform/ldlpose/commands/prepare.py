"""Prepare a head-pose dataset as Parquet shards plus a manifest (see docs/data.md).

Datasets:
  300w-lp      official 300W-LP folder (AFW, AFW_Flip, HELEN, ...: *.jpg + *.mat)
  aflw2000     official AFLW2000(-3D) folder (image*.jpg + *.mat)
  biwi         FSA-Net's BIWI_*.npz files, or the raw BIWI folders 01..24 (--protocol 1 or 2)
  fsanet-npz   any npz in FSA-Net's format (BGR images, [yaw, pitch, roll] degrees)
  synthhead    the built-in synthetic heads, written as OUT/train, OUT/val, OUT/test

Files that cannot be used (corrupt image, missing or unreadable .mat or pose file, an angle that is
not a number) are skipped, printed, and listed in the manifest and OUT/_problems.jsonl. Rows with
an angle beyond +-180 degrees are stored and flagged in the manifest; benchmarks filter them.

Test sets (aflw2000, biwi, fsanet-npz) are stored losslessly by default (PNG at full resolution),
so that evaluation sees the pixels the protocol's reference code sees; training sets as JPEG.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

DEFAULT_MAX_SIDE = 256  # the platform trains at <= 224 px (HopeNet: resize 240, crop 224)
# Evaluation images are stored without loss: JPEG re-encoding moved single FSA-Net predictions on
# AFLW2000 by 0.9 degrees on average (up to 25-63 on a few images).
LOSSLESS = {"aflw2000", "biwi", "fsanet-npz"}

# The folder under the data root that the benchmarks look for (ldlpose.data.benchmarks).
STANDARD_OUT = {"300w-lp": "300w-lp", "aflw2000": "aflw2000", "aflw2000/fsanet": "aflw2000-fsanet",
                "aflw2000/rankpose": "aflw2000-rankpose",
                "biwi/1/npz": "biwi-p1", "biwi/1/raw": "biwi-raw", "biwi/2/npz": "biwi-p2-fsanet",
                "biwi/2/raw": "biwi-p2", "synthhead": "synthhead"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", type=Path, help="output folder (default: the benchmarks' folder under "
                        "--data-root, e.g. ldlpose-data/aflw2000)")
    common.add_argument("--data-root", type=Path, help="data root for the default --out "
                        "(default: $LDLPOSE_DATA or ./ldlpose-data)")
    common.add_argument("--workers", type=int, help="reader processes (default: all CPUs this process may use)")
    common.add_argument("--shard-rows", type=int, default=4096, help="rows per shard file (default 4096)")
    common.add_argument("--format", choices=("jpeg", "png"),
                        help="image encoding (default: png for test sets aflw2000, biwi, fsanet-npz; else jpeg)")
    common.add_argument("--max-side", type=int, help=f"downscale crops whose longer side exceeds this "
                        f"(0 keeps all; default: 0 for test sets, else {DEFAULT_MAX_SIDE})")
    common.add_argument("--overwrite", action="store_true", help="replace a prepared dataset in --out")

    sub = parser.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    for name, help_text in (("300w-lp", "300W-LP folder"), ("aflw2000", "AFLW2000 folder")):
        p = sub.add_parser(name, parents=[common], help=help_text)
        p.add_argument("--source", type=Path, required=True, help=f"the {help_text}")
        p.add_argument("--margin-k", type=float, help="crop margin: HopeNet's k (default 0.4 for 300W-LP, "
                                                      "0.2 for AFLW2000), FSA-Net's ad (0.6) or RankPose's scale (1.4)")
    p.add_argument("--crop", choices=("hopenet", "fsanet", "rankpose"), default="hopenet",
                   help="AFLW2000 test crop: HopeNet/6DRepNet's loader (default; benchmarks aflw2000, "
                        "aflw2000-6drepnet), FSA-Net's (aflw2000-fsanet) or RankPose's (aflw2000-rankpose)")
    p = sub.add_parser("biwi", parents=[common], help="BIWI from FSA-Net npz files or raw folders")
    p.add_argument("--source", type=Path, required=True, help="folder with BIWI_*.npz or video folders 01..24")
    p.add_argument("--protocol", type=int, choices=(1, 2), default=1,
                   help="1: all of BIWI as a test set; 2: 70/30 split into OUT/train and OUT/test "
                        "(raw videos: by person; npz: FSA-Net's own split)")
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
        if key.startswith("_") or key in ("command", "dataset") or value is None or value is False:
            continue
        words += [f"--{key.replace('_', '-')}"] + ([] if value is True else [str(value)])
    return shlex.join(words)


def _out_dir(args: argparse.Namespace) -> Path:
    if args.out is not None:
        return args.out
    from ldlpose.data import benchmarks
    from ldlpose.errors import ConfigError

    key = _standard_key(args)
    if key not in STANDARD_OUT:
        raise ConfigError(f"{args.dataset} has no standard folder; pass --out")
    return benchmarks.data_root(args.data_root) / STANDARD_OUT[key]


def _standard_key(args: argparse.Namespace) -> str:
    if args.dataset == "aflw2000" and args.crop != "hopenet":
        return f"aflw2000/{args.crop}"
    if args.dataset == "biwi":
        from ldlpose.data.sources.biwi import NPZ_FILES

        npz = all((args.source / name).is_file() for name in NPZ_FILES[args.protocol].values())
        return f"biwi/{args.protocol}/{'npz' if npz else 'raw'}"
    return args.dataset


def run(args: argparse.Namespace) -> int:
    from ldlpose.data import preparation
    from ldlpose.data.records import ImageOptions
    from ldlpose.data.sources import Settings
    from ldlpose.errors import ConfigError

    for name in ("workers", "shard_rows"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    lossless = args.dataset in LOSSLESS
    image_format = args.format or ("png" if lossless else "jpeg")
    max_side = args.max_side if args.max_side is not None else (0 if lossless else DEFAULT_MAX_SIDE)
    if max_side < 0:
        raise ConfigError(f"--max-side must be >= 0 (0 keeps the full resolution), got {max_side}")
    settings = Settings(workers=args.workers or preparation.default_workers(), shard_rows=args.shard_rows,
                        image=ImageOptions(format=image_format, max_side=max_side),
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

        crop = getattr(args, "crop", "hopenet")
        return {"": prepare_landmark_dataset(args.dataset, args.source, out, settings, k=args.margin_k, crop=crop)}
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
