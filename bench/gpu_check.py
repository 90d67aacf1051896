"""The GPU check behind ``bench/gpu.sh``: one JSON answering three questions on one GPU machine.

1. Do the CUDA tests pass (``tests/test_cuda.py``: bf16 autocast through the loop, DDP over NCCL,
   GPU-decoded batches against CPU ones)?
2. How many ResNet-50 training images per second at 224 px does ldlpose's loop reach, fed by its
   input pipeline, against a bare channels-last bf16 loop on synthetic on-GPU tensors? (Also
   ldlpose's loop on the same synthetic tensors, which separates the loop from the pipeline.) And
   what does each of the loop's fast paths (``train.accel``: channels-last, cuDNN autotuning,
   torch.compile) buy: the loop on synthetic tensors with each switch alone, with none, with the
   defaults ("auto") and with the defaults plus compile, side by side in one run.
3. Does the input pipeline keep up with the bare loop when it may use every core: the GPU-decode
   path (nvJPEG; the CPU only slices bytes) and the CPU-decode path (all cores decode and crop)?

``--dry-run`` runs the same code on the CPU with tiny sizes (ResNet-18 at 32 px, a few steps), DDP
over gloo, and both GPU paths of the pipeline on CPU tensors (``device="cpu"``): it shows that the
check works, not how fast anything is. It leaves out the compiled variants (compiling takes
minutes on a CPU) unless ``--compile`` asks for them.

    python bench/gpu_check.py --json gpu_check.json
    python bench/gpu_check.py --dry-run --json gpu_check.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Sizes:
    backbone: str
    image_size: int
    stored: int
    images: int  # prepared synthhead training images
    batch: int
    warmup_steps: int
    steps: int


GPU = Sizes("resnet50", 224, 256, 2048, 128, 15, 40)
DRY = Sizes("resnet18", 32, 64, 48, 8, 1, 3)


def run_tests(out: Path, timeout_s: int) -> dict:
    """tests/test_cuda.py in a fresh process; per test: passed, failed or skipped (with the reason)."""
    report = out / "junit.xml"
    started = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", "tests/test_cuda.py", "-q", "-p", "no:cacheprovider",
                               f"--junitxml={report}"], cwd=REPO, check=False, capture_output=True, text=True,
                              timeout=timeout_s)
        code, tail = proc.returncode, proc.stdout[-3000:] + proc.stderr[-2000:]
    except subprocess.TimeoutExpired as e:
        code, tail = "timeout", str(e.stdout or "")[-3000:]
    cases = {}
    if report.exists():
        for case in ET.parse(report).getroot().iter("testcase"):
            outcome = next(((c.tag, c.get("message", "")) for c in case if c.tag in ("failure", "error", "skipped")),
                           ("passed", ""))
            cases[case.get("name")] = {"outcome": {"failure": "failed", "error": "failed"}.get(outcome[0], outcome[0]),
                                       "message": outcome[1][:300]}
    return {"exit_code": code, "seconds": round(time.perf_counter() - started, 1), "cases": cases,
            "passed": code == 0, "output_tail": tail if code != 0 else ""}


def prepare(root: Path, sizes: Sizes) -> Path:
    from ldlpose.cli import main

    out = root / "synthhead"
    assert main(["prepare", "synthhead", "--out", str(out), "--train", str(sizes.images), "--val", "0",
                 "--test", "0", "--size", str(sizes.stored)]) == 0
    return out / "train"


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_loop(device, sizes: Sizes) -> float:
    """Images/s of a bare loop: torchvision model, channels-last, bf16 autocast, SGD, on-device tensors."""
    import torch
    import torchvision

    torch.manual_seed(0)
    model = getattr(torchvision.models, sizes.backbone)(weights=None).to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(sizes.batch, 3, sizes.image_size, sizes.image_size, device=device)
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (sizes.batch,), device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def step():
        with autocast:
            loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(sizes.warmup_steps):
        step()
    _sync(device)
    started = time.perf_counter()
    for _ in range(sizes.steps):
        step()
    _sync(device)
    return sizes.steps * sizes.batch / (time.perf_counter() - started)


# ldlpose's loop with its fast paths (train.accel) one at a time; "auto" is what a run does by default.
SWITCHES = {
    "none": {"channels_last": False, "cudnn_benchmark": False},
    "channels_last": {"channels_last": True, "cudnn_benchmark": False},
    "cudnn_benchmark": {"channels_last": False, "cudnn_benchmark": True},
    "compile": {"channels_last": False, "cudnn_benchmark": False, "compile": True},
    "auto": {},
    "auto+compile": {"compile": True},
}


def ldlpose_loop(device, sizes: Sizes, loader_or_batches, accel: dict | None = None,
                 timings: dict | None = None) -> float:
    """Images/s of ldlpose's ``train_one_epoch`` (its autocast, loss, all-reduce checks) over one
    epoch of ``loader_or_batches``, after a warm-up epoch, with the fast paths ``accel`` (a
    ``train.accel`` mapping, applied as the loop's setup applies it; default: "auto").
    ``timings`` receives the warm-up epoch's seconds (compiling happens there)."""
    import torch

    from ldlpose import methods
    from ldlpose.config import AccelConfig
    from ldlpose.models import build_model
    from ldlpose.train import accel as fast_paths
    from ldlpose.train.loop import train_one_epoch

    switches = fast_paths.resolve(AccelConfig(**(accel or {})), device)
    fast_paths.set_backend(switches)
    torch.manual_seed(0)
    method = methods.create("gldl")
    model = fast_paths.to_memory_format(build_model(method, sizes.backbone, "none").to(device), switches)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    if switches.compile_mode is not None:
        import torch._dynamo

        torch._dynamo.reset()  # each variant compiles its own network from scratch
    model = fast_paths.compiled(model, switches, device)
    rates = []
    for epoch in range(2):
        if hasattr(loader_or_batches, "set_epoch"):
            loader_or_batches.set_epoch(epoch)
        _sync(device)
        started = time.perf_counter()
        train_one_epoch(model, method, loader_or_batches, optimizer, device, epoch=epoch + 1, grad_clip=None,
                        frozen_bn=False, world=1)
        _sync(device)
        rates.append(len(loader_or_batches) * sizes.batch / (time.perf_counter() - started))
        if timings is not None and epoch == 0:
            timings["warmup_epoch_s"] = round(time.perf_counter() - started, 2)
    return rates[-1]


def switch_rates(device, sizes: Sizes, batches, names) -> dict:
    """Images/s of ldlpose's loop on the same batches for each of ``names`` (keys of SWITCHES), the
    warm-up epoch's seconds, and the ratio to the loop with no switch on; cuDNN's flag restored after."""
    import torch

    flag = torch.backends.cudnn.benchmark
    table: dict[str, dict] = {}
    try:
        for name in names:
            timings: dict = {}
            rate = ldlpose_loop(device, sizes, batches, SWITCHES[name], timings)
            table[name] = {"images_per_s": rate, **timings}
    finally:
        torch.backends.cudnn.benchmark = flag
    return over_none(table)


def over_none(table: dict) -> dict:
    """Each row's images/s over the loop's with no switch on (when that was measured)."""
    if "none" in table:
        for row in table.values():
            row["over_none"] = row["images_per_s"] / table["none"]["images_per_s"]
    return table


def synthetic_batches(device, sizes: Sizes) -> list[dict]:
    import torch

    g = torch.Generator().manual_seed(0)
    return [{"image": torch.randn(sizes.batch, 3, sizes.image_size, sizes.image_size, generator=g).to(device),
             "angles_deg": ((torch.rand(sizes.batch, 3, generator=g) - 0.5) * 160).to(device),
             "subject": torch.zeros(sizes.batch, dtype=torch.long, device=device),
             "index": torch.arange(sizes.batch, device=device)} for _ in range(sizes.steps)]


def loader_rate(loader, device, batches: int) -> float:
    """Images/s of a loader alone (batches delivered on ``device``), after one warm-up batch."""
    done, epoch, images, started = -1, 0, 0, None
    while done < batches:
        loader.set_epoch(epoch)
        for batch in loader:
            if done == -1:
                _sync(device)
                started = time.perf_counter()
            else:
                images += len(batch["index"])
            done += 1
            if done == batches:
                break
        epoch += 1
    _sync(device)
    return images / (time.perf_counter() - started)


def pipeline(folder: Path, device, sizes: Sizes, workers: int, gpu_decode: bool):
    from ldlpose.data.pipeline import Augment, HeadPoseDataset, Preprocess, train_loader

    dataset = HeadPoseDataset(folder, transform=Preprocess(sizes.image_size, Augment()))
    return train_loader(dataset, batch_size=sizes.batch, num_workers=workers, device=device, gpu_decode=gpu_decode)


def machine(device) -> dict:
    import torch

    info = {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
            "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "git_commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, check=False,
                                         capture_output=True, text=True).stdout.strip(), "device": str(device)}
    if device.type == "cuda":
        info.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda,
                    nccl=".".join(map(str, torch.cuda.nccl.version())))
    return info


