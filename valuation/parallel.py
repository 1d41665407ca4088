"""Split a large batch valuation over the machine's cores with forked processes.

A batch of thousands of valuations is pure computation once its rows are prepared (the model and the
sales snapshot are already in memory): the parent forks one child per extra core, each child values
its share of the rows with what it inherited (copy-on-write, nothing reloaded, no database access)
and sends the results back through a pipe; the parent values the first share meanwhile. Small
batches, single valuations, and platforms without ``fork`` run in the calling process.

Each process runs LightGBM on one thread: two processes on two cores beat two OpenMP threads, since
most of the work (neighbourhoods, explanations, JSON-ready results) is Python and numpy, not trees.
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pandas as pd

T = TypeVar("T")

MIN_ROWS_PER_PROCESS = 1000


def _forbid_database() -> None:
    """In a forked child: the parent's database connections must never be used (their socket is shared
    with the parent, whose replies a child query would steal), nor closed (closing would end the
    parent's session). A query raises instead, and the objects are kept alive until ``os._exit``."""
    from django.db import connections

    def refuse(*args: Any) -> None:
        raise RuntimeError("a batch worker process tried to query the database")

    for conn in connections.all(initialized_only=True):
        conn.execute_wrappers.append(refuse)


def workers_for(n_rows: int) -> int:
    if not hasattr(os, "fork") or sys.platform == "win32":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, n_rows // MIN_ROWS_PER_PROCESS))


class Forked:
    """A call running in a forked child; :meth:`join` returns its result (or raises its error)."""

    def __init__(self, call: Callable[..., Any], *args: Any) -> None:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: compute, send, and leave without running any parent code
            status = 0
            try:
                os.close(read)
                _forbid_database()
                try:
                    payload: Any = ("ok", call(*args))
                except BaseException as exc:  # reported to the parent, which re-raises
                    payload = ("error", f"{type(exc).__name__}: {exc}")
                    status = 1
                with os.fdopen(write, "wb") as out:
                    pickle.dump(payload, out, protocol=pickle.HIGHEST_PROTOCOL)
            finally:
                os._exit(status)
        os.close(write)
        self.pid, self._read = pid, read

    def join(self, *, check: bool = True) -> Any:
        """Wait for the child; its result, or its error raised (``check=False``: None on error)."""
        with os.fdopen(self._read, "rb") as handle:
            try:
                kind, value = pickle.load(handle)  # noqa: S301 - our own child, our own pipe
            except EOFError:
                kind, value = "error", "a worker process ended without a result"
        os.waitpid(self.pid, 0)
        if kind != "ok":
            if not check:
                return None
            raise RuntimeError(f"Part of the batch failed in a worker process: {value}")
        return value


def parallel_chunks(
    compute: Callable[..., list[T]], rows: pd.DataFrame, work: Sequence[Any], *args: Any
) -> list[T]:
    """``compute(rows_part, work_part, *args, threads)`` over contiguous parts, in forked processes.

    Returns the concatenated results in the order of ``rows``. A child that fails makes the whole call
    fail with its error, never a partial result.
    """
    n = len(rows)
    workers = workers_for(n)
    if workers == 1:
        return compute(rows, list(work), *args, 2 if n >= 100 else 1)
    bounds = [round(k * n / workers) for k in range(workers + 1)]

    def part(k: int) -> tuple[pd.DataFrame, list[Any]]:
        lo, hi = bounds[k], bounds[k + 1]
        return rows.iloc[lo:hi].reset_index(drop=True), list(work[lo:hi])

    children = [Forked(compute, *part(k), *args, 1) for k in range(1, workers)]
    try:
        results = compute(*part(0), *args, 1)
    except BaseException:
        for child in children:
            child.join(check=False)
        raise
    for child in children:
        results.extend(child.join())
    return results
