"""What the refreshes read is size-limited: downloads, and what a zip would unpack to."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from opendata.connectors.base import SourceError
from opendata.connectors.fetch import fetch
from opendata.connectors.statbel.tables import read_table
from tests.servers import Quiet, http_serve


class _Big(Quiet):
    size = 3 << 20
    announce = True

    def do_GET(self) -> None:
        self.send_response(200)
        if self.announce:
            self.send_header("Content-Length", str(self.size))
        self.end_headers()
        chunk = b"x" * (1 << 16)
        try:
            for _ in range(self.size // len(chunk)):
                self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading, as it should


class _Unannounced(_Big):
    announce = False
    protocol_version = "HTTP/1.0"  # the body ends when the connection closes: no length known


@pytest.fixture
def served() -> Iterator[tuple[str, ...]]:
    with http_serve(_Big) as announced, http_serve(_Unannounced) as unannounced:
        yield f"{announced}/file.zip", f"{unannounced}/file.zip"


def test_a_download_over_the_limit_is_refused_and_leaves_nothing(served, tmp_path: Path) -> None:
    announced, unannounced = served
    dest = tmp_path / "file.zip"
    for url in (announced, unannounced):
        with pytest.raises(SourceError, match="over the limit of 1,048,576 bytes"):
            fetch(url, dest, retries=0, max_bytes=1 << 20)
        assert list(tmp_path.iterdir()) == []  # no partial file, no file
    assert fetch(announced, dest, retries=0, max_bytes=4 << 20).path == dest
    assert dest.stat().st_size == 3 << 20


def test_the_download_limit_is_a_setting(served, settings, tmp_path: Path) -> None:
    settings.FETCH_MAX_BYTES = 1 << 20
    with pytest.raises(SourceError, match="FETCH_MAX_BYTES"):
        fetch(served[0], tmp_path / "f", retries=0)


def _zip(path: Path, name: str, data: bytes) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return path


def test_a_zip_bomb_is_refused_before_it_is_read(tmp_path: Path) -> None:
    bomb = _zip(tmp_path / "table.zip", "table.txt", b"0" * (64 << 20))  # 64 MB of zeros packs ~1000x
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(SourceError, match="times larger than it is packed"):
        read_table(bomb)


def test_a_zip_over_the_unpacked_limit_is_refused(tmp_path: Path, settings) -> None:
    settings.UNZIPPED_MAX_BYTES = 1000
    table = _zip(tmp_path / "t.zip", "t.txt", b"CD_REFNIS|MS_POPULATION\n" + b"11001|1234\n" * 200)
    with pytest.raises(SourceError, match="UNZIPPED_MAX_BYTES"):
        read_table(table)
    settings.UNZIPPED_MAX_BYTES = 1 << 20
    assert read_table(table) is not None  # the same file within the limit is read


def test_an_xlsx_with_an_entity_expansion_is_refused(tmp_path: Path) -> None:
    """openpyxl parses through defusedxml: a 'billion laughs' workbook is an error, not a hang."""
    from openpyxl import Workbook

    buffer = io.BytesIO()
    Workbook().save(buffer)
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + b"".join(
            f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode()
            for i in range(1, 10)
        )
        + b']><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">&lol9;</workbook>'
    )
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    bad = tmp_path / "laughs.xlsx"
    with zipfile.ZipFile(bad, "w") as out:
        for info in source.infolist():
            data = laughs if info.filename == "xl/workbook.xml" else source.read(info.filename)
            out.writestr(info, data)
    with pytest.raises(SourceError, match="not a readable xlsx") as refused:
        read_table(bad)
    causes, cause = [], refused.value.__cause__
    while cause is not None:
        causes.append(type(cause).__name__)
        cause = cause.__cause__ or cause.__context__
    assert "EntitiesForbidden" in causes  # refused by defusedxml, not by luck
