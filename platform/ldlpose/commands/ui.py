"""Open MLflow's UI on the tracking store the other commands use, and print where to look.

Starts `mlflow server` for the store (--tracking-uri, else MLFLOW_TRACKING_URI, else
sqlite:///mlflow.db in the working directory) on 127.0.0.1 and a free port (or --port), then prints
the address of the latest search's experiment (its training runs) and of each registered model's
page. Ctrl-C stops the server. A store that is a tracking server already (http://, https://) is
not started again: its addresses are printed and the command returns.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator

HOST = "127.0.0.1"  # the UI shows every run and model: only this machine may reach it


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, "
                                               "else sqlite:///mlflow.db in the working directory)")
    parser.add_argument("--port", type=int, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--verbose", action="store_true", help="show the MLflow server's own output")


def run(args: argparse.Namespace) -> int:
    from ldlpose.tracking import redact, resolve_tracking_uri
    from ldlpose.tracking import ui_pages as pages

    uri = resolve_tracking_uri(args.tracking_uri)
    if uri.startswith(("http://", "https://")):
        print(f"{redact(uri)} is a tracking server already: nothing to start")
        _print_pages(pages(uri, uri))
        return 0
    return _serve(uri, _port(args.port), args.verbose)


def _port(wanted: int | None) -> int:
    """``wanted`` if it is free on 127.0.0.1, else the error; a free port where none is wanted."""
    from ldlpose.errors import LdlposeError

    with socket.socket() as sock:
        try:
            sock.bind((HOST, wanted or 0))
        except OSError as err:
            raise LdlposeError(f"--port {wanted}: {HOST}:{wanted} is taken ({err.strerror}); "
                               "choose another port, or leave --port out for a free one") from None
        return sock.getsockname()[1]


def _serve(uri: str, port: int, verbose: bool) -> int:
    from ldlpose.tracking import start_ui, stop_ui, wait_until_up
    from ldlpose.tracking import ui_pages as pages

    base = f"http://{HOST}:{port}"
    links = pages(uri, base)  # checks the store before anything starts
    with tempfile.TemporaryFile("w+") as log, _stopped_by_signals():
        print(f"starting MLflow's UI for {uri} ...", flush=True)
        server = start_ui(uri, HOST, port, None if verbose else log)
        try:
            wait_until_up(server, base, uri, lambda: _tail(log))
            print(f"MLflow UI: {base}  (Ctrl-C stops it)")
            _print_pages(links)
            server.wait()  # until Ctrl-C; a server that ends by itself is an error
            print(f"ldlpose ui: error: the MLflow server exited with status {server.returncode}:\n{_tail(log)}",
                  file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("\nstopping MLflow's UI", flush=True)
            return 0
        finally:
            stop_ui(server)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


@contextlib.contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """SIGTERM (``kill``) stops the server as Ctrl-C does, instead of ending this process and leaving
    the server running in its own process group; SIGINT too where it was inherited ignored (``ldlpose ui &``)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _tail(log, chars: int = 3000) -> str:
    log.flush()
    log.seek(0)
    return log.read()[-chars:]


def _print_pages(links: dict) -> None:
    if links["search"]:
        print(f"  latest search ({links['search']}): {links['experiment']}")
    else:
        print(f"  no search has run here yet; experiments: {links['experiment']}")
    for name, page in links["models"].items():
        print(f"  registered model {name}: {page}")
    if not links["models"]:
        print("  no registered model yet (a search registers its champion when it finishes)")
