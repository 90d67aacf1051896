"""Same-subject pair batches for RankPose-style methods, with distributed ranks."""

import numpy as np
import pytest
from datafixtures import make_dataset  # noqa: F401 (fixture)
from PIL import Image

from ldlpose.data.augment import Preprocess
from ldlpose.data.pipeline import HeadPoseDataset, set_epoch, train_loader
from ldlpose.data.samplers import PairedBatchSampler
from ldlpose.errors import ConfigError, DataError

SUBJECTS = np.repeat(np.arange(10), [2, 3, 4, 5, 1, 6, 2, 2, 3, 4])  # 32 items, one loner


def check_pairs(batch, subjects):
    assert len(batch) % 2 == 0
    for a, b in zip(batch[0::2], batch[1::2]):
        assert a != b and subjects[a] == subjects[b]


def test_every_batch_is_made_of_same_subject_pairs():
    sampler = PairedBatchSampler(SUBJECTS, 8, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 4  # 17 pairs -> 4 full batches of 4 pairs
    for batch in batches:
        check_pairs(batch, SUBJECTS)
    loner = np.flatnonzero(SUBJECTS == 4)[0]  # subject 4 has a single image: it cannot pair
    assert loner not in np.concatenate(batches)


def test_ranks_get_equal_disjoint_batches_and_epochs_reshuffle():
    per_rank = []
    for rank in range(2):
        sampler = PairedBatchSampler(SUBJECTS, 4, rank=rank, world_size=2, seed=5)
        per_rank.append(list(sampler))
        assert len(per_rank[-1]) == len(sampler) == 4
    flat = [tuple(b) for r in per_rank for b in r]
    assert len(set(flat)) == len(flat)
    sampler = PairedBatchSampler(SUBJECTS, 4, seed=5)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first


def test_errors():
    with pytest.raises(ConfigError, match="even batch size"):
        PairedBatchSampler(SUBJECTS, 5)
    with pytest.raises(DataError, match="two or more images"):
        PairedBatchSampler([0, 1, 2], 2)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_paired_loader_over_a_prepared_folder(make_dataset, num_workers):
    items = [(Image.new("RGB", (8, 8), (i, 0, 0)), (i, 0, 0), f"s{s}") for i, s in enumerate(SUBJECTS)]
    ds = HeadPoseDataset(make_dataset(items), transform=Preprocess(8))
    loader = train_loader(ds, batch_size=8, pairs=True, num_workers=num_workers, rank=1, world_size=2)
    set_epoch(loader, 3)
    batches = list(loader)
    assert len(batches) == len(loader) == 2  # 4 full batches shared by 2 ranks
    for batch in batches:
        assert batch["image"].shape == (8, 3, 8, 8)
        assert (batch["subject"][0::2] == batch["subject"][1::2]).all()
        assert (batch["index"][0::2] != batch["index"][1::2]).all()
