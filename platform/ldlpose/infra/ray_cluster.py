"""Connecting to Ray: a given cluster address, ``RAY_ADDRESS``, or a local Ray started on demand.

Ray's start-up lines are kept off the screen unless ``LDLPOSE_LOG=debug`` (or a command's
``--verbose``): the INFO lines ("Started a local Ray instance...", "Connected to Ray cluster...",
"Generated new authentication token...") and the warning that token authentication was turned on by
default, which is Ray 2.60's safe default for a local instance, not a problem. Ray's warning that
a cluster runs *without* authentication, and every error, still show.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

LOG_ENV = "LDLPOSE_LOG"  # "debug": every Ray, Tune and MLflow line reaches the screen

# Where Ray 2.60 logs the token set-up during ray.init, and the messages that only describe its default.
_TOKEN_LOGGER = "ray._private.authentication.authentication_token_setup"
_TOKEN_CHATTER = ("Token authentication is enabled for this Ray cluster", "Generated new authentication token")


def debug_logs() -> bool:
    """Whether the user asked for everything (``LDLPOSE_LOG=debug``)."""
    return os.environ.get(LOG_ENV, "").strip().lower() == "debug"


def ensure_ray(address: str | None = None, *, num_cpus: int | None = None, log_to_driver: bool = True,
               quiet: bool | None = None) -> None:
    """Connect to the cluster at ``address`` (or ``RAY_ADDRESS``); else start a local Ray.

    ``log_to_driver``: forward the workers' output (per-epoch lines, Ray Train's logs) to this process.
    ``quiet``: keep Ray's start-up INFO lines and token chatter off the screen (default: unless
    ``LDLPOSE_LOG=debug``).
    """
    import ray

    if ray.is_initialized():
        return
    quiet = not debug_logs() if quiet is None else quiet
    # ray.init sets the level of the "ray" logger itself (INFO by default), whatever it was before.
    level = logging.WARNING if quiet else logging.INFO
    address = address or os.environ.get("RAY_ADDRESS")
    with _token_chatter_hidden(quiet):
        if address:
            ray.init(address=address, log_to_driver=log_to_driver, logging_level=level)
        else:
            # A new local instance even when a `ray start` cluster runs here (use --address auto for that).
            # Search trial drivers run on the extra resource, so every CPU stays with the training workers.
            ray.init(address="local", num_cpus=num_cpus, resources={"TRAIN_DRIVER_RESOURCE": 100},
                     log_to_driver=log_to_driver, logging_level=level)


class _DropChatter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(_TOKEN_CHATTER)


@contextlib.contextmanager
def _token_chatter_hidden(quiet: bool) -> Iterator[None]:
    """Drop the token messages that describe Ray's default (matched by text: a reworded or new
    message shows again) while ray.init runs."""
    if not quiet:
        yield
        return
    logger, chatter = logging.getLogger(_TOKEN_LOGGER), _DropChatter()
    logger.addFilter(chatter)
    try:
        yield
    finally:
        logger.removeFilter(chatter)
