"""How long `ldlpose prepare synthhead` takes for the default benchmark sizes (2000/500/500 at 64 px).

The bound the data layer was built to: under a minute. It is judged on CPU seconds divided by the
workers, because wall time on a shared machine measures the other jobs too; both are printed. This
was a test until issue 27 (a test must not depend on how fast the machine is): the figure lives here.

    python bench/prepare_time.py                          # 2000/500/500 at 64 px, the default workers
    python bench/prepare_time.py --workers 1 --json out.json
    python bench/prepare_time.py --smoke-test             # 16/8/8: checks the script runs
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BOUND_S = 60.0  # CPU seconds per worker for 2000/500/500


def measure(out: Path, counts: dict[str, int], size: int = 64, workers: int | None = None) -> dict:
    """Prepare synthhead with ``counts`` (split -> rows) into ``out`` in a child process: its wall
    time, its CPU time (user + system, the child and its workers) and the rows each split got."""
    from ldlpose.data.preparation import default_workers
    from ldlpose.data.shards import read_manifest

    workers = workers or default_workers()
    command = [str(Path(sys.executable).parent / "ldlpose"), "prepare", "synthhead", "--out", str(out),
               "--size", str(size), "--workers", str(workers)]
    for split, count in counts.items():
        command += [f"--{split}", str(count)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited with {done.returncode}:\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rows = {split: read_manifest(out / split)["rows"] for split, count in counts.items() if count}
    return {"rows": rows, "size": size, "workers": workers, "wall_s": wall, "cpu_s": cpu,
            "cpu_s_per_worker": cpu / workers}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, help="default: the CPUs this process may use")
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--smoke-test", action="store_true", help="16/8/8 images: checks the script runs")
    args = p.parse_args(argv)
    counts = {"train": 16, "val": 8, "test": 8} if args.smoke_test else {"train": 2000, "val": 500, "test": 500}
    with tempfile.TemporaryDirectory(prefix="ldlpose-prepare-time-") as folder:
        result = measure(Path(folder) / "synthhead", counts, workers=args.workers)
    print(f"synthhead {'/'.join(map(str, counts.values()))} at {result['size']} px: {result['wall_s']:.1f} s wall, "
          f"{result['cpu_s']:.1f} CPU s on {result['workers']} workers = {result['cpu_s_per_worker']:.1f} s per worker")
    if not args.smoke_test:  # the bound is for the full sizes only
        result["within_bound"] = result["cpu_s_per_worker"] < BOUND_S
        print(f"bound: {BOUND_S:.0f} CPU s per worker: {'met' if result['within_bound'] else 'MISSED'}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
