"""Connecting to Ray: a given cluster address, ``RAY_ADDRESS``, or a local Ray started on demand."""

from __future__ import annotations

import os


def ensure_ray(address: str | None = None, *, num_cpus: int | None = None, log_to_driver: bool = True) -> None:
    """Connect to the cluster at ``address`` (or ``RAY_ADDRESS``); else start a local Ray.

    ``log_to_driver``: forward the workers' output (per-epoch lines, Ray Train's logs) to this process.
    """
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=log_to_driver)
    else:
        # A new local instance even when a `ray start` cluster runs here (use --address auto for that).
        # Search trial drivers run on the extra resource, so every CPU stays with the training workers.
        ray.init(address="local", num_cpus=num_cpus, resources={"TRAIN_DRIVER_RESOURCE": 100},
                 log_to_driver=log_to_driver)
