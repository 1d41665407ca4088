"""Split a large batch valuation over the machine's cores with forked processes.

A batch of thousands of valuations is pure computation once its rows are prepared (the model and the
sales snapshot are already in memory): the parent forks one child per extra core, each child values
its share of the rows with what it inherited (copy-on-write, nothing reloaded, no database access)
and sends the results back through a pipe, part by part; the parent values its own share meanwhile.
Small batches, single valuations, and platforms without ``fork`` run in the calling process.

:func:`parallel_parts` hands each part to the caller as soon as it is there, so a caller that stores
the results (a database write, in the parent only) can give the parent a smaller share and store the
children's parts while they are still computing: both cores stay busy. A thread of the parent drains
each child's pipe as it fills, so a child never waits for the parent.

Each process runs LightGBM on one thread: two processes on two cores beat two OpenMP threads, since
most of the work (neighbourhoods, explanations, JSON-ready results) is Python and numpy, not trees.
"""

from __future__ import annotations

import os
import pickle
import queue
import signal
import struct
import sys
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any, TypeVar

import pandas as pd

T = TypeVar("T")

MIN_ROWS_PER_PROCESS = 1000
#: Rows per part a child sends back: small enough for the parent to start storing early.
PART_ROWS = 500
_LENGTH = struct.Struct("<Q")


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


def _send(fd: int, payload: Any) -> None:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_LENGTH.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


class Forked:
    """Tasks ``(offset, call)`` run in a forked child, in order; :meth:`results` yields each
    ``(offset, call())`` as the child sends it (or raises the child's error)."""

    def __init__(self, tasks: Sequence[tuple[int, Callable[[], Any]]]) -> None:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: compute, send, and leave without running any parent code
            status = 0
            try:
                os.close(read)
                _forbid_database()
                try:
                    for offset, call in tasks:
                        _send(write, ("part", offset, call()))
                    _send(write, ("done", None, None))
                except BaseException as exc:  # reported to the parent, which re-raises
                    _send(write, ("error", None, f"{type(exc).__name__}: {exc}"))
                    status = 1
            finally:
                os._exit(status)
        os.close(write)
        self.pid = pid
        self._blocks: queue.Queue[bytes] = queue.Queue()
        self._drain = threading.Thread(target=self._read_all, args=(read,), daemon=True)
        self._drain.start()
        self._finished = self._done = self._ended = False
        self._buffer = bytearray()

    def _read_all(self, fd: int) -> None:
        with os.fdopen(fd, "rb", buffering=0) as pipe:
            while block := pipe.read(1 << 20):
                self._blocks.put(block)
        self._blocks.put(b"")  # end of the pipe

    def results(self, *, wait: bool = True) -> Iterator[tuple[int, Any]]:
        """The child's results, part by part, as they arrive (``wait=False``: only those already
        received; call again for the rest). Raises the child's error."""
        try:
            while not self._done:
                while len(self._buffer) >= _LENGTH.size:
                    (size,) = _LENGTH.unpack_from(self._buffer)
                    if len(self._buffer) < _LENGTH.size + size:
                        break
                    frame = bytes(self._buffer[_LENGTH.size : _LENGTH.size + size])
                    kind, offset, value = pickle.loads(frame)  # noqa: S301 - our own child, our own pipe
                    del self._buffer[: _LENGTH.size + size]
                    if kind == "done":
                        self._done = True
                        self.join()
                        return
                    if kind == "error":
                        raise RuntimeError(f"Part of the batch failed in a worker process: {value}")
                    yield offset, value
                if self._ended:
                    raise RuntimeError("Part of the batch failed in a worker process: it ended early")
                try:
                    block = self._blocks.get(block=wait)
                except queue.Empty:
                    return
                self._ended = not block
                self._buffer += block
        except BaseException:
            self.join(stop=True)
            raise

    def join(self, *, stop: bool = False) -> None:
        """Wait for the child to end; ``stop``: end it now (its results, if not read, are dropped)."""
        if not self._finished:
            self._finished = True
            if stop:
                os.kill(self.pid, signal.SIGKILL)
            self._drain.join()
            os.waitpid(self.pid, 0)


def parallel_parts(
    compute: Callable[..., list[T]],
    rows: pd.DataFrame,
    work: Sequence[Any],
    *args: Any,
    caller_load: float = 0.0,
) -> Generator[tuple[int, list[T]], None, None]:
    """``compute(rows_part, work_part, *args, threads)`` over contiguous parts, in forked processes;
    yields ``(offset, results)`` per part of at most :data:`PART_ROWS` rows as it is ready, the
    parent's own parts and the children's interleaved (each part's results are in the order of its
    rows, ``offset`` its first row; the parts of each process come in order).

    ``caller_load``: the work the caller does in the parent with each result (e.g. storing it), as a
    fraction of the computation's: the parent then takes fewer rows, so that every process ends
    about together. With ``w`` processes its share is ``(1 - (w - 1) * caller_load) / w``.

    A child that fails makes the iteration raise its error after the parts already yielded.
    """
    n = len(rows)
    workers = workers_for(n)

    def call(lo: int, hi: int, threads: int) -> Callable[[], list[T]]:
        return lambda: compute(rows.iloc[lo:hi].reset_index(drop=True), list(work[lo:hi]), *args, threads)

    if workers == 1:
        if n:
            yield 0, call(0, n, 2 if n >= 100 else 1)()
        return
    own = min(max(round(n * (1 - (workers - 1) * caller_load) / workers), 0), n)
    bounds = [own + round(k * (n - own) / (workers - 1)) for k in range(workers)]
    children = [
        Forked(
            [
                (lo, call(lo, min(lo + PART_ROWS, bounds[k + 1]), 1))
                for lo in range(bounds[k], bounds[k + 1], PART_ROWS)
            ]
        )
        for k in range(workers - 1)
    ]
    try:
        # The parent's share in parts too, with the children's parts received meanwhile in between:
        # a caller that stores them keeps up instead of storing everything at the end.
        for lo in range(0, own, PART_ROWS):
            yield lo, call(lo, min(lo + PART_ROWS, own), 1)()
            for child in children:
                yield from child.results(wait=False)
        for child in children:
            yield from child.results()
    finally:  # the caller stopped early, or something failed: the children's work is not needed
        for child in children:
            child.join(stop=True)


def parallel_chunks(
    compute: Callable[..., list[T]], rows: pd.DataFrame, work: Sequence[Any], *args: Any
) -> list[T]:
    """``compute(rows_part, work_part, *args, threads)`` over contiguous parts, in forked processes.

    Returns the concatenated results in the order of ``rows``. A child that fails makes the whole call
    fail with its error, never a partial result.
    """
    parts = sorted(parallel_parts(compute, rows, work, *args), key=lambda part: part[0])
    return [result for _, part in parts for result in part]
