"""The contract every open-data connector follows, and the refresh run around it.

A connector knows one source (``name`` is what ``manage.py refresh_source NAME`` takes). It reads a local
file (a download of the live source, or a recorded one in tests) and loads it in three steps:

1. **parse and validate the whole input** (schema, CRS, geometry validity, code formats) into memory or a
   temporary staging table. A file that cannot be trusted as a whole (truncated, wrong schema, unknown CRS,
   too many bad rows) raises :class:`SourceError` with a sentence for a person; rows that are individually
   bad are *rejected* with their row number and reason and the rest go on.
2. **swap in within one transaction**: :func:`staged_swap` upserts the staged rows into the live table by
   their natural key and deletes the rows of the same source (and scope) that the new input no longer has.
   Nothing is written before the whole input has passed, so a failed run leaves the previous data as it was.
3. report a :class:`LoadResult`: counts, rejections, the vintage the source states, and which parcels the
   change touched (their features are recomputed).

:func:`refresh` wraps a connector in a :class:`~opendata.models.SourceRefreshRun`: it fetches the live URL
(timeouts, retries, conditional request) unless a file is given, skips a source whose checksum has not
changed since the last successful run, records counts/rejections/checksum/duration or the error, and on
success recomputes the touched parcels' features and queues retraining.
"""

from __future__ import annotations

import hashlib
import logging
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar

from django.conf import settings
from django.db import connection

from opendata.models import SourceRefreshRun
from opendata.progress import Progress

log = logging.getLogger(__name__)

MAX_STORED_REJECTIONS = 200
# Zip members that unpack more than this many times their packed size (and are over 16 MB) are refused:
# text and geometry pack 5-20 times; zip bombs pack thousands of times.
ZIP_MAX_RATIO = 200
ZIP_RATIO_MIN_BYTES = 16 << 20
# A file in which more than this share of the rows is bad is refused as a whole: it is more likely the
# wrong file (or the wrong CRS, or a renamed column) than a few bad rows.
MAX_REJECTED_FRACTION = 0.05


class SourceError(Exception):
    """The input is refused as a whole; the message says why, for a person. Nothing was written."""


@dataclass(frozen=True)
class Rejection:
    row: int | str  # line or feature number (1-based, as a person counts), or an id from the source
    reason: str


@dataclass
class LoadResult:
    rows_read: int
    counts: dict[str, int] = field(default_factory=dict)  # e.g. {"parcels_inserted": 3, ...}
    rejections: list[Rejection] = field(default_factory=list)
    vintage: str = ""  # edition of the data as the source states it (date or year)
    # Parcels whose features may have changed: ids, or None for "all parcels" (e.g. a new OSM layer).
    touched_parcels: list[int] | None = field(default_factory=list)

    @property
    def rows_loaded(self) -> int:
        return self.rows_read - len(self.rejections)


@dataclass
class RunContext:
    """What a connector gets besides its file: the run row and progress reporting."""

    run: SourceRefreshRun
    stream: IO[str] | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def progress(self, *, total: int | None, label: str) -> Progress:
        def on_update(done: int, total_: int | None) -> None:
            SourceRefreshRun.objects.filter(pk=self.run.pk).update(progress_done=done, progress_total=total_)

        return Progress(total=total, label=label, stream=self.stream, on_update=on_update)


class Connector(ABC):
    """One open-data source. Subclasses set the class attributes and implement :meth:`load`."""

    name: ClassVar[str]  # refresh_source NAME, e.g. "cadgis"
    title: ClassVar[str]  # for staff, e.g. "CadGIS cadastral plan (FPS Finance)"
    url: ClassVar[str | None] = None  # live download URL; None when only --file makes sense
    credit: ClassVar[str] = ""  # attribution to show wherever the data is shown
    # crontab (minute, hour, day_of_week, day_of_month, month_of_year), Europe/Brussels; None = on demand
    schedule: ClassVar[tuple[str, str, str, str, str] | None] = None
    suffix: ClassVar[str] = ""  # file name suffix of a download, e.g. ".zip", ".osm.pbf"

    def live_url(self, options: dict[str, Any]) -> str | None:
        """The URL to fetch when no file is given (options come from the command line / task)."""
        return self.url

    @abstractmethod
    def load(self, path: Path, ctx: RunContext) -> LoadResult:
        """Parse and validate all of ``path``, then swap it in within one transaction."""


def check_rejections(rows_read: int, rejections: Sequence[Rejection], *, what: str = "rows") -> None:
    """Refuse the whole input when too many rows are bad (see :data:`MAX_REJECTED_FRACTION`)."""
    if rows_read and len(rejections) > MAX_REJECTED_FRACTION * rows_read:
        first = "; ".join(f"{r.row}: {r.reason}" for r in rejections[:3])
        raise SourceError(
            f"{len(rejections):,} of {rows_read:,} {what} are invalid (more than "
            f"{MAX_REJECTED_FRACTION:.0%}), so the file was refused as a whole and nothing was changed. "
            f"First problems: {first}"
        )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- staging and swap ------------------------------------------------------------------------------


@dataclass
class SwapCounts:
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    touched_ids: list[int] = field(default_factory=list)  # ids of rows inserted, updated (not deleted)

    def as_counts(self, prefix: str) -> dict[str, int]:
        return {
            f"{prefix}_inserted": self.inserted,
            f"{prefix}_updated": self.updated,
            f"{prefix}_deleted": self.deleted,
            f"{prefix}_unchanged": self.unchanged,
        }


