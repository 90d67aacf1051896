"""The torch Dataset over shards: item format, flip consistency, workers, distributed sampling."""

import pickle

import numpy as np
import pytest
import torch
from datafixtures import make_dataset, marker_image, marker_on_left, two_colour_image  # noqa: F401 (fixture)
from torch.utils.data import DataLoader, DistributedSampler

from ldlpose.data.augment import Augment, Preprocess
from ldlpose.data.pipeline import HeadPoseDataset, eval_loader, set_epoch, train_loader
from ldlpose.errors import ConfigError

NO_PHOTOMETRIC = {"brightness": 0.0, "contrast": 0.0, "saturation": 0.0, "blur_p": 0.0}


@pytest.fixture
def marker_dir(make_dataset):
    yaws = [30.0, -30.0, 50.0, -10.0, 20.0, -60.0, 5.0, -5.0]
    items = [(marker_image(y), (y, 7.0, 0.5 * y), f"s{i // 2}") for i, y in enumerate(yaws)]
    return make_dataset(items, name="markers", shard_rows=3)


def test_items_are_dicts_of_the_documented_types(marker_dir):
    ds = HeadPoseDataset(marker_dir, transform=Preprocess(32))
    item = ds[1]
    assert set(item) == {"image", "angles_deg", "subject", "index"}
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    assert item["angles_deg"].dtype == torch.float32 and item["angles_deg"].tolist() == [-30.0, 7.0, -15.0]
    assert item["subject"].dtype == torch.int64 and item["subject"].item() == 0
    assert item["index"].item() == 1
    assert list(ds.subject_names) == ["s0", "s1", "s2", "s3"]


def test_normalisation_is_rgb_imagenet(make_dataset):
    folder = make_dataset([(two_colour_image(32, 32), (0, 0, 0), "a")])
    x = HeadPoseDataset(folder, transform=Preprocess(32))[0]["image"]
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    red = (torch.tensor([1.0, 0.0, 0.0]) - mean) / std
    assert torch.allclose(x[:, 16, 4], red, atol=0.05)  # left half red, in RGB channel order


def test_flipped_labels_match_the_flipped_image(marker_dir):
    flip_all = HeadPoseDataset(marker_dir, transform=Preprocess(32, Augment(flip_p=1.0, **NO_PHOTOMETRIC)))
    plain = HeadPoseDataset(marker_dir, transform=Preprocess(32))
    for i in range(len(plain)):
        a, b = plain[i], flip_all[i]
        assert marker_on_left(a["image"]) == (a["angles_deg"][0] > 0)
        assert marker_on_left(b["image"]) == (b["angles_deg"][0] > 0)  # the convention survives the flip
        assert marker_on_left(b["image"]) != marker_on_left(a["image"])
        assert b["angles_deg"].tolist() == [-a["angles_deg"][0], a["angles_deg"][1], -a["angles_deg"][2]]


def test_random_flips_stay_consistent_through_a_loader(marker_dir):
    torch.manual_seed(0)
    ds = HeadPoseDataset(marker_dir, transform=Preprocess(32, Augment(**NO_PHOTOMETRIC)))
    flipped = 0
    for _ in range(6):
        for item in (ds[i] for i in range(len(ds))):
            assert marker_on_left(item["image"]) == (item["angles_deg"][0] > 0)
            flipped += item["angles_deg"][0].item() != ds.angles_deg[item["index"].item()][0]
    assert 0 < flipped < 48  # both outcomes happened


def test_evaluation_is_deterministic_and_workers_agree(marker_dir):
    ds = HeadPoseDataset(marker_dir, transform=Preprocess(32))
    batches = [next(iter(eval_loader(ds, batch_size=8, num_workers=w))) for w in (0, 2)]
    assert torch.equal(batches[0]["image"], batches[1]["image"])
    assert batches[0]["index"].tolist() == list(range(8))


def test_training_loader_with_workers_and_a_seed(marker_dir):
    ds = HeadPoseDataset(marker_dir, transform=Preprocess(32, Augment()))
    runs = []
    for _ in range(2):
        loader = train_loader(ds, batch_size=4, num_workers=2, seed=3)
        set_epoch(loader, 0)
        runs.append(list(loader))
    assert [len(b["index"]) for b in runs[0]] == [4, 4]
    assert runs[0][0]["image"].shape == (4, 3, 32, 32) and runs[0][0]["image"].dtype == torch.float32
    assert torch.equal(runs[0][0]["image"], runs[1][0]["image"])  # seeded: augmentation repeats
    assert sorted(torch.cat([b["index"] for b in runs[0]]).tolist()) == list(range(8))


