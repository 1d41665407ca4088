"""Progress for long work: a bar with counts and ETA on a terminal, plain periodic lines elsewhere.

Long work (refresh runs, imports, training, batches) also reports through an optional ``on_update``
callback, which the callers use to store progress on their run row so the admin and API can show it.

    with Progress(total=len(rows), label="parcels") as progress:
        for chunk in chunks:
            ...
            progress.advance(len(chunk))
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import IO

from tqdm import tqdm


class Progress:
    def __init__(
        self,
        *,
        total: int | None,
        label: str,
        stream: IO[str] | None = None,
        every_s: float = 5.0,
        on_update: Callable[[int, int | None], None] | None = None,
        update_every_s: float = 2.0,
    ) -> None:
        self.total = total
        self.label = label
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.every_s = every_s
        self.on_update = on_update
        self.update_every_s = update_every_s
        self._started = time.monotonic()
        self._last_line = self._started
        self._last_update = 0.0
        is_tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._bar: tqdm | None = (
            tqdm(total=total, desc=label, unit=" rows", file=self.stream, dynamic_ncols=True, smoothing=0.1)
            if is_tty
            else None
        )

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(ok=exc_type is None)

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self._bar is not None:
            self._bar.update(n)
        elif now - self._last_line >= self.every_s:
            self._last_line = now
            self.stream.write(self.line() + "\n")
            self.stream.flush()
        if self.on_update is not None and now - self._last_update >= self.update_every_s:
            self._last_update = now
            self.on_update(self.done, self.total)

    def line(self) -> str:
        elapsed = time.monotonic() - self._started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        if self.total:
            pct = 100.0 * self.done / self.total
            eta = (self.total - self.done) / rate if rate > 0 else float("nan")
            eta_text = f"{eta:.0f}s" if eta == eta else "?"
            return f"{self.label}: {self.done:,}/{self.total:,} ({pct:.0f}%) {rate:,.0f}/s, ETA {eta_text}"
        return f"{self.label}: {self.done:,} {rate:,.0f}/s"

    def close(self, *, ok: bool = True) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif ok:
            elapsed = time.monotonic() - self._started
            self.stream.write(f"{self.label}: {self.done:,} done in {elapsed:.1f}s\n")
            self.stream.flush()
        if self.on_update is not None:
            self.on_update(self.done, self.total)
