"""Training batches: the one loader builder (:func:`train_loader`) and where augmentation runs.

Training, the tests and the benchmarks all build their training loaders here. A batch is::

    {"image": float32 (B, 3, S, S) normalised, "angles_deg": (B, 3), "subject": (B,), "index": (B,),
     "draws": (B, DRAWS) the random numbers of each item's augmentation}

Each item's draws depend only on ``(seed, epoch, row)``: the sampler tags every index with the
epoch, and the item derives its own generator from the three. So an epoch's augmentation is the
same with 0 or 8 loader workers, with persistent workers, and after a resume at that epoch.

Where the work runs (``ldlpose.data.augment`` has the two stages):

* CPU (no device): the workers decode, crop and flip each item in uint8 and finish the batch
  (blur, jitter, normalise) in the collate.
* GPU, images decoded by the CPU (``gpu_decode=False``, or PNG data): the workers decode, crop
  and flip; the uint8 batch (a quarter of the float bytes) is copied to the GPU and finished there.
* GPU, images decoded by the GPU (the default for JPEG data on CUDA): the workers only slice out
  the encoded bytes and draw; the GPU decodes the batch (nvJPEG), crops, flips and finishes it.

Given ``device="cpu"``, the two GPU paths run on CPU tensors: that is how the tests check them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, Subset, get_worker_info

from ldlpose.data.augment import DRAWS
from ldlpose.data.samplers import PairedBatchSampler
from ldlpose.errors import ConfigError

if TYPE_CHECKING:
    from ldlpose.data.dataset import HeadPoseDataset

__all__ = ["TrainItems", "TrainLoader", "draws_for", "train_loader"]

ENCODED = ("encoded", "encoded_sizes")  # the keys of a batch whose GPU decodes it: bytes, stay on the host


def train_loader(dataset, *, batch_size: int = 64, num_workers: int = 0, pairs: bool = False, rank: int = 0,
                 world_size: int = 1, seed: int = 0, device: torch.device | str | None = None,
                 gpu_decode: bool | None = None) -> TrainLoader:
    """Shuffled training batches of ``dataset`` (a HeadPoseDataset with an augmenting transform, or a
    Subset of one); ``pairs=True`` makes each batch same-subject pairs (``needs_pairs`` methods).

    Each rank reads its own part: a seeded DistributedSampler (also for one rank, so the order of
    epoch ``e`` depends only on ``(seed, e)``), or the paired sampler's own sharding. The last
    partial batch is dropped unless a rank's share is smaller than one batch (a tiny set still
    trains). ``device``: where the batch stage runs and batches are delivered (default: in the
    collate, on the CPU; a GPU for GPU training). ``gpu_decode``: the device also decodes (default:
    on CUDA, for JPEG data). Call ``set_epoch`` every epoch.
    """
    device = None if device is None else torch.device(device)
    decode_on_device = _decodes_on_device(dataset, device, gpu_decode)
    items = TrainItems(dataset, seed=seed, decode=not decode_on_device)
    drop_last = len(items) // world_size >= batch_size  # a set smaller than one batch still trains
    sampler: PairedBatchSampler | DistributedSampler
    if pairs:
        sampler = PairedBatchSampler(items.subject_ids, batch_size, rank=rank, world_size=world_size,
                                     seed=seed, drop_last=drop_last)
    else:
        sampler = DistributedSampler(items, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
    return TrainLoader(items, EpochTagged(sampler), batch_size=None if pairs else batch_size,
                       drop_last=drop_last, num_workers=num_workers, device=device)


def _decodes_on_device(dataset, device: torch.device | None, gpu_decode: bool | None) -> bool:
    if device is None:
        return False
    base, _ = _unwrap(dataset)
    if gpu_decode is None:
        return device.type == "cuda" and base.image_format == "jpeg"
    if gpu_decode and base.image_format != "jpeg":
        raise ConfigError(f"gpu_decode needs JPEG images; {base.dataset_dir} holds {base.image_format}: "
                          "pass gpu_decode=False (the loader workers decode) or prepare it with --format jpeg")
    return gpu_decode


class TrainItems(Dataset):
    """The training view of a HeadPoseDataset (or a Subset of one): ``items[(epoch, i)]`` is item
    ``i`` after the per-item stage of augmentation, with the draws :func:`draws_for` gives it."""

    def __init__(self, dataset, *, seed: int, decode: bool = True):
        self.base, self.positions = _unwrap(dataset)
        self.seed, self.decode = seed, decode
        self.preprocess = self.base.transform

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def subject_ids(self) -> np.ndarray:
        return self.base.subject_ids[self.positions]

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        if not isinstance(key, tuple):
            raise TypeError(f"training items are indexed by (epoch, i), got {key!r}: iterate the TrainLoader that "
                            "train_loader builds (give it rank and world_size; a sampler added from outside, such "
                            "as Ray Train's prepare_data_loader(add_dist_sampler=True), does not know the epoch)")
        epoch, i = key
        position = int(self.positions[i])
        draws = draws_for(self.seed, epoch, int(self.base.rows[position]))
        return self.base.staged(position, draws, decode=self.decode)


def _unwrap(dataset) -> tuple[HeadPoseDataset, np.ndarray]:
    """``(HeadPoseDataset, positions in it)`` of a dataset or of (nested) Subsets of one."""
    if isinstance(dataset, Subset):
        base, positions = _unwrap(dataset.dataset)
        return base, positions[np.asarray(dataset.indices, dtype=np.int64)]
    return dataset, np.arange(len(dataset))


def draws_for(seed: int, epoch: int, row: int) -> torch.Tensor:
    """The (DRAWS,) uniform numbers of one item's augmentation in one epoch."""
    # Odd 64-bit constants spread the three numbers apart; mt19937's seeding mixes the rest.
    mixed = (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + row * 0x94D049BB133111EB) % 2**63
    return torch.rand(DRAWS, generator=torch.Generator().manual_seed(mixed))