def stage_create(table: str, columns: Sequence[str], *, like: str) -> str:
    """Create a temporary staging table ``stage_<table>`` with ``columns`` typed as in table ``like``.

    It lives until the end of the session's transaction or connection; the name is returned.
    """
    stage = f"stage_{table}"
    cols = ", ".join(f'"{c}"' for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(f'DROP TABLE IF EXISTS "{stage}"')
        cursor.execute(f'CREATE TEMP TABLE "{stage}" AS SELECT {cols} FROM "{like}" WITH NO DATA')  # noqa: S608
    return stage


def staged_swap(
    *,
    target: str,
    stage: str,
    key: Sequence[str],
    columns: Sequence[str],
    scope: str = "TRUE",
    scope_params: Sequence[Any] = (),
    delete_missing: bool = True,
) -> SwapCounts:
    """Make the rows of ``target`` within ``scope`` equal to the rows of ``stage``, matched on ``key``.

    Rows whose ``columns`` differ are updated in place (their ids, and so every foreign key pointing at
    them, survive), new keys are inserted, and keys of ``target`` within ``scope`` (an SQL condition on
    ``target``'s columns, e.g. ``source = %s``) that the stage lacks are deleted. Call inside
    ``transaction.atomic()``; the stage must have unique keys.
    """
    # Identifiers come from our own code, never from input; values go as parameters.
    q = '"{}"'.format
    on = " AND ".join(f"t.{q(k)} = s.{q(k)}" for k in key)
    values = [c for c in columns if c not in key]
    differ = " OR ".join(f"t.{q(c)} IS DISTINCT FROM s.{q(c)}" for c in values) or "FALSE"
    counts = SwapCounts()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {q(stage)}")  # noqa: S608
        staged = cursor.fetchone()[0]
        if delete_missing:
            missing = f"NOT EXISTS (SELECT 1 FROM {q(stage)} s WHERE {on})"  # noqa: S608
            delete = f"DELETE FROM {q(target)} t WHERE ({scope}) AND {missing}"  # noqa: S608
            cursor.execute(delete, list(scope_params))
            counts.deleted = cursor.rowcount
        if values:
            sets = ", ".join(f"{q(c)} = s.{q(c)}" for c in values)
            update = f"UPDATE {q(target)} t SET {sets} FROM {q(stage)} s WHERE {on} AND ({differ})"  # noqa: S608
            cursor.execute(update + " RETURNING t.id")
            updated = [row[0] for row in cursor.fetchall()]
            counts.updated = len(updated)
            counts.touched_ids.extend(updated)
        cols = ", ".join(q(c) for c in columns)
        picked = ", ".join("s." + q(c) for c in columns)
        new = f"NOT EXISTS (SELECT 1 FROM {q(target)} t WHERE {on})"  # noqa: S608
        insert = f"INSERT INTO {q(target)} ({cols}) SELECT {picked} FROM {q(stage)} s WHERE {new}"  # noqa: S608
        cursor.execute(insert + " RETURNING id")
        inserted = [row[0] for row in cursor.fetchall()]
        counts.inserted = len(inserted)
        counts.touched_ids.extend(inserted)
    counts.unchanged = staged - counts.inserted - counts.updated
    return counts


# --- registry ---------------------------------------------------------------------------------------

CONNECTORS: dict[str, type[Connector]] = {}


def register(cls: type[Connector]) -> type[Connector]:
    """Class decorator: make a connector known to ``refresh_source`` and to the schedules."""
    if cls.name in CONNECTORS and CONNECTORS[cls.name] is not cls:
        raise ValueError(f"two connectors are named {cls.name!r}")
    CONNECTORS[cls.name] = cls
    return cls


def connectors() -> dict[str, type[Connector]]:
    """Every registered connector by name (importing the connector modules registers them)."""
    import opendata.connectors  # noqa: F401  (its __init__ imports every connector module)

    return dict(sorted(CONNECTORS.items()))


def iter_chunks(rows: Iterable[Any], size: int) -> Iterable[list[Any]]:
    chunk: list[Any] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


FollowUp = Callable[[SourceRefreshRun, LoadResult], None]


def check_archive(archive: zipfile.ZipFile, name: str) -> None:
    """Refuse a zip whose members would unpack beyond ``UNZIPPED_MAX_BYTES`` or that packs suspiciously well.

    Connectors read members through GDAL's /vsizip/ or into memory and never extract to disk, but a
    member read whole (a Statbel table) or a zip bomb must not exhaust memory or time.
    """
    limit = settings.UNZIPPED_MAX_BYTES
    total = 0
    for info in archive.infolist():
        total += info.file_size
        ratio = info.file_size // max(info.compress_size, 1)
        if info.file_size > ZIP_RATIO_MIN_BYTES and ratio > ZIP_MAX_RATIO:
            raise SourceError(
                f"{name} was refused: {info.filename} would unpack {ratio:,} times larger than it is "
                "packed, which no real source does. Nothing was changed."
            )
    if total > limit:
        raise SourceError(
            f"{name} was refused: it would unpack to {total:,} bytes, over the limit of {limit:,} "
            "(UNZIPPED_MAX_BYTES). Nothing was changed."
        )
