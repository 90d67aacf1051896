"""Models are exported and logged in a worker process, which is replaced every :data:`EXPORTS_PER_WORKER`.

Exporting a model with a dynamic batch dimension (``torch.export``, as MLflow's ``pt2`` flavour
does) leaves its shape environment behind in the process for good: the environment and its symbolic
sizes refer to each other through tensors held in C++, a cycle Python's garbage collector cannot see.
In the search driver that was about 0.8 MB per finalised trial, 1 GB over 1,000 trials
(bench/RESULTS.md, "The control plane at scale"). So the driver hands each export to one worker
process and lets it go after :data:`EXPORTS_PER_WORKER` models; the next export starts a fresh one.
The worker is a new interpreter (:func:`serve` in ``python -c``, never a fork: the
driver runs threads; never multiprocessing's spawn, which would run the caller's script again) that
reads one request per line on its standard input and answers one line of JSON on a pipe of its own.
The worker also takes the export's CPU time and Python's lock off the driver, where Tune's loop runs.

One export at a time: the driver finalises trials on one thread, and the worker is one process.
A worker that dies (killed, out of memory) fails that export with :class:`~ldlpose.errors.TrackingError`
and is replaced on the next one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

EXPORTS_PER_WORKER = 50  # at 0.8 MB each, the worker carries at most 40 MB of leftovers
# Where MLflow, its artifact stores and PostgreSQL read credentials and settings: sent with every
# export, since the driver may set them after the worker started (credentials_to_environment).
_CARRIED = ("MLFLOW_", "PG", "AWS_", "AZURE_", "GOOGLE_")


class _Worker:
    """The one export worker of this process: started on first use, replaced after
    :data:`EXPORTS_PER_WORKER` exports or when it dies. One request at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._served = 0

    def ask(self, request: dict) -> dict:
        with self._lock:
            if self._process is not None and (self._served >= EXPORTS_PER_WORKER or self._process.poll() is not None):
                self._retire()
            if self._process is None:
                self._process = _start()
                self._served = 0
            process = self._process
            assert process.stdin is not None and process.stdout is not None
            try:
                process.stdin.write(json.dumps(request) + "\n")
                process.stdin.flush()
                line = process.stdout.readline()
            except OSError:
                line = ""
            if not line:
                code = process.poll()
                self._retire()
                raise RuntimeError(f"the export worker process ended before answering (exit code {code}); "
                                   "the next export starts a new one")
            self._served += "checkpoint" in request
            return json.loads(line)

    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def _retire(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            try:
                process.stdin.close()  # type: ignore[union-attr]
                process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                process.kill()
                process.wait()


_worker = _Worker()


def _start() -> subprocess.Popen:
    package_root = str(Path(__file__).resolve().parents[2])  # where ldlpose itself was imported from
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
    # -c, not -m: the package imports this module, and running it as __main__ too would warn
    code = "from ldlpose.tracking.export_worker import serve; serve()"
    return subprocess.Popen([sys.executable, "-c", code], env=env, text=True, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)


def log_checkpoint(checkpoint: str | Path, info: dict, *, run_id: str, experiment_id: str, uri: str,
                   tags: dict) -> str:
    """Export ``checkpoint`` and log it as a pt2 model on ``run_id``, in the worker; ``models:/<id>``.

    ``info`` is added to what the checkpoint's own export info says (search, trial, run ids).
    Raises ``RuntimeError`` naming the method and the cause when the export or the logging fails.
    """
    answer = _worker.ask({"checkpoint": str(checkpoint), "info": info, "run_id": run_id,
                          "experiment_id": experiment_id, "uri": uri, "tags": tags, "env": _carried()})
    if "error" in answer:
        raise RuntimeError(answer["error"])
    return answer["model_uri"]


def warm_up() -> None:
    """Load, once per process, what finalising a trial needs, so that the first trial to finish does
    not pay for it (about 5 s here with bytecode, 15 without) while other trials train: the export
    worker is started and loads torch.export and MLflow's PyTorch flavour, and this process loads the
    methods, the backbones (torchvision) and matplotlib for the plots. The search driver runs this on
    a thread of its own while Ray starts. A failure here is left to the finalisation to report.
    """
    try:
        _worker.ask({"warm_up": True})
    except RuntimeError:  # the first export says what is wrong
        pass
    try:
        import torchvision.models  # noqa: F401  (the backbones; it loads torch._dynamo too)

        import ldlpose.inference.predictor  # noqa: F401
        from ldlpose.report import figures as plots

        plots.pyplot()
    except Exception:  # the real finalisation says what is wrong, with the trial's model
        pass


def worker_pid() -> int | None:
    """The worker process's pid, None before the first export or warm-up (tests and benches)."""
    return _worker.pid()


def _carried() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(_CARRIED)}


def _adopt(env: dict[str, str]) -> None:
    """This worker's credentials and settings become the driver's as of the request."""
    for key in [k for k in os.environ if k.startswith(_CARRIED) and k not in env]:
        del os.environ[key]
    os.environ.update(env)


def _export_and_log(request: dict) -> dict:
    from ldlpose.inference import predictor as export
    from ldlpose.tracking._common import _short
    from ldlpose.tracking.models import _log_predictor

    _adopt(request["env"])
    try:
        predictor, info = export.predictor_from_checkpoint(request["checkpoint"])
    except Exception as err:
        return {"error": _short(err)}
    info.update(request["info"])
    try:
        return {"model_uri": _log_predictor(predictor, info, run_id=request["run_id"],
                                            experiment_id=request["experiment_id"], uri=request["uri"],
                                            tags=request["tags"])}
    except Exception as err:  # torch.export (a method's decode) or the server
        return {"error": f"{info.get('method')}: {_short(err)}"}


def serve() -> None:
    """The worker's loop: answers go to the pipe that was standard output; anything the libraries
    print goes to standard error instead, so that it never mixes with an answer. Ctrl-C in a terminal
    reaches the whole process group: the worker leaves it to the driver, and ends when the driver
    closes its standard input (or dies)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("warm_up"):
            from ldlpose.tracking.models import warm_up_export

            warm_up_export()
            answer: dict = {"ready": True}
        else:
            answer = _export_and_log(request)
        answers.write(json.dumps(answer) + "\n")
        answers.flush()
