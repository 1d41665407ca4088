"""CadGIS cadastral plan (FPS Finance): parcels (Bpn_CaPa) and cadastral buildings (Bpn_CaBu).

- Source: the per-municipality extract
  ``https://eservices.minfin.fgov.be/myminfin-rest/cadastral-plan/cadastralPlan/{YEAR}/{NIS5}/72``
  (options ``nis``, 5 digits or ``Belgium``, default Belgium; ``year``, default this year), a zip of
  shapefiles named like ``34002_Anzegem_PP-FiscSit_Lb72_01012017.zip``; or the WFS
  ``https://ccff02.minfin.fgov.be/geoservices/arcgis/services/WMS/Cadastral_LayersWFS/MapServer/WFSServer``
  (typename ``CL:Cadastral_parcel``, GML 3.2 with CaPaKey, CaSeKey, Status, LastUpdDTS...), read with
  ``--file``. Folders and GeoPackages with the same layer names work too.
- Licence: FPS Finance open data (free reuse, cite the source).
- Cadence: the fiscal situation of 1 January, published yearly, current extracts on demand; refreshed
  weekly here (an unchanged download is skipped by its checksum).
- CRS: extracts come in Lambert 72 (EPSG:31370) or Lambert 2008 (EPSG:3812), read from the ``.prj`` (a
  shapefile without one is refused); stored in EPSG:31370.

The scope of a load is what the file covers: the CadGIS parcels whose cadastral division (the CaPaKey's
first five digits) occurs in the file, plus, with a NIS code (option ``nis`` or the zip name), the
CadGIS parcels of that municipality. Parcels in that scope that the file no longer has are deleted;
other divisions and other sources are left alone. Cadastral buildings of those parcels are replaced the
same way (source id: RecId/OBJECTID, or the CaPaKey and row number when the file has no id).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import numpy as np
from django.db import transaction

from opendata.connectors import cadastre
from opendata.connectors.base import (
    Connector,
    LoadResult,
    Rejection,
    RunContext,
    SourceError,
    check_rejections,
    register,
)

SOURCE = "cadgis"
LAYERS = {"parcels": ("capa", "cadastral_parcel", "parcel"), "buildings": ("cabu", "building")}
ZIP_NAME = re.compile(
    r"^(?P<nis>\d{5})_.*?_(?P<day>\d{2})(?P<month>\d{2})(?P<year>\d{4})\.zip$", re.IGNORECASE
)
PARCEL_TYPES = {"PR", "PP"}


@register
class CadGISConnector(Connector):
    name = SOURCE
    title = "CadGIS cadastral plan (FPS Finance): parcels and cadastral buildings"
    url = "https://eservices.minfin.fgov.be/myminfin-rest/cadastral-plan/cadastralPlan/{year}/{nis}/72"
    credit = "Cadastral plan: FPS Finance (CadGIS)"
    schedule = ("15", "3", "1", "*", "*")  # Mondays 03:15, Brussels time
    suffix = ".zip"

    def live_url(self, options: dict[str, Any]) -> str | None:
        nis = str(options.get("nis") or "Belgium")
        year = str(options.get("year") or dt.date.today().year)
        if not (re.fullmatch(r"\d{5}", nis) or nis == "Belgium") or not re.fullmatch(r"\d{4}", year):
            raise SourceError(
                f"Option nis must be a 5-digit NIS code or Belgium and year 4 digits, not {nis}/{year}."
            )
        return self.url.format(year=year, nis=nis) if self.url else None

    def load(self, path: Path, ctx: RunContext) -> LoadResult:
        layers = cadastre.find_layers(path, LAYERS)
        if "parcels" not in layers:
            raise SourceError(
                f"No parcel layer (Bpn_CaPa or Cadastral_parcel) found in {path.name}; nothing was changed."
            )
        named = ZIP_NAME.match(path.name)
        nis = str(ctx.options.get("nis") or (named["nis"] if named else ""))
        if nis and not re.fullmatch(r"\d{5}", nis):
            nis = ""

        parcels = cadastre.read_layer(layers["parcels"])
        rows, rejected, repaired, merged = _parcel_rows(parcels, nis)
        ids = parcels.column("RecId", "OBJECTID", "gml_id")
        rejections = cadastre.rejections_of(rejected, ids)
        check_rejections(len(parcels), rejections, what="parcels")

        buildings = cadastre.read_layer(layers["buildings"]) if "buildings" in layers else None
        building_rows = None
        if buildings is not None:
            building_rows, building_rejected = _building_rows(buildings)
            building_rejections = cadastre.rejections_of(building_rejected)
            check_rejections(len(buildings), building_rejections, what="buildings")
            rejections += [Rejection(f"building {r.row}", r.reason) for r in building_rejections]

        divisions = rows.divisions()
        scope = "source = %s AND (left(capakey, 5) = ANY(%s)"
        params: list[Any] = [SOURCE, divisions]
        if nis:
            scope += " OR municipality_id IN (SELECT id FROM opendata_municipality WHERE nis_code = %s)"
            params.append(nis)
        scope += ")"
        steps = 2 if buildings is not None else 1
        with ctx.progress(total=steps, label="cadgis swap") as progress, transaction.atomic():
            counts = cadastre.swap_parcels(rows, source=SOURCE, scope=scope, scope_params=params)
            progress.advance(1)
            touched = set(counts.touched_ids)
            result_counts = counts.as_counts("parcels")
            if building_rows is not None:
                swap = cadastre.swap_buildings(
                    building_rows,
                    source=SOURCE,
                    parcel_scope=scope.replace("source = %s AND ", "", 1),
                    scope_params=params[1:],
                )
                progress.advance(1)
                touched |= swap.touched_parcels
                result_counts |= swap.counts.as_counts("buildings")
                result_counts |= {f"buildings_{k}": v for k, v in swap.types.items()}
        result_counts["parcels_repaired"] = repaired
        result_counts["parcels_merged_rows"] = merged
        return LoadResult(
            rows_read=len(parcels) + (len(buildings) if buildings is not None else 0),
            counts=result_counts,
            rejections=rejections,
            vintage=_vintage(ctx.options, named, rows.source_updated),
            touched_parcels=sorted(touched),
        )


def _parcel_rows(layer: cadastre.Layer, nis: str) -> tuple[cadastre.ParcelRows, dict[int, str], int, int]:
    n = len(layer)
    keys, rejected = cadastre.check_capakeys(layer.required("CaPaKey", what="CaPaKey"))
    prepared = cadastre.prepare_geometries(layer, "parcel")
    rejected = prepared.rejected | rejected
    keep = np.ones(n, dtype=bool)
    keep[list(rejected)] = False
    types = cadastre.as_text(layer.column("Type"), n)
    types = np.where(np.isin(types, list(PARCEL_TYPES)), types, "")
    updated = cadastre.to_dates(layer.column("UpdDate", "LastUpdDTS", "LastUpdDate"), n, dayfirst=True)
    ids = cadastre.as_text(layer.column("RecId", "OBJECTID"), n)
    rows = cadastre.ParcelRows(
        capakeys=keys[keep],
        geometries=prepared.geometries[keep],
        parcel_type=types[keep],
        source_updated=updated[keep],
        source_id=ids[keep],
        nis=np.full(int(keep.sum()), nis, dtype=object),
        wkb=None if prepared.wkb is None else prepared.wkb[keep],
    )
    rows, merged = cadastre.merge_duplicates(rows)
    return rows, rejected, prepared.repaired, merged


def _building_rows(layer: cadastre.Layer) -> tuple[cadastre.BuildingRows, dict[int, str]]:
    n = len(layer)
    prepared = cadastre.prepare_geometries(layer, "building")
    ids = cadastre.as_text(layer.column("RecId", "OBJECTID", "CaBuKey", "ID"), n)
    if not any(ids):
        ids = np.array([f"row{i + 1}" for i in range(n)], dtype=object)
    rejected = dict(prepared.rejected)
    seen: set[str] = set()
    for i, ident in enumerate(ids):
        if i in rejected:
            continue
        if not ident:
            rejected[i] = "building has no id"
        elif ident in seen:
            rejected[i] = f"building id {ident} occurs more than once"
        seen.add(ident)
    keep = np.ones(n, dtype=bool)
    keep[list(rejected)] = False
    kind = cadastre.as_text(layer.column("Type"), n)
    return cadastre.BuildingRows(ids[keep], prepared.geometries[keep], kind[keep]), rejected


def _vintage(options: dict[str, Any], named: re.Match[str] | None, updated: np.ndarray) -> str:
    if named:
        return f"{named['year']}-{named['month']}-{named['day']}"
    if options.get("year"):
        return str(options["year"])
    dates = [d for d in updated if d]
    return max(dates).isoformat() if dates else ""
