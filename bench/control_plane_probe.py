"""What bench/control_plane.py measures around the search driver, and how it reports it.

Nothing here reaches into the driver: the probe reads this process's /proc entries (memory, CPU
time of all threads and of the outbox's writing thread, found by its name), the outbox's journal
in the search's storage (a line per write queued, a mark per write MLflow took), the driver's
``LDLPOSE_TRACE`` file (trials started, completed, finalised; the registration), the MLflow
server's process group in /proc, and the driver's printed lines with the time each appeared.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

WRITER_THREAD = "ldlpose-mlflow-writer"  # ldlpose.tracking.outbox._THREAD
TICK = os.sysconf("SC_CLK_TCK")


def _cpu_of_stat(text: str) -> float:
    fields = text.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def thread_cpu_s(name: str) -> float:
    thread = next((t for t in threading.enumerate() if t.name == name), None)
    if thread is None or thread.native_id is None:
        return 0.0
    try:
        return _cpu_of_stat(Path(f"/proc/self/task/{thread.native_id}/stat").read_text())
    except OSError:
        return 0.0


def group_cpu_s(pgid: int) -> float:
    """CPU seconds of the live processes of process group ``pgid`` (the MLflow server and its workers)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        if int(text.rsplit(")", 1)[1].split()[2]) == pgid:
            total += _cpu_of_stat(text)
    return total


def rss_mb(pid: int | str = "self") -> float:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:  # the process ended
        return 0.0
    for line in lines:
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class _Tail:
    """New complete lines of a file that grows (and may vanish: the journal is removed once delivered)."""

    def __init__(self, path: Path):
        self.path, self.offset, self.rest = path, 0, ""

    def lines(self) -> list[str]:
        try:
            with open(self.path) as file:
                file.seek(self.offset)
                text = file.read()
                self.offset = file.tell()
        except OSError:
            return []
        text, self.rest = (self.rest + text).rsplit("\n", 1) if "\n" in self.rest + text else ("", self.rest + text)
        return [line for line in text.splitlines() if line.strip()]


class Probe:
    """Samples the driver every ``every_s`` on a thread, while used as a context manager."""

    def __init__(self, every_s: float, *, journal: Path, trace: Path, server_pid: int):
        self.every_s, self.server_pid = every_s, server_pid
        self.journal, self.trace = _Tail(journal), _Tail(trace)
        self.counts = {"starts": 0, "results": 0, "delivered": 0, "trials_started": 0, "trials_completed": 0,
                       "finalised": 0}
        self.phases: list[dict] = []  # the trace's records
        self.samples: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="control-plane-probe", daemon=True)
        self.t0 = time.time()

    def __enter__(self) -> Probe:
        self.t0 = time.time()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self.sample()

    def sample(self) -> None:
        self._read_journal()
        self._read_trace()
        times = os.times()
        self.samples.append({"t": time.time() - self.t0, "rss_mb": rss_mb(), "cpu_s": times.user + times.system,
                             "writer_cpu_s": thread_cpu_s(WRITER_THREAD),
                             "server_cpu_s": group_cpu_s(self.server_pid), **self.counts})

    def _read_journal(self) -> None:
        for line in self.journal.lines():
            entry = json.loads(line)
            if "delivered" in entry:
                self.counts["delivered"] += 1
            elif entry.get("kind") == "start":
                self.counts["starts"] += 1
            elif entry.get("kind") == "result":
                self.counts["results"] += 1

    def _read_trace(self) -> None:
        names = {"tune.trial_start": "trials_started", "tune.trial_complete": "trials_completed",
                 "end.finalise": "finalised"}
        for line in self.trace.lines():
            record = json.loads(line)
            record["start"] -= self.t0
            record["end"] -= self.t0
            self.phases.append(record)
            if record["phase"] in names:
                self.counts[names[record["phase"]]] += 1


@contextlib.contextmanager
def timed_lines():
    """Every line printed to stdout meanwhile, with the seconds since the epoch it appeared at; still printed."""
    lines: list[tuple[float, str]] = []
    real = sys.stdout

    class Stamped(io.TextIOBase):
        def write(self, text: str) -> int:
            for line in text.splitlines():
                if line.strip():
                    lines.append((time.time(), line))
            return real.write(text)

        def flush(self) -> None:
            real.flush()

    sys.stdout = Stamped()
    try:
        yield lines
    finally:
        sys.stdout = real


@contextlib.contextmanager
def mlflow_server(root: Path):
    """``mlflow server`` over sqlite on a free port of 127.0.0.1: (process, URI), stopped afterwards."""
    root.mkdir(parents=True, exist_ok=True)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # its job workers are not needed
    with open(root / "server.log", "w") as log:
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri",
             f"sqlite:///{root / 'db.sqlite'}", "--artifacts-destination", str(root / "artifacts"),
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        _wait_for(uri, server, root / "server.log")
        yield server, uri
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _wait_for(uri: str, server: subprocess.Popen, log: Path, timeout_s: float = 180) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"mlflow server exited ({server.returncode}); see {log}")
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
            if answer.status == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"mlflow server at {uri} did not answer /health in {timeout_s:.0f} s; see {log}")
