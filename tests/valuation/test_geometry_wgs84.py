"""geometry_to_wgs84: the same coordinates as GEOS's own transform, with one transformation per thread."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from django.contrib.gis.geos import GEOSGeometry, Point, Polygon

from valuation.engine import geometry_to_wgs84
from valuation.presenters import map_layers

BRUSSELS_31370 = (149_500.0, 170_500.0)


def _square() -> Polygon:
    x, y = BRUSSELS_31370
    return Polygon(((x, y), (x + 20, y), (x + 20, y + 15), (x, y + 15), (x, y)), srid=31370)


@pytest.mark.parametrize("geometry", [Point(*BRUSSELS_31370, srid=31370), _square()])
def test_same_coordinates_as_geos_transform(geometry: GEOSGeometry) -> None:
    expected = geometry.transform(4326, clone=True)
    got = geometry_to_wgs84(geometry)
    assert got.srid == 4326
    assert got.equals_exact(expected, tolerance=1e-12)
    assert 4.3 < got.centroid.x < 4.4 and 50.8 < got.centroid.y < 50.9  # Brussels, longitude first
    assert geometry.srid == 31370  # the source is left as it was


def test_each_thread_gets_the_same_answer() -> None:
    expected = _square().transform(4326, clone=True)
    answers: list[GEOSGeometry] = []

    def work() -> None:
        for _ in range(20):
            answers.append(geometry_to_wgs84(_square()))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 80
    assert all(a.equals_exact(expected, tolerance=1e-12) for a in answers)


@pytest.mark.django_db
def test_result_map_has_the_parcel_in_wgs84(house: Any) -> None:
    from valuation.services import ValuationQuery, valuation_create

    valuation = valuation_create(
        query=ValuationQuery(address_id=house.pk, facts={"living_area_m2": 140}), channel="web"
    )
    layers = {f["properties"]["kind"]: f for f in map_layers(valuation)["features"]}
    parcel = GEOSGeometry(json.dumps(layers["parcel"]["geometry"]), srid=4326)
    assert parcel.equals_exact(house.parcel.geometry.transform(4326, clone=True), tolerance=1e-9)
    assert layers["building"]["geometry"]["type"] in {"Polygon", "MultiPolygon"}
