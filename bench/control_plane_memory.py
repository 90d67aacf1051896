"""Does finalising a trial leave memory behind in the driver? The finalisation alone, repeated.

bench/control_plane.py saw the search driver's memory grow about 1 MB per trial finalised. This
repeats, in one process and with nothing else running, what the driver's writing thread does per
trial (ldlpose.search.trials.finalise): a trial run started, its checkpoint exported and logged as a
model, its plots drawn and logged, the checkpoint scored on the test benchmark; and prints the
resident memory after each (after a garbage collection), and the export worker's
(ldlpose.tracking.export_worker: the model's export and logging run there since the driver kept
torch.export's leftovers). It reads a run of bench/control_plane.py
kept with ``--workdir``: its space file and one of its checkpoints.

    python bench/control_plane_memory.py --workdir /tmp/cp/main --repeats 20 [--parts model,plots,test]
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import control_plane_probe as probe  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", type=Path, required=True, help="a bench/control_plane.py run's --workdir")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--parts", default="model,plots,test")
    args = p.parse_args(argv)

    from ldlpose.data.identity import RunData
    from ldlpose.search.space import load_search_space
    from ldlpose.tracking import SearchTracker, export_worker
    from ldlpose.train.evaluation import score_checkpoint

    space_file = next(args.workdir.glob("control-plane-*.yaml"))
    space = load_search_space(str(space_file), [])
    checkpoint = next((args.workdir / "results").glob(f"{space.name}-*/checkpoint_epoch_*"))
    samples, parts = RunData.of(space.base_run.data).eval_samples(), set(args.parts.split(","))
    with probe.mlflow_server(args.workdir / f"memory-{'-'.join(sorted(parts))}") as (_, uri):
        tracker = SearchTracker(uri, "memory")
        tracker.start("", {}, "tpe", 0, {})
        for i in range(args.repeats):
            trial = f"t{i:04d}"
            tracker.trial_started(trial, {})
            if "model" in parts:
                tracker.log_trial_model(trial, checkpoint)
            if "plots" in parts:
                tracker.log_trial_artifacts(trial, checkpoint, samples)
            if "test" in parts:
                score_checkpoint(checkpoint, space.base_run.data.benchmarks)
            gc.collect()
            worker = export_worker.worker_pid()
            print(f"finalisation {i + 1}: RSS {probe.rss_mb():.1f} MB; export worker {worker}: "
                  f"{probe.rss_mb(worker) if worker else 0.0:.1f} MB", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
