"""BeSt Address (FPS BOSA): every address point of Belgium, linked to the parcel it lies on.

Source: ``https://opendata.bosa.be/download/best/openaddress-be{bru,vlg,wal}.zip`` (one CSV per region;
the full XML is ``best-full-latest.zip``). Licence: CC0 in most published terms [verify]; credit
"BeSt Address, FPS BOSA". Cadence: weekly. CRS: Lambert 72 (``EPSG:31370_x/_y``, possibly renamed to
Lambert 2008 ``EPSG:3812_x/_y``: both are read, 3812 is transformed) and WGS84 (``EPSG:4326_lat/_lon``);
stored in EPSG:31370.

The CSV has 20 columns, read by name: ``EPSG:31370_x, EPSG:31370_y, EPSG:4326_lat, EPSG:4326_lon,
address_id, box_number, house_number, municipality_id, municipality_name_de/fr/nl, postcode,
postname_fr/nl, street_id, streetname_de/fr/nl, region_code, status``. Rows whose Lambert x is 0 (it
happens) take their point from lat/lon; rows with neither are rejected with the reason. Retired addresses
(``status`` retired) are skipped. A municipality missing from the database is created from the BeSt names
(source ``best``). A load replaces the BeSt addresses of the municipalities the file covers (a regional
file never deletes another region's addresses), then links each address to the parcel containing its
point (one set-based ``ST_Contains`` query on the GiST index).
"""

from __future__ import annotations

import csv
import datetime
import io
import re
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np
from django.db import connection, transaction

from opendata.connectors.base import (
    Connector,
    LoadResult,
    Rejection,
    RunContext,
    SourceError,
    check_archive,
    check_rejections,
    iter_chunks,
    register,
    stage_create,
    staged_swap,
)
from opendata.connectors.crs import inside_belgium, transformer
from opendata.connectors.mergers import NEW_CODES
from opendata.connectors.statbel.stats import municipality_resolver
from opendata.copy import copy_rows
from opendata.models import Municipality

REQUIRED = [
    "EPSG:4326_lat",
    "EPSG:4326_lon",
    "address_id",
    "box_number",
    "house_number",
    "municipality_id",
    "municipality_name_de",
    "municipality_name_fr",
    "municipality_name_nl",
    "postcode",
    "streetname_de",
    "streetname_fr",
    "streetname_nl",
    "status",
]
LAMBERT = {31370: ("EPSG:31370_x", "EPSG:31370_y"), 3812: ("EPSG:3812_x", "EPSG:3812_y")}
ADDRESS_COLUMNS = [
    "street_nl",
    "street_fr",
    "street_de",
    "house_number",
    "box",
    "postcode",
    "municipality_id",
    "point",
    "source",
    "source_id",
]
POSTCODE = re.compile(r"^\d{4}$")
NIS5 = re.compile(r"^\d{5}$")
CHUNK = 50_000
VALID_FROM_1977 = datetime.date(1977, 1, 1)


def open_csv(path: Path) -> tuple[IO[str], str]:
    """The CSV text of ``path`` (plain, or the first .csv in a zip) and its name."""
    if zipfile.is_zipfile(path):
        archive = zipfile.ZipFile(path)
        check_archive(archive, path.name)
        members = [n for n in archive.namelist() if n.lower().endswith(".csv")]
        if not members:
            raise SourceError(f"{path.name} holds no .csv file (it has {', '.join(archive.namelist()[:5])}).")
        return io.TextIOWrapper(archive.open(members[0]), encoding="utf-8-sig", newline=""), members[0]
    return open(path, encoding="utf-8-sig", newline=""), path.name


def _float(text: str) -> float:
    try:
        return float(text) if text.strip() else 0.0
    except ValueError:
        return float("nan")


