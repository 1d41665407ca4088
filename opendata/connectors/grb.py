"""GRB Flanders (Digitaal Vlaanderen): administrative parcels (Adp, yearly Adpf) and buildings (Gbg).

- Source: OGC API Features ``https://geo.api.vlaanderen.be/GRB/ogc/features/v1``, collections ``ADP``
  and ``GBG`` (GeoJSON), or the WFS / download service (GML, shapefile zip); any of them with ``--file``
  (a file, a folder or a zip holding an Adp/Adpf and/or a Gbg layer). The live fetch needs an area:
  option ``bbox=xmin,ymin,xmax,ymax`` (Lambert 72 metres) and optionally ``collection=GBG``
  (default ``ADP``); one page of at most ``limit`` (default 10,000) features is read.
- Licence: Flemish free open data licence; credit "Bron: GRB, Digitaal Vlaanderen".
- Cadence: continuously updated (Adpf yearly, fiscal situation of 1 January); refreshed weekly here,
  an unchanged file is skipped by its checksum.
- CRS: EPSG:31370 (Lambert 72), stored as is; files that declare Lambert 2008 are transformed.

Parcels: CAPAKEY (required), OIDN (source id), VERSDATUM (source update date), NISCODE (municipality, when
that Municipality row exists; otherwise the boundary the parcel lies in). Buildings: OIDN (source id),
LBLTYPE or TYPE (kind: main building, annex...). The scope of a load is the GRB parcels of the cadastral
divisions present in the file (and within the bbox for a live fetch): parcels there that the file no
longer has are deleted, everything else is left alone.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

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

SOURCE = "grb"
LAYERS = {"parcels": ("adp", "perce", "parcel"), "buildings": ("gbg", "gebouw", "building")}
API = "https://geo.api.vlaanderen.be/GRB/ogc/features/v1"
LAMBERT72_URI = "http://www.opengis.net/def/crs/EPSG/0/31370"


@register
class GRBConnector(Connector):
    name = SOURCE
    title = "GRB Flanders (Digitaal Vlaanderen): administrative parcels and buildings"
    url = API
    credit = "Bron: GRB, Digitaal Vlaanderen"
    schedule = ("45", "3", "1", "*", "*")  # Mondays 03:45, Brussels time
    suffix = ".geojson"

    def live_url(self, options: dict[str, Any]) -> str | None:
        bbox = str(options.get("bbox") or "")
        if not bbox:
            return None  # refresh() then asks for --file, or an area
        parts = bbox.split(",")
        if len(parts) != 4 or not all(re.fullmatch(r"-?\d+(\.\d+)?", p.strip()) for p in parts):
            raise SourceError(f"Option bbox must be xmin,ymin,xmax,ymax in Lambert 72 metres, not {bbox!r}.")
        collection = str(options.get("collection") or "ADP").upper()
        if collection not in {"ADP", "GBG"}:
            raise SourceError(f"Option collection must be ADP or GBG, not {collection!r}.")
        query = {
            "f": "application/geo+json",
            "limit": int(options.get("limit") or 10_000),
            "bbox": ",".join(p.strip() for p in parts),
            "bbox-crs": LAMBERT72_URI,
            "crs": LAMBERT72_URI,
        }
        return f"{API}/collections/{collection}/items?{urlencode(query)}"

    def load(self, path: Path, ctx: RunContext) -> LoadResult:
        layers = cadastre.find_layers(path, LAYERS)
        if not layers:
            raise SourceError(
                f"No GRB parcel (Adp) or building (Gbg) layer found in {path.name}; nothing was changed."
            )
        # One unnamed layer (a GeoJSON answer) is a parcel layer if it has CAPAKEY, else buildings.
        parcels = cadastre.read_layer(layers["parcels"]) if "parcels" in layers else None
        buildings = cadastre.read_layer(layers["buildings"]) if "buildings" in layers else None
        if (
            parcels is not None
            and buildings is None
            and parcels.column("CAPAKEY") is None
            and parcels.column("LBLTYPE", "TYPE") is not None
        ):
            parcels, buildings = None, parcels
        rows_read = 0
        rejections: list[Rejection] = []
        rows = None
        if parcels is not None:
            rows, rejected = _parcel_rows(parcels)
            found = cadastre.rejections_of(rejected, parcels.column("OIDN"))
            check_rejections(len(parcels), found, what="parcels")
            rejections += found
            rows_read += len(parcels)
        building_rows = None
        if buildings is not None:
            building_rows, rejected = _building_rows(buildings)
            found = cadastre.rejections_of(rejected, buildings.column("OIDN"))
            check_rejections(len(buildings), found, what="buildings")
            rejections += [Rejection(f"building {r.row}", r.reason) for r in found]
            rows_read += len(buildings)

        bbox = _bbox(ctx.options)
        counts: dict[str, int] = {}
        touched: set[int] = set()
        with transaction.atomic():
            if rows is not None:
                scope, params = _parcel_scope(rows.divisions(), bbox)
                swap = cadastre.swap_parcels(rows, source=SOURCE, scope=scope, scope_params=params)
                counts |= swap.as_counts("parcels")
                touched |= set(swap.touched_ids)
            if building_rows is not None:
                parcel_scope: str | None
                if bbox is not None:
                    parcel_scope, params = "geometry && ST_MakeEnvelope(%s, %s, %s, %s, 31370)", list(bbox)
                else:
                    parcel_scope, params = _building_parcel_scope(rows)
                swapped = cadastre.swap_buildings(
                    building_rows, source=SOURCE, parcel_scope=parcel_scope, scope_params=params
                )
                counts |= swapped.counts.as_counts("buildings")
                counts |= {f"buildings_{k}": v for k, v in swapped.types.items()}
                touched |= swapped.touched_parcels
        dates = [d for d in (rows.source_updated if rows is not None else []) if d]
        return LoadResult(
            rows_read=rows_read,
            counts=counts,
            rejections=rejections,
            vintage=max(dates).isoformat() if dates else "",
            touched_parcels=sorted(touched),
        )


def _parcel_rows(layer: cadastre.Layer) -> tuple[cadastre.ParcelRows, dict[int, str]]:
    n = len(layer)
    keys, rejected = cadastre.check_capakeys(layer.required("CAPAKEY", what="CAPAKEY"))
    prepared = cadastre.prepare_geometries(layer, "parcel")
    rejected = prepared.rejected | rejected
    nis = cadastre.as_text(layer.column("NISCODE"), n)
    nis = np.where([bool(re.fullmatch(r"\d{5}", v)) for v in nis], nis, "")
    keep = np.ones(n, dtype=bool)
    keep[list(rejected)] = False
    rows = cadastre.ParcelRows(
        capakeys=keys[keep],
        geometries=prepared.geometries[keep],
        parcel_type=np.full(int(keep.sum()), "", dtype=object),
        source_updated=cadastre.to_dates(layer.column("VERSDATUM", "BEGINDATUM"), n)[keep],
        source_id=cadastre.as_text(layer.column("OIDN"), n)[keep],
        nis=nis[keep],
        wkb=None if prepared.wkb is None else prepared.wkb[keep],
    )
    rows, _merged = cadastre.merge_duplicates(rows)
    return rows, rejected


def _building_rows(layer: cadastre.Layer) -> tuple[cadastre.BuildingRows, dict[int, str]]:
    n = len(layer)
    ids = cadastre.as_text(layer.required("OIDN", what="OIDN"), n)
    prepared = cadastre.prepare_geometries(layer, "building")
    rejected = dict(prepared.rejected)
    seen: set[str] = set()
    for i, ident in enumerate(ids):
        if i not in rejected and (not ident or ident in seen):
            rejected[i] = "building has no OIDN" if not ident else f"OIDN {ident} occurs more than once"
        seen.add(ident)
    keep = np.ones(n, dtype=bool)
    keep[list(rejected)] = False
    kind = cadastre.as_text(layer.column("LBLTYPE", "TYPE"), n)
    return cadastre.BuildingRows(ids[keep], prepared.geometries[keep], kind[keep]), rejected


def _bbox(options: dict[str, Any]) -> tuple[float, float, float, float] | None:
    if not options.get("bbox"):
        return None
    xmin, ymin, xmax, ymax = (float(p) for p in str(options["bbox"]).split(","))
    return xmin, ymin, xmax, ymax


def _parcel_scope(divisions: list[str], bbox: tuple[float, ...] | None) -> tuple[str, list[Any]]:
    scope = "source = %s AND left(capakey, 5) = ANY(%s)"
    params: list[Any] = [SOURCE, divisions]
    if bbox is not None:
        scope += " AND geometry && ST_MakeEnvelope(%s, %s, %s, %s, 31370)"
        params += list(bbox)
    return scope, params


def _building_parcel_scope(rows: cadastre.ParcelRows | None) -> tuple[str | None, list[Any]]:
    """Without a bbox, buildings are replaced on the parcels of the divisions the file covers; a
    buildings-only file replaces the GRB buildings within its bounding box."""
    if rows is not None:
        return "left(capakey, 5) = ANY(%s)", [rows.divisions()]
    return None, []
