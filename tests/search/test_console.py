"""The compact console view of a search, driven by a real Ray Tune run."""

from __future__ import annotations

import io
import itertools
import re

import pytest

from ldlpose.search.console import ConsoleView

pytestmark = pytest.mark.slow


def _scripted(config: dict) -> None:
    from ray import tune

    if config["value"] < 0:
        raise ValueError("scripted failure: bad lr")
    for epoch in (1, 2):
        tune.report({"epoch": epoch, "selected_val_mae": config["value"] + 1.0 / epoch})


def _fit(view: ConsoleView, tmp_path, configs: list[dict]) -> None:
    import sys

    import ray.cloudpickle
    from ray import tune

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/

    tuner = tune.Tuner(
        tune.with_resources(_scripted, {"CPU": 1}),
        param_space={"value": tune.grid_search([c["value"] for c in configs])},
        tune_config=tune.TuneConfig(max_concurrent_trials=1),
        run_config=tune.RunConfig(name="view", storage_path=str(tmp_path), callbacks=[view], verbose=0))
    tuner.fit()


def test_a_log_gets_one_line_per_event_with_counts_best_and_failures(ray_local, tmp_path, capsys):
    out = io.StringIO()  # not a terminal: one line per change
    view = ConsoleView("demo", "selected_val_mae", total=3, epochs=2, concurrency=1, out=out)
    _fit(view, tmp_path, [{"value": 7.0}, {"value": 3.0}, {"value": -1.0}])
    text = out.getvalue()
    lines = text.splitlines()
    assert sum("started" in line for line in lines) == 3
    assert sum(" done after epoch 2" in line for line in lines) == 2
    assert any("epoch 2/2: val mae 3.50" in line for line in lines)
    assert re.search(r"\[3 done, 0 running, 0 left; best 3\.50 \(" + view.best()[0] + r"\); "
                     r"elapsed \d+:\d\d, time left ~0:00\]$", lines[-1]), lines[-1]
    # Every line of a log carries the elapsed time; once an epoch ran, the time left too.
    assert all(re.search(r"; elapsed \d+:\d\d, time left (\?|~\d+:\d\d)\]$", line) for line in lines)
    assert "time left ?" in lines[0] and "time left ~" in lines[-1]
    assert view.best()[1]["value"] == pytest.approx(3.5)
    assert "\x1b[" not in text  # no cursor movement in a log
    # The failure is not drawn over: its reason goes to stderr as a line of its own.
    assert "failed: ValueError: scripted failure: bad lr" in capsys.readouterr().err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_one_view_redrawn_in_place(ray_local, tmp_path):
    out = _Terminal()
    view = ConsoleView("demo", "selected_val_mae", total=2, epochs=2, concurrency=1, out=out)
    _fit(view, tmp_path, [{"value": 5.0}, {"value": 4.0}])
    text = out.getvalue()
    assert "\x1b[" in text and "F\x1b[J" in text  # moved up and cleared before each redraw
    final = view.lines()
    assert final[0].startswith("search demo: 2 done, 0 running, 0 left | elapsed ")
    assert "best val mae 4.50" in final[0]
    assert len(final) == 3 and all("epoch 2/2" in row and row.endswith("done") for row in final[1:])
    # At a known rate (2 trial-epochs in 10 s), the trial-epochs to go (the running trial's last, both of
    # the trial not started) take 15 s from the last epoch's end, counted down since.
    view.rows = {"a": {"params": "x", "epoch": 1, "value": 2.0, "state": "running"}}
    view.total, view.first_start, view.last_epoch_at, view.epochs_run = 2, 100.0, 110.0, 2
    assert view.epochs_to_go() == 3
    assert view.remaining_s(now=114.0) == pytest.approx(15.0 - 4.0)
    assert view.remaining_s(now=200.0) == 0.0


# --- a real `ldlpose search` under a pseudo-terminal ---------------------------------------------

COLUMNS = 100


def _run_on_a_terminal(command: list[str], env: dict, cwd, timeout_s: float = 600) -> tuple[int, str]:
    """Run ``command`` with a pseudo-terminal (COLUMNS wide) as its stdin, stdout and stderr: (status, output)."""
    import fcntl
    import os
    import select
    import struct
    import subprocess
    import termios
    import time

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, COLUMNS, 0, 0))
    process = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                               start_new_session=True)
    os.close(slave)
    chunks, deadline, quiet_since = [], time.monotonic() + timeout_s, None
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every process holding the terminal has closed it
                    break
                if not data:
                    break
                chunks.append(data)
            elif process.poll() is not None:  # Ray's processes may hold the terminal a moment longer
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 5:
                    break
        else:
            process.kill()
            pytest.fail(f"no exit within {timeout_s} s:\n{b''.join(chunks).decode(errors='replace')[-3000:]}")
        return process.wait(timeout=60), b"".join(chunks).decode(errors="replace")
    finally:
        os.close(master)


def _untimed(header: str) -> str:
    return re.sub(r"elapsed \S+, time left \S+", "", header)


def test_a_search_on_a_terminal_is_calm_and_its_clock_moves(tmp_path, synth_root):
    """No Ray start-up INFO line nor token warning on the screen; the view is redrawn between trial events,
    its elapsed time rising a second at a time, with an estimate of the time left."""
    import os
    import secrets
    import sys

    from test_search_run import write_space

    space = write_space(tmp_path, synth_root, "calm", trials=2, epochs=2, concurrency=1, train_samples=32,
                        parameters={"train.optimizer.lr": {"distribution": "log_uniform", "min": 1e-3, "max": 8e-3}})
    # Ray's default for a new local instance (RAY_AUTH_MODE unset): token authentication on, with its
    # warning. The token comes from the environment, so Ray writes none to ~/.ray.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "LDLPOSE_LOG"))}
    env["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    status, output = _run_on_a_terminal(
        [sys.executable, "-m", "ldlpose", "search", str(space), "--storage", str(tmp_path / "results"),
         "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"], env, tmp_path)
    assert status == 0, output[-4000:]
    assert "registered headpose-synth version 1" in output, output[-3000:]
    assert "Token authentication" not in output, output[:3000]
    assert not re.search(r"\b(INFO|WARNING)\b \S+\.py:\d+ --", output), output[:3000]  # Ray's log format
    (tmp_path / "terminal.txt").write_text(output)  # what the terminal received, to read when a check fails
    # Each redraw moves up over the last view and clears it: what follows is one whole view.
    views = [v for v in re.split(r"\x1b\[\d+F\x1b\[J", output) if re.match(r"search calm: \d+ done, ", v)]
    headers = [view.splitlines()[0] for view in views]
    elapsed = [int(m) * 60 + int(s) for m, s in (re.search(r"elapsed (\d+):(\d\d)", h).groups() for h in headers)]
    assert elapsed == sorted(elapsed), elapsed
    # Redrawn as the clock moves, not only when Tune reports: redraws where nothing but the times changed,
    # each at a new elapsed second.
    unchanged = [later - earlier for (earlier, a), (later, b) in itertools.pairwise(zip(elapsed, views))
                 if _untimed(a) == _untimed(b)]
    assert len(unchanged) >= 3 and all(step >= 1 for step in unchanged), (unchanged, headers[:12])
    assert any(re.search(r"time left ~\d+:\d\d", h) for h in headers), headers[-3:]
    # Cut to the terminal's width: a wrapped line would break the next redraw.
    assert all(len(line) < COLUMNS for view in views[:-1] for line in view.splitlines())