@register
class BestAddressConnector(Connector):
    name = "best"
    title = "BeSt Address (FPS BOSA)"
    url = "https://opendata.bosa.be/download/best/openaddress-bevlg.zip"
    credit = "BeSt Address, FPS BOSA"
    schedule = ("0", "3", "0", "*", "*")  # Sundays 03:00
    suffix = ".zip"

    def live_url(self, options: dict[str, Any]) -> str | None:
        region = options.get("region", "vlg")
        if region not in {"bru", "vlg", "wal"}:
            raise SourceError(f"--option region must be bru, vlg or wal, not {region!r}.")
        return f"https://opendata.bosa.be/download/best/openaddress-be{region}.zip"

    def load(self, path: Path, ctx: RunContext) -> LoadResult:
        handle, name = open_csv(path)
        with handle:
            reader = csv.reader(handle)
            try:
                header = [h.strip() for h in next(reader)]
            except (StopIteration, UnicodeDecodeError, csv.Error) as exc:
                raise SourceError(f"{name} is empty or not a UTF-8 CSV ({exc}).") from exc
            index = {h: i for i, h in enumerate(header)}
            missing = [c for c in REQUIRED if c not in index]
            srid = next((s for s, (cx, cy) in LAMBERT.items() if cx in index and cy in index), None)
            if missing or srid is None:
                lambert = [] if srid else ["EPSG:31370_x/_y (or EPSG:3812_x/_y)"]
                raise SourceError(
                    f"{name} lacks the BeSt column(s) {', '.join(missing + lambert)}; its header is "
                    f"{', '.join(header)}. Is this a BeSt Address CSV? Nothing was loaded."
                )
            stage = stage_create("address", ADDRESS_COLUMNS, like="opendata_address")
            with connection.cursor() as cursor:
                cursor.execute(f'ALTER TABLE "{stage}" ADD COLUMN nis_code text')
            state = _State()
            with ctx.progress(total=None, label="BeSt addresses") as progress:
                for chunk in iter_chunks(enumerate(reader, start=2), CHUNK):
                    rows = self._chunk(chunk, index, srid, state)
                    copy_rows(stage, [*ADDRESS_COLUMNS, "nis_code"], rows)
                    progress.advance(len(chunk))
        if state.outside > 0.05 * max(state.read, 1):
            raise SourceError(
                f"{state.outside:,} of {state.read:,} addresses of {name} lie outside Belgium when their "
                f"{LAMBERT[srid][0]}/{LAMBERT[srid][1]} are read as EPSG:{srid}: the coordinates are in "
                "another coordinate system than the columns say. Nothing was loaded."
            )
        check_rejections(state.read, state.rejections, what="addresses")
        if state.read - state.retired - len(state.rejections) <= 0:
            raise SourceError(f"{name} holds no address. Nothing was loaded.")
        with transaction.atomic():
            created, municipality_ids = self._municipalities(stage, state.names)
            counts = staged_swap(
                target="opendata_address",
                stage=stage,
                key=["source", "source_id"],
                columns=ADDRESS_COLUMNS,
                scope="source = %s AND municipality_id = ANY(%s)",
                scope_params=[self.name, municipality_ids],
            )
            linked, touched = link_parcels(source=self.name, municipality_ids=municipality_ids)
        result = counts.as_counts("addresses")
        result.update(
            municipalities_created=created,
            retired_skipped=state.retired,
            lat_lon_fallback=state.fallback,
            parcel_links_changed=linked,
        )
        return LoadResult(
            rows_read=state.read - state.retired,
            counts=result,
            rejections=state.rejections,
            vintage=datetime.date.today().isoformat(),
            touched_parcels=touched,
        )

    def _chunk(
        self, chunk: list[tuple[int, list[str]]], index: dict[str, int], srid: int, state: _State
    ) -> list[tuple[Any, ...]]:
        cx, cy = (index[c] for c in LAMBERT[srid])
        lat, lon = index["EPSG:4326_lat"], index["EPSG:4326_lon"]
        width = len(index)
        kept: list[tuple[int, list[str]]] = []
        for line, row in chunk:
            state.read += 1
            if len(row) != width:
                state.reject(line, f"has {len(row)} fields instead of {width}")
                continue
            if row[index["status"]].strip().lower() == "retired":
                state.retired += 1
                continue
            kept.append((line, row))
        if not kept:
            return []
        x = np.array([_float(r[cx]) for _, r in kept])
        y = np.array([_float(r[cy]) for _, r in kept])
        if srid != 31370:
            given = (x != 0) & (y != 0)
            x[given], y[given] = transformer(srid).transform(x[given], y[given])
        fallback = ~((x != 0) & (y != 0))
        if fallback.any():
            lons = np.array([_float(kept[i][1][lon]) for i in np.flatnonzero(fallback)])
            lats = np.array([_float(kept[i][1][lat]) for i in np.flatnonzero(fallback)])
            fx, fy = transformer(4326).transform(lons, lats)
            usable = (lons != 0) & (lats != 0)
            x[fallback] = np.where(usable, fx, 0.0)
            y[fallback] = np.where(usable, fy, 0.0)
        ok = inside_belgium(x, y)
        rows = []
        for i, (line, row) in enumerate(kept):
            address_id = row[index["address_id"]].strip()
            if not ok[i]:
                if fallback[i] and not (x[i] and y[i]):
                    state.reject(line, f"address {address_id}: x is 0 and lat/lon are missing too")
                else:
                    if not fallback[i]:
                        state.outside += 1
                    state.reject(
                        line, f"address {address_id}: point ({x[i]:.0f}, {y[i]:.0f}) lies outside Belgium"
                    )
                continue
            problem = self._problem(row, index, address_id, state)
            if problem:
                state.reject(line, f"address {address_id or '?'}: {problem}")
                continue
            state.fallback += int(fallback[i])
            code = row[index["municipality_id"]].strip()
            state.names.setdefault(
                code, tuple(row[index[f"municipality_name_{lang}"]].strip() for lang in ("nl", "fr", "de"))
            )
            rows.append(
                (
                    row[index["streetname_nl"]].strip()[:150],
                    row[index["streetname_fr"]].strip()[:150],
                    row[index["streetname_de"]].strip()[:150],
                    row[index["house_number"]].strip(),
                    row[index["box_number"]].strip(),
                    row[index["postcode"]].strip(),
                    None,
                    f"SRID=31370;POINT({x[i]:.3f} {y[i]:.3f})",
                    self.name,
                    address_id,
                    code,
                )
            )
        return rows

    @staticmethod
    def _problem(row: list[str], index: dict[str, int], address_id: str, state: _State) -> str:
        if not address_id or len(address_id) > 64:
            return "the address_id is empty or longer than 64 characters"
        if address_id in state.ids:
            return "the address_id appears twice"
        state.ids.add(address_id)
        house = row[index["house_number"]].strip()
        if not house or len(house) > 20 or len(row[index["box_number"]].strip()) > 20:
            return f"house number {house!r} or box is empty or too long"
        if not POSTCODE.match(row[index["postcode"]].strip()):
            return f"postcode {row[index['postcode']]!r} does not have 4 digits"
        if not NIS5.match(row[index["municipality_id"]].strip()):
            return f"municipality_id {row[index['municipality_id']]!r} is not a 5-digit NIS code"
        return ""

    def _municipalities(self, stage: str, names: dict[str, tuple[str, ...]]) -> tuple[int, list[int]]:
        """Set the stage's municipality ids; create the municipalities the database lacks from the BeSt
        names. Returns how many were created and the ids of every municipality of the file."""
        resolve = municipality_resolver()
        missing = [code for code in sorted(names) if resolve(code) is None]
        Municipality.objects.bulk_create(
            [
                Municipality(
                    nis_code=code,
                    name_nl=names[code][0][:100],
                    name_fr=names[code][1][:100],
                    name_de=names[code][2][:100],
                    valid_from=NEW_CODES[code].date if code in NEW_CODES else VALID_FROM_1977,
                    source=self.name,
                )
                for code in missing
            ]
        )
        if missing:
            resolve = municipality_resolver()
        ids = {code: resolve(code) for code in names}
        with connection.cursor() as cursor:
            cursor.execute(
                f'UPDATE "{stage}" s SET municipality_id = m.id '  # noqa: S608
                "FROM unnest(%s::text[], %s::bigint[]) AS m(code, id) WHERE s.nis_code = m.code",
                [list(ids), list(ids.values())],
            )
            cursor.execute(f'ALTER TABLE "{stage}" DROP COLUMN nis_code')
        return len(missing), sorted({i for i in ids.values() if i is not None})