class EpochTagged(Sampler):
    """A sampler (or batch sampler) whose indices carry the epoch: ``(epoch, i)``."""

    def __init__(self, sampler):
        self.sampler, self.epoch = sampler, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator:
        for index in self.sampler:
            yield [(self.epoch, i) for i in index] if isinstance(index, list) else (self.epoch, index)


class TrainLoader(DataLoader):
    """A DataLoader of training batches that knows its epoch and, given a GPU, finishes batches there."""

    def __init__(self, items: TrainItems, sampler: EpochTagged, *, batch_size: int | None, drop_last: bool,
                 num_workers: int, device: torch.device | None):
        order = ({"batch_sampler": sampler} if batch_size is None else
                 {"sampler": sampler, "batch_size": batch_size, "drop_last": drop_last})
        super().__init__(items, collate_fn=Collate(items.preprocess, finish=device is None),
                         num_workers=num_workers, persistent_workers=num_workers > 0,
                         pin_memory=device is not None and device.type == "cuda", **order)
        self.tagged, self.device, self.preprocess = sampler, device, items.preprocess

    def set_epoch(self, epoch: int) -> None:
        self.tagged.set_epoch(epoch)

    def __iter__(self):
        batches = super().__iter__()
        return batches if self.device is None else map(self.finish_on_device, batches)

    def finish_on_device(self, batch: dict) -> dict:
        """Copy a collated batch to ``self.device`` and do the rest of its augmentation there."""
        assert self.device is not None, "only mapped over the batches when there is a device"
        return finish_on(batch, self.preprocess, self.device)


def finish_on(batch: dict, preprocess, device: torch.device) -> dict:
    """A batch of uint8 images (or of encoded JPEGs) finished on ``device``; any device, so the
    GPU path runs on CPU tensors in the tests."""
    draws = batch["draws"]  # read on the CPU: crop boxes and blur choices are host-side decisions
    out = {k: v.to(device, non_blocking=True) for k, v in batch.items() if k not in ENCODED}
    if "encoded" in batch:
        import torchvision.io as tvio

        jpegs = list(torch.split(batch["encoded"], batch["encoded_sizes"].tolist()))
        decoded = tvio.decode_jpeg(jpegs, mode=tvio.ImageReadMode.RGB, device=device)
        out["image"] = torch.stack([preprocess.crop(img, d) for img, d in zip(decoded, draws)])
    out["image"] = preprocess.finish(out["image"], draws)
    return out


class Collate:
    """Stack staged items; with ``finish``, also do the batch stage of augmentation (CPU path)."""

    def __init__(self, preprocess, *, finish: bool):
        self.preprocess, self.finish = preprocess, finish

    def __call__(self, items: list[dict]) -> dict:
        batch = {key: torch.stack([item[key] for item in items]) for key in ("draws", "angles_deg", "subject", "index")}
        if "encoded" in items[0]:  # one flat tensor: a worker sends one shared-memory handle, not B
            batch["encoded"] = torch.cat([item["encoded"] for item in items], out=_empty(
                (sum(len(item["encoded"]) for item in items),), torch.uint8, shared=True))
            batch["encoded_sizes"] = torch.tensor([len(item["encoded"]) for item in items])
            return batch
        first = items[0]["image"]
        images = torch.stack([item["image"] for item in items],
                             out=_empty((len(items), *first.shape), first.dtype, shared=not self.finish))
        if self.finish:
            images = self.preprocess.finish(images, batch["draws"], out=_empty(images.shape, torch.float32))
        batch["image"] = images
        return batch


def _empty(shape: tuple[int, ...], dtype: torch.dtype, *, shared: bool = True) -> torch.Tensor:
    """A new tensor; in a loader worker and if ``shared``, in shared memory (as torch's default_collate
    does), so that sending the batch to the main process does not copy it once more."""
    if not shared or get_worker_info() is None:
        return torch.empty(shape, dtype=dtype)
    storage = torch.UntypedStorage._new_shared(math.prod(shape) * dtype.itemsize)
    return torch.empty(0, dtype=dtype).set_(storage).view(shape)
