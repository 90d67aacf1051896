"""Synthetic to real: do models trained on a generator estimate the head pose of real faces?

For each generator named, generates its training and validation data, trains the quickstart's
``start_from`` configuration (search_spaces/quickstart.yaml: its run settings with the first
start_from point applied) with ``ldlpose train`` once per training seed, and evaluates each model with
``ldlpose evaluate --benchmark aflw2000`` on real AFLW2000-3D pairs prepared from ``--dev`` (the
benchmark's filter: every |angle| <= 99). The zero predictor (0, 0, 0 for every row) is scored on
the same rows. Real faces are only ever measured here: never trained on, never used for validation.

    python bench/sim2real.py                                    # synthhead and facegen, 3 seeds, quickstart size
    python bench/sim2real.py --generators facegen --train 2000 --epochs 3 --seeds 1   # development size
    python bench/sim2real.py --zero-only                        # the zero predictor alone (seconds)

Prints a Markdown table (median and range over seeds, per angle) and writes the JSON to ``--out``.
Skips (exit 0) with a message naming the folder when the dev pairs are absent.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DEV = REPO / ".." / "shared" / "realdata" / "aflw2000-dev"
QUICKSTART = REPO / "search_spaces" / "quickstart.yaml"
ANGLES = ("yaw", "pitch", "roll")


def generators() -> dict:
    """Generator name -> function(out_dir, train, val, size, seed, workers) writing out/train, out/val.
    ``facegen-no-<ingredient>`` is facegen with one ingredient turned off (the ablation)."""
    from functools import partial

    from ldlpose.data.facegen.recipe import INGREDIENTS

    return {"synthhead": _make_synthhead, "facegen": _make_facegen,
            **{f"facegen-no-{name}": partial(_make_facegen, without=name) for name in INGREDIENTS}}


def _settings(workers: int):
    from ldlpose.data.sources import Settings

    return Settings(workers=workers, command="bench/sim2real.py")


def _make_synthhead(out: Path, train: int, val: int, size: int, seed: int, workers: int) -> None:
    from ldlpose.data import readers

    readers.get("synthhead").run(out, _settings(workers), {"train": train, "val": val, "test": 0,
                                                           "size": size, "seed": seed})


def _make_facegen(out: Path, train: int, val: int, size: int, seed: int, workers: int,
                  without: str | None = None) -> None:
    from ldlpose.data.facegen.recipe import Recipe
    from ldlpose.data.sources.synth import write_facegen

    recipe = Recipe().without(without) if without else Recipe()
    write_facegen(out, _settings(workers), {"train": train, "val": val, "test": 0}, size=size, seed=seed,
                  recipe=recipe)


def start_from_config(path: Path = QUICKSTART) -> tuple[dict, list[str]]:
    """The quickstart's run settings (its ``search`` section dropped) and ``--set`` overrides for its
    first ``start_from`` point (``method`` names the method; its hyperparameters start empty)."""
    space = yaml.safe_load(path.read_text())
    points = space.pop("search", {}).get("start_from") or []
    if not points:
        raise SystemExit(f"{path}: search.start_from is empty; sim2real trains its first point")
    overrides = []
    for key, value in points[0].items():
        if key == "method":
            space["method"] = {"name": value}
        else:
            overrides.append(f"{key}={value}")
    return space, overrides


def zero_predictor(dev_root: Path) -> dict:
    """MAE per angle of answering (0, 0, 0) on the rows the aflw2000 benchmark counts."""
    from ldlpose.data import benchmarks
    from ldlpose.data.shards import read_labels

    bench = benchmarks.get("aflw2000")
    folder = bench.resolve(dev_root)
    angles = read_labels(folder)["angles_deg"][bench.row_indices(folder)]
    mae = np.abs(angles).mean(axis=0)
    return {**dict(zip(ANGLES, map(float, mae))), "mae": float(mae.mean()), "rows": len(angles)}


def prepare_dev(source: Path, dev_root: Path) -> None:
    """``ldlpose prepare aflw2000`` of the dev pairs into ``dev_root/aflw2000`` (once)."""
    from ldlpose.data.shards import manifest_path

    if manifest_path(dev_root / "aflw2000").is_file():
        return
    _run(["ldlpose", "prepare", "aflw2000", "--source", str(source), "--out", str(dev_root / "aflw2000")])


def _run(command: list[str]) -> str:
    """Run ``command``; its stdout, or SystemExit with its tail when it fails."""
    print("$ " + " ".join(command), file=sys.stderr, flush=True)
    done = subprocess.run(command, check=False, capture_output=True, text=True, cwd=REPO)
    if done.returncode:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}\n"
                         f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def train_and_evaluate(config: Path, overrides: list[str], data_root: Path, seed: int, work: Path,
                       dev_root: Path) -> dict:
    """One ``ldlpose train`` (no tracking) and ``ldlpose evaluate`` of its selected checkpoint."""
    name = f"{config.stem}-seed{seed}"
    sets = [*overrides, f"data.root={data_root}", f"train.seed={seed}"]
    shutil.rmtree(work / "runs" / name, ignore_errors=True)  # a run of the same name would be resumed
    start = time.time()
    out = _run(["ldlpose", "train", str(config), "--no-track", "--name", name, "--storage", str(work / "runs"),
                *[a for s in sets for a in ("--set", s)]])
    trained = time.time() - start
    found = re.search(r"^selected epoch \d+ by \S+ \(([-\d.]+)\): (.+)$", out, re.M)
    if not found:
        raise SystemExit(f"no 'selected epoch' line in the output of ldlpose train:\n{out[-2000:]}")
    scores = json.loads(_run(["ldlpose", "evaluate", found.group(2).strip(), "--benchmark", "aflw2000",
                              "--data-root", str(dev_root), "--json", "--no-log",
                              "--out", str(work / "eval" / name)]))["results"][0]["metrics"]
    return {"seed": seed, "val_mae": float(found.group(1)), "train_s": round(trained, 1),
            **{a: float(scores[f"mae_{a}"]) for a in ANGLES}, "mae": float(scores["mae"])}


def summary(runs: list[dict]) -> dict:
    """Median, min and max over seeds of each angle's MAE, the mean MAE and val MAE."""
    keys = [*ANGLES, "mae", "val_mae"]
    return {k: {"median": float(np.median([r[k] for r in runs])), "min": min(r[k] for r in runs),
                "max": max(r[k] for r in runs)} for k in keys}


