"""What only a GPU can check: training steps under bf16 autocast, DDP over NCCL, and the GPU input
pipeline (nvJPEG decoding and the tensor augmentation on the device).

Tests marked ``cuda`` skip only when CUDA is absent. The DDP test also runs over gloo on the CPU
(two processes), which is what ``bench/gpu.sh --dry-run`` exercises on a machine without a GPU::

    python -m pytest tests/test_cuda.py -q          # bench/gpu.sh runs this file
"""

import json

import pytest
import torch

from ldlpose import methods
from ldlpose.data.augment import Augment, Preprocess
from ldlpose.data.pipeline import HeadPoseDataset, train_loader
from ldlpose.models import build_model
from ldlpose.train.loop import train_one_epoch

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from ldlpose.cli import main

    out = tmp_path_factory.mktemp("synth") / "synthhead"
    assert main(["prepare", "synthhead", "--out", str(out), "--train", "64", "--val", "0", "--test", "0",
                 "--size", "96"]) == 0
    return out / "train"


@pytest.mark.cuda
@requires_cuda
def test_the_loop_trains_under_bf16_autocast_from_gpu_decoded_batches(synth):
    device = torch.device("cuda")
    torch.manual_seed(0)
    method = methods.create("gldl")
    model = build_model(method, "resnet18", "none").to(device)
    seen = []
    model.register_forward_hook(lambda module, args, output: seen.append((output.dtype, output.device.type)))
    loader = train_loader(HeadPoseDataset(synth, transform=Preprocess(64, Augment())), batch_size=16,
                          device=device)  # JPEG data on CUDA: nvJPEG decodes, the GPU augments
    loader.set_epoch(0)
    before = [p.detach().clone() for p in model.parameters()]
    metrics = train_one_epoch(model, method, loader, torch.optim.Adam(model.parameters(), 1e-3), device,
                              epoch=1, grad_clip=None, frozen_bn=False, world=1)
    assert seen and all(s == (torch.bfloat16, "cuda") for s in seen)  # every step ran under bf16 autocast
    assert torch.isfinite(torch.tensor(metrics["train_loss"]))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.cuda
@requires_cuda
@pytest.mark.parametrize("gpu_decode", [True, False], ids=["gpu-decode", "cpu-decode"])
def test_gpu_batches_match_cpu_batches(synth, gpu_decode):
    ds = HeadPoseDataset(synth, transform=Preprocess(64, Augment(blur_p=0.5)))
    cpu = train_loader(ds, batch_size=16, seed=4)
    gpu = train_loader(ds, batch_size=16, seed=4, device="cuda", gpu_decode=gpu_decode)
    for loader in (cpu, gpu):
        loader.set_epoch(2)
    for a, b in zip(cpu, gpu, strict=True):
        assert b["image"].device.type == "cuda" and b["image"].dtype == torch.float32
        assert torch.equal(a["index"], b["index"].cpu()) and torch.equal(a["angles_deg"], b["angles_deg"].cpu())
        difference = (a["image"] - b["image"].cpu()).abs()
        if gpu_decode:  # nvJPEG's IDCT and chroma upsampling differ from libjpeg-turbo's by a level or two
            assert difference.mean() < 0.03
        else:  # the same uint8 crops; only float arithmetic differs
            assert difference.max() < 1e-3


def _ddp_worker(rank: int, world: int, backend: str, init_file: str, out_dir: str) -> None:
    """One DDP rank: a few steps of ldlpose's epoch loop on this rank's own batches."""
    import torch.distributed as dist

    dist.init_process_group(backend, init_method=f"file://{init_file}", rank=rank, world_size=world)
    device = torch.device("cuda", rank) if backend == "nccl" else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    torch.manual_seed(0)  # the same initial weights on every rank, as the loop seeds them
    method = methods.create("gldl")
    model = build_model(method, "resnet18", "none").to(device)
    start = sum(float(p.detach().double().sum()) for p in model.parameters())
    model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[rank] if device.type == "cuda" else None)
    g = torch.Generator().manual_seed(100 + rank)  # different data on every rank
    batches = [{"image": torch.randn(4, 3, 32, 32, generator=g),
                "angles_deg": (torch.rand(4, 3, generator=g) - 0.5) * 120,
                "subject": torch.arange(4), "index": torch.arange(4)} for _ in range(3)]
    metrics = train_one_epoch(model, method, batches, torch.optim.Adam(model.parameters(), 1e-3), device,
                              epoch=1, grad_clip=1.0, frozen_bn=False, world=world)
    checksum = sum(float(p.detach().double().sum()) for p in model.module.parameters())
    with open(f"{out_dir}/rank{rank}.json", "w") as f:
        json.dump({"loss": metrics["train_loss"], "start": start, "checksum": checksum}, f)
    dist.destroy_process_group()


@pytest.mark.parametrize("backend", [
    pytest.param("gloo", id="gloo-cpu"),
    pytest.param("nccl", id="nccl-cuda", marks=[pytest.mark.cuda, requires_cuda]),
])
def test_ddp_ranks_stay_in_step(tmp_path, backend):
    import torch.multiprocessing as mp

    world = 2 if backend == "gloo" else min(2, torch.cuda.device_count())  # NCCL: one rank per GPU
    mp.spawn(_ddp_worker, args=(world, backend, str(tmp_path / "init"), str(tmp_path)), nprocs=world)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(world)]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in ranks)
    assert all(r["checksum"] == pytest.approx(ranks[0]["checksum"], rel=1e-9) for r in ranks)  # gradients averaged
    assert ranks[0]["checksum"] != pytest.approx(ranks[0]["start"], rel=1e-9)  # and it trained
    assert all(r["loss"] == ranks[0]["loss"] for r in ranks)  # the loop reports the loss averaged over ranks