class _State:
    def __init__(self) -> None:
        self.read = 0
        self.retired = 0
        self.fallback = 0
        self.outside = 0
        self.rejections: list[Rejection] = []
        self.ids: set[str] = set()
        self.names: dict[str, tuple[str, ...]] = {}

    def reject(self, line: int, reason: str) -> None:
        self.rejections.append(Rejection(line, reason))


def link_parcels(*, source: str, municipality_ids: list[int]) -> tuple[int, list[int]]:
    """Point each address of ``source`` in these municipalities at the parcel containing it (the smallest
    when parcels overlap, none when no parcel does), in one statement. Returns how many links changed
    and the parcels that gained or lost an address."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH found AS (
                SELECT a.id, a.parcel_id AS old_parcel,
                       (SELECT p.id FROM opendata_parcel p
                         WHERE ST_Contains(p.geometry, a.point)
                         ORDER BY p.area_m2, p.id LIMIT 1) AS new_parcel
                  FROM opendata_address a
                 WHERE a.source = %s AND a.municipality_id = ANY(%s)
            )
            UPDATE opendata_address a SET parcel_id = found.new_parcel
              FROM found
             WHERE a.id = found.id AND a.parcel_id IS DISTINCT FROM found.new_parcel
            RETURNING found.old_parcel, found.new_parcel
            """,
            [source, municipality_ids],
        )
        changes = cursor.fetchall()
    touched = sorted({p for pair in changes for p in pair if p is not None})
    return len(changes), touched
