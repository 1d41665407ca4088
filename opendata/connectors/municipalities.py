"""Municipality boundaries after the 1 January 2025 mergers, and the crosswalk from the old NIS codes.

Source: Statbel, the statistical sectors dissolved into municipalities, or any municipality layer with a
NIS code column: the live default is Statbel's sector file
``https://statbel.fgov.be/sites/default/files/files/opendata/Statistische%20sectoren/
sh_statbel_statistical_sectors_31370_{YEAR}0101.shp.zip`` (``--option year=YYYY``); the repository's test
files are the 2025 boundaries of Flanders and Brussels by Provincies in Cijfers (fields ``geoitem``,
``naam``) and the 581 municipalities of 2020 as TopoJSON (``nis``, ``name_nl``, ``name_fr``).
Licence: Statbel open data licence (free, commercial use allowed; cite "Statbel" and the date); credit
"Provincies in Cijfers / Statbel" for the Flemish file. Cadence: yearly (1 January). CRS: EPSG:31370 or
3812 shapefiles/GeoPackages, WGS84 GeoJSON/TopoJSON; stored in EPSG:31370.

A file on the pre-2025 codes (the 581) is a valid input too: its polygons are dissolved into the current
municipalities through :mod:`opendata.connectors.mergers`, its names fill names that are missing, and it
never replaces a boundary already loaded from a current file (it is coarser). Rows are upserted on
``nis_code`` so their ids, which addresses and sectors reference, survive. The crosswalk
(:class:`~opendata.models.MunicipalityCrosswalk`) is rebuilt after every load from the municipalities in
the database: every current code maps to itself, every merged or recoded code to its successor.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from pathlib import Path
from typing import Any

import shapely
from django.db import connection, transaction
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from opendata.connectors.base import (
    Connector,
    LoadResult,
    Rejection,
    RunContext,
    SourceError,
    check_rejections,
    register,
    stage_create,
    staged_swap,
)
from opendata.connectors.mergers import (
    FORMER_CODES,
    MERGER_DATE_2025,
    MERGERS_2025,
    NEW_CODES,
    current_code,
    retired_codes,
)
from opendata.connectors.statbel.geo import as_multipolygon, column_map, ewkb, read_layer
from opendata.connectors.statbel.stats import parcels_of
from opendata.connectors.statbel.tables import NIS5
from opendata.copy import copy_rows
from opendata.models import Municipality

# Most current municipalities date from the merger of 1 January 1977.
VALID_FROM_1977 = datetime.date(1977, 1, 1)
CODE_COLUMNS = ("geoitem", "nis", "nis_code", "niscode", "nis5", "cd_munty_refnis", "cd_refnis")
NAME_NL_COLUMNS = ("name_nl", "naam", "tx_munty_descr_nl", "naam_nl", "gemeente")
NAME_FR_COLUMNS = ("name_fr", "tx_munty_descr_fr", "nom", "nom_fr")
NAME_DE_COLUMNS = ("name_de", "tx_munty_descr_de")
MUNICIPALITY_COLUMNS = [
    "nis_code",
    "name_nl",
    "name_fr",
    "name_de",
    "geometry",
    "valid_from",
    "valid_to",
    "source",
]
CROSSWALK_COLUMNS = ["old_nis_code", "old_name", "municipality_id", "valid_from", "source"]


def _pick(columns: dict[str, str], names: tuple[str, ...]) -> str | None:
    return next((columns[n] for n in names if n in columns), None)


def _layer(path: Path) -> str | None:
    """The municipality layer of a multi-layer file (the TopoJSON has provinces and arrondissements too)."""
    import pyogrio

    from opendata.connectors.statbel.geo import vector_source

    try:
        layers = [str(name) for name in pyogrio.list_layers(vector_source(path))[:, 0]]
    except Exception:  # unreadable: read_layer says why
        return None
    if len(layers) < 2:
        return None
    return next((n for n in layers if "munic" in n.lower() or "gemeente" in n.lower()), layers[0])


@register
class MunicipalitiesConnector(Connector):
    name = "municipalities"
    title = "Municipalities after the 2025 mergers, with the old-code crosswalk (Statbel)"
    url = (
        "https://statbel.fgov.be/sites/default/files/files/opendata/Statistische%20sectoren/"
        "sh_statbel_statistical_sectors_31370_{year}0101.shp.zip"
    )
    credit = "Statbel (Directorate-general Statistics - Statistics Belgium); Provincies in Cijfers"
    schedule = ("0", "4", "*", "15", "1")  # 15 January, 04:00: Statbel publishes the 1 January edition
    suffix = ".zip"

    def live_url(self, options: dict[str, Any]) -> str | None:
        year = options.get("year") or datetime.date.today().year
        return str(self.url).format(year=year)

    def load(self, path: Path, ctx: RunContext) -> LoadResult:
        frame = read_layer(path, layer=_layer(path), what="municipalities")
        columns = column_map(frame.columns)
        code_column = _pick(columns, CODE_COLUMNS)
        if code_column is None:
            raise SourceError(
                f"{path.name} has no NIS code column (one of {', '.join(CODE_COLUMNS)}); it has "
                f"{', '.join(c for c in frame.columns if c != 'geometry')}. Nothing was loaded."
            )
        if "cd_sector" in columns:  # Statbel sectors: dissolve into municipalities
            frame = frame.dissolve(by=code_column, as_index=False, aggfunc="first")
        name_columns = [
            _pick(columns, names) for names in (NAME_NL_COLUMNS, NAME_FR_COLUMNS, NAME_DE_COLUMNS)
        ]

        rejections: list[Rejection] = []
        geoms: dict[str, list[BaseGeometry]] = defaultdict(list)
        names: dict[str, tuple[str, str, str]] = {}
        for number, record in enumerate(frame.itertuples(index=False), start=1):
            values = record._asdict()
            code = str(values[code_column] or "").strip()
            if code.endswith(".0"):
                code = code[:-2]
            if not NIS5.match(code):
                rejections.append(Rejection(number, f"NIS code {code!r} does not have 5 digits"))
                continue
            geom = values["geometry"]
            if geom is None or geom.is_empty:
                rejections.append(Rejection(number, f"municipality {code} has no geometry"))
                continue
            if not geom.is_valid:
                geom = shapely.make_valid(geom)
            polygons = as_multipolygon(geom)
            if polygons is None or polygons.is_empty:
                why = explain_validity(values["geometry"])
                rejections.append(Rejection(number, f"municipality {code} has no usable polygon ({why})"))
                continue
            geoms[code].append(polygons)
            names[code] = tuple(  # type: ignore[assignment]
                str(values[c] or "").strip() if c else "" for c in name_columns
            )
        rows_read = len(frame)
        check_rejections(rows_read, rejections, what="municipalities")
        if not geoms:
            raise SourceError(f"{path.name} holds no usable municipality. Nothing was loaded.")

        old_codes = sorted(set(geoms) & retired_codes())
        pre_2025 = bool(old_codes)
        stage_rows = self._current_rows(geoms, names)
        with transaction.atomic():
            stage = stage_create("municipality", MUNICIPALITY_COLUMNS, like="opendata_municipality")
            copy_rows(stage, MUNICIPALITY_COLUMNS, stage_rows)
            _keep_existing(stage, keep_geometry=pre_2025)
            counts = staged_swap(
                target="opendata_municipality",
                stage=stage,
                key=["nis_code"],
                columns=MUNICIPALITY_COLUMNS,
                delete_missing=False,
            )
            retired = Municipality.objects.filter(nis_code__in=retired_codes(), valid_to__isnull=True).update(
                valid_to=MERGER_DATE_2025 - datetime.timedelta(days=1)
            )
            crosswalk = crosswalk_rebuild(source=self.name)
        result_counts = counts.as_counts("municipalities")
        result_counts.update(crosswalk.as_counts("crosswalk"))
        result_counts["municipalities_retired"] = retired
        result_counts["old_codes_dissolved"] = len(old_codes)
        return LoadResult(
            rows_read=rows_read,
            counts=result_counts,
            rejections=rejections,
            vintage="pre-2025 codes" if pre_2025 else MERGER_DATE_2025.isoformat(),
            touched_parcels=parcels_of("municipality_id", counts.touched_ids),
        )

    def _current_rows(
        self, geoms: dict[str, list[BaseGeometry]], names: dict[str, tuple[str, str, str]]
    ) -> list[tuple[Any, ...]]:
        """One row per current code: old codes' polygons dissolved into their successor."""
        grouped: dict[str, list[BaseGeometry]] = defaultdict(list)
        for code, parts in geoms.items():
            grouped[current_code(code)].extend(parts)
        rows = []
        for code, parts in sorted(grouped.items()):
            geom = parts[0] if len(parts) == 1 else as_multipolygon(shapely.union_all(parts))
            merger = NEW_CODES.get(code)
            name_nl, name_fr, name_de = names.get(code, ("", "", ""))
            if merger is not None:  # a new code: the file may lack it (pre-2025 input) or its French name
                name_nl, name_fr = name_nl or merger.name_nl, name_fr or merger.name_fr
            valid_from = merger.date if merger is not None else VALID_FROM_1977
            rows.append((code, name_nl, name_fr, name_de, ewkb(geom), valid_from, None, self.name))
        return rows