def markdown(result: dict) -> str:
    zero = result["zero_predictor"]
    lines = ["| model | seeds | yaw | pitch | roll | **MAE** | synthetic val MAE |", "|---|---|---|---|---|---|---|"]
    for name, gen in result["generators"].items():
        s = gen["summary"]

        def cell(k: str, s: dict = s) -> str:
            return f"{s[k]['median']:.2f} ({s[k]['min']:.2f}-{s[k]['max']:.2f})"

        lines.append(f"| {name} | {len(gen['runs'])} | {cell('yaw')} | {cell('pitch')} | {cell('roll')} | "
                     f"**{cell('mae')}** | {cell('val_mae')} |")
    lines.append(f"| zero predictor (0, 0, 0) | - | {zero['yaw']:.2f} | {zero['pitch']:.2f} | {zero['roll']:.2f} | "
                 f"**{zero['mae']:.2f}** | - |")
    size = result["size"]
    lines.append(f"\nMAE in degrees on {zero['rows']} real AFLW2000-3D dev rows: median (min-max) over training "
                 f"seeds; {size['train']} training images, {size['val']} validation, {size['epochs']} epochs.")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generators", nargs="+", default=["synthhead", "facegen"], choices=sorted(generators()))
    parser.add_argument("--seeds", type=int, default=3, help="training seeds 0 .. N-1 (default 3)")
    parser.add_argument("--epochs", type=int, help="default: the quickstart's")
    parser.add_argument("--train", type=int, default=8000, help="training images (default 8000, the quickstart's)")
    parser.add_argument("--val", type=int, default=500, help="validation images (default 500)")
    parser.add_argument("--image-size", type=int, help="generated images' and the network's input size "
                        "(default: the quickstart's data.image_size)")
    parser.add_argument("--data-seed", type=int, default=0, help="the generators' seed")
    parser.add_argument("--workers", type=int, default=2, help="generation processes")
    parser.add_argument("--dev", type=Path, default=DEFAULT_DEV, help="real AFLW2000 pairs (image*.jpg + .mat)")
    parser.add_argument("--work", type=Path, default=REPO / "bench" / "out" / "sim2real",
                        help="generated data, runs and the prepared dev set")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "sim2real.json")
    parser.add_argument("--tag", help="a label for this version of the generators' code (data and runs are kept "
                                      "per generator and tag, so an ablation's steps do not overwrite each other)")
    parser.add_argument("--zero-only", action="store_true", help="score the zero predictor only")
    args = parser.parse_args(argv)
    for name in ("seeds", "train", "val"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if args.epochs is not None and args.epochs < 1:
        parser.error("--epochs must be >= 1")
    return args


def run_generator(name: str, args: argparse.Namespace, config: Path, overrides: list[str], dev_root: Path) -> dict:
    from ldlpose.data.shards import manifest_path

    label = f"{name}-{args.tag}" if args.tag else name
    size = args.image_size
    pixels = "" if size == 64 else f"-{size}px"
    data_root = args.work / "data" / f"{label}-t{args.train}-v{args.val}-s{args.data_seed}{pixels}"
    start = time.time()
    folder = name.split("-")[0]  # facegen-no-<ingredient> writes facegen/, as the quickstart reads it
    if not manifest_path(data_root / folder / "val").is_file():
        generators()[name](data_root / folder, args.train, args.val, size, args.data_seed, args.workers)
    generated = time.time() - start
    work = args.work / label
    sets = [*overrides, f"data.train={folder}/train", f"data.val={folder}/val"]
    runs = [train_and_evaluate(config, sets, data_root, seed, work, dev_root) for seed in range(args.seeds)]
    for run in runs:
        print(f"[sim2real] {name} seed {run['seed']}: MAE {run['mae']:.2f} (val {run['val_mae']:.2f})", file=sys.stderr)
    return {"generate_s": round(generated, 1), "runs": runs, "summary": summary(runs)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.dev.is_dir():
        print(f"sim2real: skipped, the real AFLW2000 dev pairs are absent: {args.dev.resolve()} "
              "(pass --dev FOLDER holding image*.jpg and .mat pairs)")
        return 0
    dev_root = args.work / "dev"
    prepare_dev(args.dev.resolve(), dev_root)
    result: dict = {"zero_predictor": zero_predictor(dev_root), "generators": {}, "dev": str(args.dev),
                    "machine": f"{platform.node()} {platform.machine()}",
                    "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    space, overrides = start_from_config()
    epochs = args.epochs or space["train"]["epochs"]
    space["train"]["epochs"] = epochs
    args.image_size = args.image_size or space["data"]["image_size"]
    space["data"]["image_size"] = args.image_size
    space["data"]["benchmarks"] = []  # synthetic test sets are not the question here
    result["size"] = {"train": args.train, "val": args.val, "epochs": epochs, "seeds": args.seeds,
                      "image_size": args.image_size}
    result["config"] = {"base": space, "overrides": overrides}
    if not args.zero_only:
        args.work.mkdir(parents=True, exist_ok=True)
        config = args.work / "sim2real.yaml"
        config.write_text(yaml.safe_dump({**space, "name": "sim2real"}, sort_keys=False))
        for name in args.generators:
            label = f"{name}-{args.tag}" if args.tag else name
            result["generators"][label] = run_generator(name, args, config, overrides, dev_root)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