@pytest.mark.parametrize("num_workers", [0, 2])
def test_distributed_sampler_splits_items_across_ranks(marker_dir, num_workers):
    ds = HeadPoseDataset(marker_dir, transform=Preprocess(16, Augment()))
    seen = []
    for rank in range(2):
        loader = train_loader(ds, batch_size=2, num_workers=num_workers, rank=rank, world_size=2, seed=1)
        seen.append(torch.cat([b["index"] for b in loader]).tolist())
    assert len(seen[0]) == len(seen[1]) == 4 and not set(seen[0]) & set(seen[1])
    # A plain DistributedSampler over the dataset itself, as Ray Train's prepare_data_loader adds, works too.
    plain = DataLoader(ds, batch_size=2, sampler=DistributedSampler(ds, num_replicas=2, rank=1))
    assert sum(len(b["index"]) for b in plain) == 4


def test_subset_indices_and_pickling_for_spawned_workers(marker_dir):
    ds = HeadPoseDataset(marker_dir, indices=[5, 2], transform=Preprocess(16))
    assert len(ds) == 2 and ds[0]["index"].item() == 5 and ds[1]["angles_deg"][0].item() == 50.0
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._images is None
    assert torch.equal(clone[0]["image"], ds[0]["image"])
    with pytest.raises(ConfigError, match="row indices"):
        HeadPoseDataset(marker_dir, indices=[8])


def test_augmentation_settings_are_checked():
    with pytest.raises(ConfigError, match=r"Augment\.scale"):
        Augment(scale=(0.9, 1.2))
    with pytest.raises(ConfigError, match="image size"):
        Preprocess(4)


def test_jpeg_draft_decoding_keeps_labels_and_shape(make_dataset):
    big = two_colour_image(256, 256)
    folder = make_dataset([(big, (10, 0, 0), "a")])
    item = HeadPoseDataset(folder, transform=Preprocess(64, Augment(**NO_PHOTOMETRIC, flip_p=0)))[0]
    assert item["image"].shape == (3, 64, 64)
    assert np.isclose(item["angles_deg"][0].item(), 10.0)


def test_colour_jitter_matches_torchvision_definitions():
    import torchvision.transforms.functional as tvf

    from ldlpose.data.augment import IMAGENET_MEAN, IMAGENET_STD, _jitter_normalise

    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.2  # no clipping
    factors = [(1.1, 0.85, 1.2), (0.8, 1.2, 0.9)]
    got = x * 255
    _jitter_normalise(got, *(torch.tensor(f).view(2, 1, 1, 1) for f in zip(*factors)))
    for i, (b, c, s) in enumerate(factors):
        expected = tvf.adjust_saturation(tvf.adjust_contrast(tvf.adjust_brightness(x[i], b), c), s)
        assert torch.allclose(got[i], tvf.normalize(expected, IMAGENET_MEAN, IMAGENET_STD), atol=1e-4)


def test_training_items_match_the_evaluation_transform_when_nothing_is_drawn(marker_dir):
    """Crop 1.0, no shift, flip, blur or jitter: the training path (torchvision, tensors) gives the
    evaluation transform's pixels (Pillow)."""
    still = Augment(scale=(1.0, 1.0), shift=0.0, flip_p=0.0, **NO_PHOTOMETRIC)
    for size in (32, 48):  # 32: both decode at half scale (libjpeg draft); 48: both resize 64 -> 48
        ds = HeadPoseDataset(marker_dir, transform=Preprocess(size, still))
        plain = HeadPoseDataset(marker_dir, transform=Preprocess(size))
        for i in range(3):
            # torchvision's antialiased uint8 resize reproduces Pillow's, pixel for pixel
            assert torch.allclose(ds[i]["image"], plain[i]["image"], atol=1e-5)


def test_random_crops_keep_the_scale_and_stay_inside_the_image():
    aug = Augment(scale=(0.5, 0.8), shift=1.0)
    draws = torch.rand(200, 9, generator=torch.Generator().manual_seed(1))
    for d in draws:
        x0, y0, side = aug.box(100, 60, d)
        assert 30 <= side <= 48 and 0 <= x0 <= 100 - side and 0 <= y0 <= 60 - side
    sides = [aug.box(100, 60, d)[2] for d in draws]
    assert min(sides) < 33 and max(sides) > 45  # the whole range is used
