"""Batches made of same-subject pairs, for methods that compare two views of one person (RankPose).

Every batch is ``[a1, b1, a2, b2, ...]``: items ``2i`` and ``2i + 1`` are two different images of
the same subject, so a loss can take ``pred[0::2]`` and ``pred[1::2]``. An epoch pairs every item
of every subject that has at least two (an odd one out pairs with a random other view of its
subject), shuffles the pairs and deals whole batches to the ranks: every rank gets the same number
of batches and no batch is shared, so it works under distributed training. Give it ``rank`` and
``world_size`` yourself, and build the DataLoader with ``batch_sampler=``; Ray Train's
``prepare_data_loader`` must then be called with ``add_dist_sampler=False`` (it would otherwise
replace the batches by single items from a DistributedSampler).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

from ldlpose.errors import ConfigError, DataError


class PairedBatchSampler(Sampler[list[int]]):
    """Batches of ``batch_size // 2`` same-subject pairs over items whose subjects are ``subject_ids``.

    Call :meth:`set_epoch` every epoch (as with DistributedSampler) for a new pairing and order.
    """

    def __init__(self, subject_ids: Sequence[int] | np.ndarray, batch_size: int, *, rank: int = 0, world_size: int = 1,
                 seed: int = 0, drop_last: bool = True):
        if batch_size < 2 or batch_size % 2:
            raise ConfigError(f"paired batches need an even batch size >= 2, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank must lie in [0, world_size = {world_size}), got {rank}")
        subjects = np.asarray(subject_ids)
        order = np.argsort(subjects, kind="stable")
        _, starts, counts = np.unique(subjects[order], return_index=True, return_counts=True)
        self._groups = [order[s:s + c] for s, c in zip(starts, counts) if c >= 2]
        if not self._groups:
            raise DataError("no subject has two or more images, so no same-subject pair can be formed; "
                            "pair-based methods need data with several images per subject")
        self.batch_size, self.rank, self.world_size = batch_size, rank, world_size
        self.seed, self.drop_last, self.epoch = seed, drop_last, 0
        self._pairs = sum((len(g) + 1) // 2 for g in self._groups)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, self.epoch])
        per_group = []
        for group in self._groups:
            items = rng.permutation(group)
            if len(items) % 2:
                partner = rng.choice(items[:-1])
                items = np.append(items, partner)
            per_group.append(items.reshape(-1, 2))
        pairs = np.concatenate(per_group)[rng.permutation(self._pairs)]
        per_batch = self.batch_size // 2
        batches = [pairs[i:i + per_batch].reshape(-1) for i in range(0, len(pairs), per_batch)]
        if self.drop_last and len(batches[-1]) < self.batch_size:
            batches.pop()
        return batches[: self._batches_per_rank(len(batches)) * self.world_size]

    def _batches_per_rank(self, total: int) -> int:
        return total // self.world_size

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self._batches()[self.rank::self.world_size]:
            yield batch.tolist()

    def __len__(self) -> int:
        per_batch = self.batch_size // 2
        total = self._pairs // per_batch if self.drop_last else -(-self._pairs // per_batch)
        return self._batches_per_rank(total)
