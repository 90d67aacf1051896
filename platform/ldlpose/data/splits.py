"""Row selections over a prepared dataset: subject-disjoint validation split and angle filters.

Model selection must use data held out from training (docs/methods.md#pitfalls, 13), and held out **by subject**:
300W-LP has up to ~18 synthesised views (and a mirror) of each face, so a row split would validate
on near-copies of training images.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ldlpose.data.shards import read_labels
from ldlpose.errors import ConfigError, DataError

# The seed of every run's subject-disjoint validation split (data.val: null). Fixed, never train.seed:
# a confirmation seed or a searched seed must change training only, so that every trial of a search
# is ranked on the same validation rows. 0 is the seed those splits used by default before
# (train.seed: 0), so default runs keep their validation rows and their selection content hashes.
VAL_SPLIT_SEED = 0


def split_subjects(subjects: Sequence[str] | np.ndarray, val_fraction: float,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Positions (train, val) into ``subjects``, with no subject on both sides.

    Subjects are shuffled with ``seed`` and taken for validation until their rows come closest to
    ``val_fraction`` of all rows (at least one subject on each side).
    """
    if not 0 < val_fraction < 1:
        raise ConfigError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
    names, inverse, counts = np.unique(np.asarray(subjects, dtype=object).astype(str),
                                       return_inverse=True, return_counts=True)
    if len(names) < 2:
        raise DataError(f"a subject-disjoint split needs at least 2 subjects, found {len(names)}")
    order = np.random.default_rng(seed).permutation(len(names))
    cumulative = np.cumsum(counts[order])
    n_val = int(np.argmin(np.abs(cumulative - val_fraction * len(inverse)))) + 1
    n_val = min(max(n_val, 1), len(names) - 1)
    is_val = np.isin(inverse, order[:n_val])
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def split_by_subject(dataset_dir, val_fraction: float = 0.1, seed: int = 0,
                     indices: Sequence[int] | np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, val) of a prepared dataset, disjoint by subject.

    ``indices`` restricts the split to those rows (e.g. after an angle filter); the result still
    holds row indices of the dataset, sorted.
    """
    subjects = read_labels(dataset_dir)["subject"]
    rows = np.arange(len(subjects)) if indices is None else np.asarray(indices, dtype=np.int64)
    train, val = split_subjects(subjects[rows], val_fraction, seed)
    return np.sort(rows[train]), np.sort(rows[val])


def rows_within(dataset_dir, max_abs_angle_deg: float) -> np.ndarray:
    """Row indices whose yaw, pitch and roll all satisfy |angle| <= ``max_abs_angle_deg``."""
    angles = read_labels(dataset_dir)["angles_deg"]
    return np.flatnonzero((np.abs(angles) <= max_abs_angle_deg).all(axis=1))
