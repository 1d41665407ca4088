"""Download a live source to a file: timeouts, retries with back-off, conditional requests.

``fetch`` sends ``If-None-Match`` / ``If-Modified-Since`` from the last successful run; a ``304 Not
Modified`` answer means the source is unchanged and nothing is downloaded. The body is streamed to a
temporary file next to the destination and renamed only when complete, so an interrupted download
never leaves a truncated file where a good one was. A body larger than ``FETCH_MAX_BYTES`` (setting;
the largest real source, the national OSM extract or a DSM tile set, is a few GB) is refused, from its
``Content-Length`` before anything is written and again while streaming when the server sends none.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from opendata.connectors.base import SourceError

CONNECT_TIMEOUT_S = 15
READ_TIMEOUT_S = 300
RETRIES = 3
USER_AGENT = "notary-valuation open-data refresh (+https://github.com/)"


@dataclass(frozen=True)
class Fetched:
    path: Path | None  # None when the server said 304 Not Modified
    etag: str
    last_modified: str

    @property
    def not_modified(self) -> bool:
        return self.path is None


def session(retries: int = RETRIES) -> requests.Session:
    retry = Retry(
        total=retries,
        backoff_factor=2.0,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=("GET", "HEAD"),
        respect_retry_after_header=True,
    )
    http = requests.Session()
    http.mount("http://", HTTPAdapter(max_retries=retry))
    http.mount("https://", HTTPAdapter(max_retries=retry))
    http.headers["User-Agent"] = USER_AGENT
    return http


def fetch(
    url: str,
    dest: Path,
    *,
    etag: str = "",
    last_modified: str = "",
    timeout: tuple[float, float] = (CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
    retries: int = RETRIES,
    max_bytes: int | None = None,
) -> Fetched:
    """GET ``url`` into ``dest`` unless the server says it is unchanged since ``etag``/``last_modified``."""
    limit = settings.FETCH_MAX_BYTES if max_bytes is None else max_bytes
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".part")
    try:
        with session(retries).get(url, headers=headers, stream=True, timeout=timeout) as response:
            if response.status_code == 304:
                return Fetched(None, etag, last_modified)
            if response.status_code != 200:
                raise SourceError(f"{url} answered HTTP {response.status_code} {response.reason}.")
            expected = response.headers.get("Content-Length")
            if expected is not None and expected.isdigit() and int(expected) > limit:
                raise SourceError(_too_big(url, limit, f"it announces {int(expected):,} bytes"))
            written = 0
            with open(partial, "wb") as handle:
                for block in response.iter_content(chunk_size=1 << 20):
                    written += len(block)
                    if written > limit:
                        raise SourceError(_too_big(url, limit, f"more than {limit:,} bytes came"))
                    handle.write(block)
            plain = response.headers.get("Content-Encoding") in (None, "identity")
            if expected is not None and plain and written != int(expected):
                raise SourceError(
                    f"The download of {url} stopped early: {written:,} of {int(expected):,} bytes."
                )
            os.replace(partial, dest)
            return Fetched(dest, response.headers.get("ETag", ""), response.headers.get("Last-Modified", ""))
    except requests.RequestException as exc:
        raise SourceError(f"Could not download {url}: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)


def _too_big(url: str, limit: int, why: str) -> str:
    return (
        f"The download of {url} was refused: {why}, over the limit of {limit:,} bytes "
        "(FETCH_MAX_BYTES). Nothing was changed."
    )
