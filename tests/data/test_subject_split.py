"""Subject-disjoint validation split."""

import numpy as np
import pytest
from datafixtures import make_dataset  # noqa: F401 (fixture)
from PIL import Image

from ldlpose.data.pipeline import train_val_datasets
from ldlpose.data.shards import read_labels
from ldlpose.data.splits import rows_within, split_by_subject, split_subjects
from ldlpose.errors import ConfigError, DataError


def test_split_is_disjoint_by_subject_complete_and_seeded():
    rng = np.random.default_rng(0)
    subjects = [f"id{s}" for s in rng.integers(0, 40, 1000)]
    train, val = split_subjects(subjects, 0.2, seed=1)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(1000))
    assert not {subjects[i] for i in train} & {subjects[i] for i in val}
    assert 0.15 < len(val) / 1000 < 0.25
    again, _ = split_subjects(subjects, 0.2, seed=1)
    other, _ = split_subjects(subjects, 0.2, seed=2)
    assert np.array_equal(train, again) and not np.array_equal(train, other)


def test_bad_fractions_and_single_subjects_are_errors():
    with pytest.raises(ConfigError, match="val_fraction"):
        split_subjects(["a", "b"], 1.0)
    with pytest.raises(DataError, match="at least 2 subjects"):
        split_subjects(["a", "a"], 0.5)


def test_split_by_subject_on_a_prepared_folder(make_dataset):
    img = Image.new("RGB", (8, 8))
    items = [(img, (100.0 if i == 3 else i, 0, 0), f"p{i % 5}") for i in range(20)]
    folder = make_dataset(items)
    within = rows_within(folder, 99.0)
    assert 3 not in within and len(within) == 19
    train, val = split_by_subject(folder, 0.3, seed=0, indices=within)
    subjects = read_labels(folder)["subject"]
    assert not set(subjects[train]) & set(subjects[val])
    assert sorted(np.concatenate([train, val]).tolist()) == within.tolist()
    train_ds, val_ds = train_val_datasets(folder, image_size=16, val_fraction=0.3, max_abs_angle_deg=99.0)
    assert train_ds.rows.tolist() == train.tolist() and val_ds.rows.tolist() == val.tolist()
    assert val_ds.transform.augment is None and train_ds.transform.augment is not None
