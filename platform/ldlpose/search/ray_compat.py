"""Workarounds for Ray 2.60 behaviour that the rest of the search should not need to know about.

Each reaches into Ray internals, so each is kept small, here, and says which Ray behaviour it
works around; delete one when the Ray version that fixes it is the oldest supported.
"""

from __future__ import annotations

import time


def wait_for_reports_to_drain(timeout_s: float = 60.0) -> None:
    """Return only once Tune has taken the trial's last report.

    Ray 2.60 race: Tune's function runner moves each Train report from an inter-actor queue into its
    one-slot result queue on the trial's main thread; when the trial function returns at that moment,
    the runner's end-of-trial marker can fill the slot first and the main thread blocks forever on
    its ``put``. Waiting here until both queues stay empty closes the window.
    """
    from ray.train._internal.session import get_session

    session = get_session()
    assert session is not None, "called from a Ray Train worker, which has a session"
    inter_actor = getattr(session, "_inter_actor_queue", None)

    def drained() -> bool:
        return (inter_actor is None or inter_actor.empty()) and session.result_queue.empty()

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if drained():
            time.sleep(0.5)  # the main thread may be between taking an item and queueing it
            if drained():
                return
        time.sleep(0.1)


def replace_callbacks(tuner, kind: type | tuple[type, ...], callbacks: list) -> None:
    """A restored Tuner brings back its pickled callbacks; give it this session's instead.

    ``Tuner.restore`` has no argument for callbacks (Ray 2.60), and the pickled ones hold the
    previous session's state.
    """
    internal = getattr(tuner, "_local_tuner", None)
    run_config = getattr(internal, "_run_config", None)
    if run_config is not None:
        run_config.callbacks = [c for c in (run_config.callbacks or []) if not isinstance(c, kind)] + list(callbacks)