def _keep_existing(stage: str, *, keep_geometry: bool) -> None:
    """Fill what the input lacks from the rows already there: names it does not give, and (for a coarse
    pre-2025 input) the boundary already loaded from a current file."""
    q = '"{}"'.format
    sets = [
        f"{c} = CASE WHEN s.{c} = '' THEN t.{c} ELSE s.{c} END" for c in ("name_nl", "name_fr", "name_de")
    ]
    if keep_geometry:
        sets.append("geometry = COALESCE(t.geometry, s.geometry)")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {q(stage)} s SET {', '.join(sets)} FROM opendata_municipality t "  # noqa: S608
            "WHERE t.nis_code = s.nis_code"
        )


def crosswalk_rebuild(*, source: str = "municipalities") -> Any:
    """Make MunicipalityCrosswalk map every old code to the current municipality now in the database."""
    current = {
        code: (pk, name)
        for code, pk, name in Municipality.objects.filter(valid_to__isnull=True).values_list(
            "nis_code", "id", "name_nl"
        )
    }
    new_2025 = {m.new_code for m in MERGERS_2025} - {c for m in MERGERS_2025 for c, _ in m.old}
    rows: dict[str, tuple[Any, ...]] = {}
    for code, (pk, name) in current.items():
        if code not in new_2025 and NIS5.match(code):
            rows[code] = (code, name, pk, MERGER_DATE_2025, source)
    for code, former in FORMER_CODES.items():
        target = current.get(former.current_code)
        if target is not None:
            rows[code] = (code, former.old_name, target[0], former.valid_from, source)
    stage = stage_create("municipalitycrosswalk", CROSSWALK_COLUMNS, like="opendata_municipalitycrosswalk")
    copy_rows(stage, CROSSWALK_COLUMNS, [rows[code] for code in sorted(rows)])
    return staged_swap(
        target="opendata_municipalitycrosswalk",
        stage=stage,
        key=["old_nis_code"],
        columns=CROSSWALK_COLUMNS,
        scope="source = %s",
        scope_params=[source],
    )
