"""Latency, parameters and MACs per backbone: what a multi-objective search trades accuracy against.

Each backbone is timed as the exported predictor (normalisation, backbone, GLDL head and decode:
ldlpose.inference.profile, the same code a multi-objective trial runs on its selected checkpoint), in
float32 evaluation mode, at each image size, batch 1 and one larger batch, after a warm-up; the
median and 90th percentile of the timed passes. Random-init weights: latency does not depend on
the weights' values.

    python bench/latency.py                                   # the five backbones at 64 and 224 px
    python bench/latency.py --threads 1 --json bench/results/latency.json
    python bench/latency.py --device cuda
    python bench/latency.py --smoke-test                      # seconds: one backbone, 32 px
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

BACKBONES = ["mobilenet_v3_small", "mobilenet_v2", "efficientnet_b0", "resnet18", "resnet50"]
SIZES = [64, 224]


def measure(backbones: list[str], sizes: list[int], device: str, batch: int, warmup: int, repeats: int) -> list[dict]:
    import torch

    from ldlpose import methods
    from ldlpose.inference.predictor import PosePredictor
    from ldlpose.inference.profile import ProfileSettings, profile_module
    from ldlpose.models import build_model

    rows = []
    settings = ProfileSettings(batch_size=batch, warmup=warmup, repeats=repeats)
    for backbone in backbones:
        for size in sizes:
            method = methods.create("gldl")
            torch.manual_seed(0)
            predictor = PosePredictor(build_model(method, backbone), method, size)
            profile = profile_module(predictor, size, torch.device(device), settings)
            rows.append({"backbone": backbone, "image_size": size, **profile})
            print(f"  {backbone} {size} px: {profile['latency_ms']:.2f} ms", file=sys.stderr, flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = [("| backbone | px | params (M) | MACs (M) | batch 1 median ms | batch 1 p90 ms | batch B median ms | "
              "batch B p90 ms | ms per image at B |"), "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        b = r["latency_batch_size"]
        lines.append(f"| {r['backbone']} | {r['image_size']} | {r['params_m']:.2f} | {r['macs_m']:,.0f} | "
                     f"{r['latency_ms']:.2f} | {r['latency_p90_ms']:.2f} | {r['latency_batch_ms']:.2f} | "
                     f"{r['latency_batch_p90_ms']:.2f} | {r['latency_batch_ms'] / b:.2f} |")
    return "\n".join(lines)


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False, capture_output=True, text=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=BACKBONES)
    parser.add_argument("--sizes", nargs="+", type=int, default=SIZES)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1: what a search trial of cpus_per_worker 1 uses)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--json", help="write the rows and the machine's description here")
    parser.add_argument("--smoke-test", action="store_true")
    args = parser.parse_args(argv)
    if args.smoke_test:
        args.backbones, args.sizes, args.warmup, args.repeats, args.batch = ["mobilenet_v3_small"], [32], 1, 3, 2
    import torch

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    rows = measure(args.backbones, args.sizes, args.device, args.batch, args.warmup, args.repeats)
    print(table(rows).replace("batch B", f"batch {args.batch}").replace("at B", f"at {args.batch}"))
    if args.json:
        info = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "commit": _commit(), "device": args.device, "device_name": rows[0]["profile_device_name"],
                "threads": args.threads, "cpus": os.cpu_count(), "torch": torch.__version__,
                "load_average_before": load_before, "load_average_after": os.getloadavg()[0],
                "warmup": args.warmup, "repeats": args.repeats, "batch": args.batch, "command": sys.argv, "rows": rows}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(info, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
