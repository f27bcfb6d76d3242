"""Preparing documents for an index in worker processes: an ordered map over batches with a
bounded number of batches in flight, so a build uses every core and its memory stays bounded.

Workers are started with ``spawn`` (no state inherited from a multi-threaded parent), ignore
Ctrl-C (the parent stops them) and exit by themselves when the parent dies (SIGKILL included).
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import types
from collections.abc import Callable
from multiprocessing.pool import AsyncResult
from typing import Any

_STATE: Any = None
"""The worker's preparer, made once by :func:`_init` (or the exception that prevented it)."""
START_TIMEOUT_S = 300.0


class WorkerStartError(RuntimeError):
    """The worker processes could not be started (the caller prepares documents itself)."""


def default_workers() -> int:
    """Worker processes for a build: the cores this process may use (up to 8) less two, which
    the parent (reading the corpus, feeding the index) and tantivy's indexing threads keep
    busy; 0 on one or two cores, where workers only add copying (measured in
    ``benchmarks/index_scale.py``)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(0, min(cores or 1, 8) - 2)


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(1)


def _init(factory: Callable[..., Any], args: bytes, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    global _STATE
    try:
        _STATE = factory(*pickle.loads(args))
    except Exception as exc:  # reported by _ping, never a dead worker the pool restarts
        _STATE = exc


def _ping() -> str | None:
    return f"{type(_STATE).__name__}: {_STATE}" if isinstance(_STATE, Exception) else None


def _call(method: str, batch: list) -> Any:
    if isinstance(_STATE, Exception):
        raise WorkerStartError(f"this worker failed to start ({_ping()})")
    return getattr(_STATE, method)(batch)


class OrderedPool:
    """``factory(*args).method(batch)`` for each submitted batch, in ``workers`` processes.

    Results are collected in submission order by the caller; :attr:`in_flight` is how many
    batches it should keep submitted at most."""

    def __init__(self, workers: int, factory: Callable[..., Any], args: tuple, method: str) -> None:
        self.method = method
        self.in_flight = 2 * workers
        try:
            payload = pickle.dumps(args)
        except Exception as exc:
            raise WorkerStartError(f"cannot send the preparer's arguments ({exc})") from exc
        context = multiprocessing.get_context("spawn")
        # Workers need only MedR3's modules: hide the caller's __main__ so that they do not
        # import (and run) a script without an ``if __name__ == "__main__"`` guard, or fail
        # on one read from stdin.
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            self._pool = context.Pool(
                workers, initializer=_init, initargs=(factory, payload, os.getpid())
            )
        finally:
            sys.modules["__main__"] = main
        try:
            problems = [self._pool.apply_async(_ping).get(START_TIMEOUT_S) for _ in range(workers)]
        except Exception as exc:
            self.close()
            raise WorkerStartError(f"the workers did not start ({exc})") from exc
        problem = next((p for p in problems if p), None)
        if problem:
            self.close()
            raise WorkerStartError(f"a worker failed to start ({problem})")

    def submit(self, batch: list) -> AsyncResult:
        return self._pool.apply_async(_call, (self.method, batch))

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()