def measure(result: dict, device, sizes: Sizes, workers: int, tmp: Path) -> None:
    """Questions 2 and 3 into ``result``: the bare loop, ldlpose's loop on synthetic batches and fed by
    its pipeline (both with the default fast paths), and the pipeline alone."""
    folder = prepare(tmp, sizes)
    rates = {"bare_channels_last_bf16": bare_loop(device, sizes),
             "ldlpose_loop_synthetic_batches": ldlpose_loop(device, sizes, synthetic_batches(device, sizes))}
    train = pipeline(folder, device, sizes, workers, gpu_decode=True)
    rates["ldlpose_loop_with_pipeline"] = ldlpose_loop(device, sizes, train)
    del train
    feeds = {}
    for name, decode in (("gpu_decode", True), ("cpu_decode_all_cores", False)):
        loader = pipeline(folder, device, sizes, workers, gpu_decode=decode)
        feeds[name] = loader_rate(loader, device, sizes.steps)
        del loader
    bare = rates["bare_channels_last_bf16"]
    result["training_images_per_s"] = rates
    result["ldlpose_over_bare"] = rates["ldlpose_loop_with_pipeline"] / bare
    result["pipeline_images_per_s"] = {"workers": workers, **feeds}
    result["pipeline_keeps_up"] = {name: rate >= bare for name, rate in feeds.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes, gloo: check that the check works")
    p.add_argument("--json", type=Path, default=Path("gpu_check.json"))
    p.add_argument("--tests-timeout", type=int, default=180, help="seconds for tests/test_cuda.py")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="measure the torch.compile variants (default: on a GPU yes, in a dry run no)")
    args = p.parse_args(argv)

    import torch

    if not args.dry_run and not torch.cuda.is_available():
        print("no CUDA device: run with --dry-run on a CPU machine", file=sys.stderr)
        return 2
    device = torch.device("cpu") if args.dry_run else torch.device("cuda", 0)
    sizes = DRY if args.dry_run else GPU
    workers = 2 if args.dry_run else max(1, (os.cpu_count() or 2) - 1)  # leave the training process a core
    if args.dry_run:
        torch.set_num_threads(1)
    result = {"dry_run": args.dry_run, "machine": machine(device), "sizes": sizes.__dict__}
    with tempfile.TemporaryDirectory() as tmp:
        result["tests"] = run_tests(Path(tmp), args.tests_timeout)
        print(f"tests/test_cuda.py: {result['tests']['cases']}", flush=True)
        measure(result, device, sizes, workers, Path(tmp))
    args.json.write_text(json.dumps(result, indent=2))
    # Last, and written after each variant: compiling is the slowest part, and a check stopped by its
    # time limit keeps every figure measured before.
    compile_too = not args.dry_run if args.compile is None else args.compile
    batches, result["ldlpose_loop_switches"] = synthetic_batches(device, sizes), {}
    for name in [n for n in SWITCHES if compile_too or "compile" not in n]:
        result["ldlpose_loop_switches"].update(switch_rates(device, sizes, batches, [name]))
        args.json.write_text(json.dumps(result, indent=2))
    over_none(result["ldlpose_loop_switches"])
    args.json.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("training_images_per_s", "ldlpose_over_bare", "ldlpose_loop_switches",
                                             "pipeline_images_per_s", "pipeline_keeps_up")}, indent=2))
    print(f"wrote {args.json}")
    return 0 if result["tests"]["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
