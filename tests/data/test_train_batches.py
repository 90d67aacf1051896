"""The one training-loader builder: what training builds, seeding by (seed, epoch), and the GPU
path run on CPU tensors (the same tensor transforms a CUDA device runs)."""

import pytest
import torch
from datafixtures import make_dataset, marker_image, marker_on_left  # noqa: F401 (fixture)
from PIL import Image

from ldlpose import methods
from ldlpose.config import run_config_from_dict
from ldlpose.data.augment import BLUR, Augment, Preprocess, gaussian_blur
from ldlpose.data.batches import Collate, TrainItems, TrainLoader, finish_on
from ldlpose.data.pipeline import HeadPoseDataset, train_loader
from ldlpose.errors import ConfigError
from ldlpose.train.data import build_loaders

YAWS = [30.0, -30.0, 50.0, -10.0, 20.0, -60.0, 5.0, -5.0, 40.0, -45.0, 15.0, -25.0]


@pytest.fixture
def marker_dir(make_dataset):
    items = [(marker_image(y, size=48), (y, 7.0, 0.5 * y), f"s{i // 2}") for i, y in enumerate(YAWS)]
    return make_dataset(items, name="markers", shard_rows=5)


def batches(loader, epoch: int) -> list[dict]:
    loader.set_epoch(epoch)
    return list(loader)


def same(a: list[dict], b: list[dict]) -> bool:
    return len(a) == len(b) and all(torch.equal(x["image"], y["image"]) and torch.equal(x["index"], y["index"])
                                    for x, y in zip(a, b))


def test_training_builds_its_loader_with_the_one_builder_and_a_tiny_set_still_trains(marker_dir):
    run = run_config_from_dict({
        "data": {"root": str(marker_dir.parent), "train": "markers", "val": "markers", "benchmarks": [],
                 "image_size": 32},
        "train": {"batch_size": 8, "epochs": 1}})
    loaders = build_loaders(run, methods.create("gldl"))
    assert isinstance(loaders.train, TrainLoader)
    assert [len(b["index"]) for b in batches(loaders.train, 0)] == [8]  # 12 items: the partial batch is dropped
    tiny = build_loaders(run_config_from_dict({**run.to_dict(), "train": {**run.to_dict()["train"], "batch_size": 16}}),
                         methods.create("gldl"))
    assert [len(b["index"]) for b in batches(tiny.train, 0)] == [12]  # smaller than one batch: still one step
    paired = build_loaders(run, methods.create("rankpose"))
    (batch,) = batches(paired.train, 0)
    assert (batch["subject"][0::2] == batch["subject"][1::2]).all()


def test_an_epoch_depends_only_on_seed_and_epoch(marker_dir):
    ds = HeadPoseDataset(marker_dir, transform=Preprocess(32, Augment()))
    uninterrupted = train_loader(ds, batch_size=4, num_workers=2, seed=7)  # persistent workers
    first, second = batches(uninterrupted, 0), batches(uninterrupted, 1)
    resumed = train_loader(ds, batch_size=4, num_workers=0, seed=7)  # fresh, starts at epoch 1, no workers
    assert same(batches(resumed, 1), second)
    assert not same(first, second)  # a new order and new augmentation every epoch
    other_seed = train_loader(ds, batch_size=4, seed=8)
    assert not same(batches(other_seed, 1), second)


@pytest.mark.parametrize("decode", [True, False], ids=["uint8 batches", "encoded batches"])
def test_the_gpu_path_on_cpu_tensors_gives_the_cpu_batches(marker_dir, decode):
    """A loader with a device: what runs on CUDA (decode_jpeg on a batch, crop, finish), on the CPU."""
    ds = HeadPoseDataset(marker_dir, transform=Preprocess(32, Augment(blur_p=0.5)))
    on_cpu = batches(train_loader(ds, batch_size=4, seed=2), 3)
    on_device = batches(train_loader(ds, batch_size=4, seed=2, num_workers=2, device="cpu", gpu_decode=not decode), 3)
    assert "encoded" not in on_device[0]
    assert any((b["draws"][:, BLUR] < 0.5).any() for b in on_cpu)  # blur is exercised
    for a, b in zip(on_cpu, on_device, strict=True):
        assert torch.equal(a["index"], b["index"]) and torch.equal(a["angles_deg"], b["angles_deg"])
        assert torch.allclose(a["image"], b["image"], atol=1e-5)


def test_flipped_batches_keep_labels_and_pixels_consistent(marker_dir):
    ds = HeadPoseDataset(marker_dir, transform=Preprocess(32, Augment(brightness=0.0, contrast=0.0,
                                                                      saturation=0.0, blur_p=0.0)))
    items = TrainItems(ds, seed=0, decode=False)
    flipped = 0
    for epoch in range(4):
        encoded = Collate(ds.transform, finish=False)([items[(epoch, i)] for i in range(len(items))])
        for staged in (Collate(ds.transform, finish=True)([items.base.staged(i, encoded["draws"][i])
                                                           for i in range(len(items))]),
                       finish_on(encoded, ds.transform, torch.device("cpu"))):
            for image, angles in zip(staged["image"], staged["angles_deg"]):
                assert marker_on_left(image) == (angles[0] > 0)
        flipped += int((encoded["angles_deg"][:, 0] != torch.tensor(YAWS)).sum())
    assert 0 < flipped < 4 * len(YAWS)


def test_blur_is_a_gaussian_on_cpu_and_batched_alike():
    import torchvision.transforms.v2.functional as tvf

    x = torch.rand(3, 3, 40, 40, generator=torch.Generator().manual_seed(0)) * 255
    sigma = torch.tensor([0.6, 1.5, 2.5])
    shifted, batched = gaussian_blur(x, sigma, batched=False), gaussian_blur(x, sigma, batched=True)
    assert torch.allclose(shifted, batched, atol=1e-3)
    radius = 8  # 3 sigma of the largest: every image of the batch uses this support
    for i in range(3):
        expected = tvf.gaussian_blur(x[i], [2 * radius + 1] * 2, [float(sigma[i])] * 2)  # reflect padding too
        assert torch.allclose(shifted[i], expected, atol=1e-2)
    assert torch.allclose(shifted.mean((2, 3)), x.mean((2, 3)), rtol=0.02)  # brightness is kept


def test_png_data_trains_too(make_dataset):
    """Test sets and ``--format png`` folders: torchvision decodes PNG for the same uint8 path."""
    items = [(Image.new("RGB", (24, 24), (40 * i, 90, 200)), (0.0, 0.0, 0.0), f"s{i}") for i in range(4)]
    plain = Augment(brightness=0.0, contrast=0.0, saturation=0.0, blur_p=0.0)
    ds = HeadPoseDataset(make_dataset(items, image_format="png"), transform=Preprocess(16, plain))
    assert ds.image_format == "png"
    (batch,) = batches(train_loader(ds, batch_size=4, device="cpu"), 0)  # decoded by the workers on CUDA too
    assert batch["image"].shape == (4, 3, 16, 16)
    red = batch["image"][:, 0] * 0.229 + 0.485  # back to [0, 1]: lossless, so exact up to rounding
    assert torch.allclose(red, (batch["index"].float() * 40 / 255).view(4, 1, 1).expand(4, 16, 16), atol=1e-5)
    with pytest.raises(ConfigError, match="gpu_decode needs JPEG images"):
        train_loader(ds, batch_size=4, device="cpu", gpu_decode=True)
