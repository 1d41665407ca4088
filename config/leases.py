"""Leases on long work: a PostgreSQL advisory lock, held on a connection of its own while the work runs.

A refresh run, a training run or a partner's batch is marked "running" in its table while a worker
does it. If that worker is killed (SIGKILL, out of memory, a restarted machine), the row would say
"running" forever, and a second delivery of the same task (Celery redelivers unacknowledged tasks:
``acks_late``) could not tell a live run from a dead one. The lease tells them apart:

- the process doing the work holds a session-level advisory lock for it, on a dedicated connection,
  for as long as it works. PostgreSQL releases the lock when that session ends, so the lock dies
  with the process, and never earlier;
- a row marked "running" whose lease nobody holds was abandoned (the next run, or the periodic
  check, marks it failed);
- a second delivery that finds the lease taken leaves the work to the process holding it.

The dedicated connection keeps the lock out of Django's connection handling (``CONN_MAX_AGE``, the
connections Celery closes between tasks, the batch's forked processes, which never touch a parent's
connection and leave with ``os._exit``).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from django.db import connection

log = logging.getLogger(__name__)


def _keys(kind: str, key: int | str) -> tuple[int, int]:
    """The two 31-bit keys of ``pg_advisory_lock(int, int)``: one space per kind of work, then the
    work's id (a row id, or a name hashed)."""
    space = zlib.crc32(f"notary:{kind}".encode()) & 0x7FFFFFFF
    number = zlib.crc32(key.encode()) if isinstance(key, str) else int(key)
    return space, number & 0x7FFFFFFF


def _connect(kind: str) -> psycopg.Connection[Any]:
    params = connection.get_connection_params()
    for django_only in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(django_only, None)
    params["application_name"] = f"notary lease {kind}"[:63]
    params.setdefault("connect_timeout", 10)
    return psycopg.connect(autocommit=True, **params)


class Lease:
    """``pg_try_advisory_lock`` on a connection of its own; :meth:`acquire` says whether it was free."""

    def __init__(self, kind: str, key: int | str) -> None:
        self.kind, self.key = kind, key
        self.keys = _keys(kind, key)
        self._conn: psycopg.Connection[Any] | None = None

    def acquire(self) -> bool:
        conn = _connect(self.kind)
        try:
            row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", self.keys).fetchone()
        except BaseException:
            conn.close()
            raise
        if not (row and row[0]):
            conn.close()
            return False
        self._conn = conn
        return True

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", self.keys)
        except psycopg.Error:  # the session is gone already, and its lock with it
            log.warning("lease %s %s: the connection was lost before release", self.kind, self.key)
        finally:
            conn.close()


@contextmanager
def lease(kind: str, key: int | str) -> Iterator[bool]:
    """Hold the lease for the block when it is free; the block gets whether it was."""
    held = Lease(kind, key)
    got = held.acquire()
    try:
        yield got
    finally:
        if got:
            held.release()


def lease_held(kind: str, key: int | str) -> bool:
    """Whether some live session holds the lease (read from ``pg_locks``; takes nothing)."""
    space, number = _keys(kind, key)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND classid = %s::bigint::oid AND objid = %s::bigint::oid AND objsubid = 2)",
            [space, number],
        )
        row = cursor.fetchone()
    return bool(row and row[0])
