"""Valuing demo properties end to end on real PostGIS with the trained demo model."""

from __future__ import annotations

import os
from datetime import date

import pytest
from django.contrib.gis.geos import Point
from django.db import connection

from opendata.models import Address, Parcel
from valuation.engine import ValuationInputError
from valuation.locate import LocateError
from valuation.market import BAND_EDGES
from valuation.models import Valuation
from valuation.services import ValuationQuery, valuation_create, valuations_create_many

pytestmark = pytest.mark.django_db


def _sum(result: dict) -> int:
    return result["explanation"]["base_eur"] + sum(
        c["contribution_eur"] for c in result["explanation"]["contributions"]
    )


def test_a_valuation_by_address_has_everything_the_notary_sees(house: Address, models_in) -> None:
    valuation = valuation_create(query=ValuationQuery(address=house.label()))
    result = valuation.result
    assert house.parcel is not None
    assert valuation.price_eur % 1000 == 0 and valuation.price_eur > 50_000
    assert valuation.low_eur <= valuation.price_eur <= valuation.high_eur
    assert valuation.coverage == pytest.approx(0.8)
    assert result["subject"]["capakey"] == house.parcel.capakey
    # SHAP contributions in euros add up exactly to the displayed price, base included.
    assert _sum(result) == valuation.price_eur
    names = {c["feature"] for c in result["explanation"]["contributions"]}
    assert {"living_area_m2", "nbh_ppm2_median_1000m", "market_change"} <= names
    # Distribution: the reference screen's bands, adding up to the count, one band holding the price.
    distribution = result["distribution"]
    assert len(distribution["bands"]) == len(BAND_EDGES) + 1
    assert sum(b["count"] for b in distribution["bands"]) == distribution["count"] > 0
    assert sum(b["contains_price"] for b in distribution["bands"]) == 1
    assert sum(b["percent"] for b in distribution["bands"]) == pytest.approx(100, abs=0.7)
    # Comparables: at most 10, the same type, nearest similar first, with indexed prices.
    comparables = result["comparables"]
    assert 0 < len(comparables) <= 10
    assert all(c["property_type"] == "house" and c["indexed_price_eur"] > 0 for c in comparables)
    assert all(c["address"] for c in comparables)
    # Vintages of every source and the model version.
    assert result["vintages"]["demo"]["vintage"].startswith("seed=2026")
    assert result["vintages"]["sales"]["count"] >= 10_000
    assert result["model_version"] == valuation.model_version.version
    assert result["price_index"].startswith("PI-")


def test_a_stored_valuation_is_shown_again_exactly(house: Address, models_in) -> None:
    valuation = valuation_create(query=ValuationQuery(address=house.label()))
    again = Valuation.objects.get(pk=valuation.pk)
    assert again.result == valuation.result
    assert (again.price_eur, again.low_eur, again.high_eur) == (
        valuation.price_eur,
        valuation.low_eur,
        valuation.high_eur,
    )
    assert again.inputs == {"address": house.label()}


def test_capakey_coordinates_and_address_find_the_same_parcel(house: Address, models_in) -> None:
    assert house.parcel is not None
    by_key = valuation_create(query=ValuationQuery(capakey=house.parcel.capakey.lower().replace("/", " ")))
    point = house.point.transform(4326, clone=True)
    assert isinstance(point, Point)  # the stubs type a cloned transform as a plain GEOSGeometry
    by_point = valuation_create(query=ValuationQuery(latitude=point.y, longitude=point.x))
    assert by_key.parcel_id == by_point.parcel_id == house.parcel_id


def test_the_notarys_facts_override_and_move_the_price(house: Address, models_in) -> None:
    small = valuation_create(query=ValuationQuery(address=house.label(), facts={"living_area_m2": 90}))
    large = valuation_create(query=ValuationQuery(address=house.label(), facts={"living_area_m2": 260}))
    assert large.price_eur > small.price_eur
    assert large.result["facts"]["living_area_m2"] == {"value": 260.0, "source": "notary"}
    assert large.inputs["facts"] == {"living_area_m2": 260}


def test_no_feature_uses_a_sale_on_or_after_the_valuation_date(house: Address, models_in) -> None:
    when = date(2020, 6, 15)
    valuation = valuation_create(query=ValuationQuery(address=house.label(), valuation_date=when))
    result = valuation.result
    with connection.cursor() as cursor:
        cursor.execute(
            """
            select count(*) filter (where st_dwithin(s.point, a.point, 1000)),
                   count(*) filter (where st_dwithin(s.point, a.point, 500))
            from valuation_sale s, opendata_address a
            where a.id = %s and s.property_type = 'house' and s.sale_date < %s
            """,
            [house.pk, when],
        )
        within_1km, within_500m = cursor.fetchone()
    values = {c["feature"]: c["value"] for c in result["explanation"]["contributions"]}
    assert values["nbh_count_1000m"] == within_1km
    assert values["nbh_count_500m"] == within_500m
    assert result["distribution"]["count"] == within_1km
    assert all(c["sale_date"] < when.isoformat() for c in result["comparables"])


def test_a_past_valuation_date_applies_the_market_change(house: Address, models_in) -> None:
    now = valuation_create(query=ValuationQuery(address=house.label(), facts={"living_area_m2": 150}))
    then = valuation_create(
        query=ValuationQuery(
            address=house.label(), facts={"living_area_m2": 150}, valuation_date=date(2018, 1, 1)
        )
    )
    change = {c["feature"]: c for c in then.result["explanation"]["contributions"]}["market_change"]
    assert change["value"] < 1  # the demo market rose about 3 % a year since 2018
    assert change["contribution_eur"] < 0
    assert then.price_eur < now.price_eur


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        (ValuationQuery(address="Onbestaandestraat 5"), "address", "No street called"),
        (ValuationQuery(address="Dorpsplein"), "address", "house number"),
        (ValuationQuery(address="Dorpsplein 9999"), "address", "no house number 9999"),
        (ValuationQuery(capakey="12345"), "capakey", "section letter"),
        (ValuationQuery(capakey="99001A9999/99Z999"), "capakey", "No parcel"),
        (ValuationQuery(latitude=123.0, longitude=4.0), "latitude", "between -90 and 90"),
        (ValuationQuery(), "query", "Give an address"),
    ],
)
def test_bad_queries_get_a_sentence_naming_the_field(demo_model, query, field, words) -> None:
    with pytest.raises(LocateError) as caught:
        valuation_create(query=query)
    assert caught.value.field == field
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("facts", "field"),
    [
        ({"living_area_m2": "big"}, "living_area_m2"),
        ({"bedrooms": -1}, "bedrooms"),
        ({"property_type": "castle"}, "property_type"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_facts_are_refused_naming_the_fact(house: Address, facts, field) -> None:
    with pytest.raises(ValuationInputError) as caught:
        valuation_create(query=ValuationQuery(address=house.label(), facts=facts))
    assert caught.value.field == field
    assert Valuation.objects.count() == 0


def test_a_parcel_without_a_building_asks_for_the_living_area(demo_model, models_in) -> None:
    parcel = Parcel.objects.filter(source="demo", buildings__isnull=True).first()
    if parcel is None:
        pytest.skip("every demo parcel has a building")
    with pytest.raises(ValuationInputError, match="living area is unknown") as caught:
        valuation_create(query=ValuationQuery(capakey=parcel.capakey))
    assert caught.value.field == "living_area_m2"
    valuation = valuation_create(query=ValuationQuery(capakey=parcel.capakey, facts={"living_area_m2": 120}))
    assert valuation.price_eur > 0


def test_a_batch_values_the_good_items_and_explains_the_bad(house: Address, models_in) -> None:
    others = list(
        Address.objects.filter(source="demo", box="", parcel__buildings__storeys__isnull=False)[:20]
    )
    queries = [ValuationQuery(address_id=a.pk) for a in others]
    queries.insert(3, ValuationQuery(address="Nergensstraat 1"))
    queries.insert(7, ValuationQuery(capakey="nonsense"))
    outcomes = valuations_create_many(queries=queries)
    assert len(outcomes) == 22
    bad_address, bad_capakey = outcomes[3].error, outcomes[7].error
    assert bad_address is not None and bad_capakey is not None
    assert bad_address["field"] == "address" and outcomes[3].valuation is None
    assert bad_capakey["field"] == "capakey"
    good = [o.valuation for o in outcomes if o.valuation is not None]
    assert len(good) == 20
    assert all(_sum(v.result) == v.price_eur for v in good)
    assert Valuation.objects.filter(pk__in=[v.pk for v in good]).count() == 20
    # The batch path gives the same answer as the single path.
    single = valuation_create(query=ValuationQuery(address_id=others[0].pk))
    first = outcomes[0].valuation
    assert first is not None
    assert single.result["price_eur"] == first.result["price_eur"]
    assert single.result["explanation"] == first.result["explanation"]


def test_the_valuate_command_prints_the_price_and_refuses_bad_input(house: Address, models_in) -> None:
    import io

    from django.core.management import call_command
    from django.core.management.base import CommandError

    out = io.StringIO()
    call_command("valuate", house.label(), "--living-area-m2", "140", "--language", "fr", stdout=out)
    text = out.getvalue()
    stored = Valuation.objects.latest("pk")
    assert stored.channel == "cli"
    assert f"EUR {stored.price_eur:,}" in text
    from valuation.engine import feature_label

    first = stored.result["explanation"]["contributions"][0]["feature"]
    assert feature_label(first, "fr") in text  # the feature labels in the asked language
    assert feature_label(first, "fr") != feature_label(first, "en")
    assert "<- price" in text
    with pytest.raises(CommandError, match="address: No street called"):
        call_command("valuate", "Nergensstraat 1", stdout=io.StringIO())


def test_a_forked_batch_stores_what_the_single_path_stores(house: Address, models_in, monkeypatch) -> None:
    from valuation import parallel

    addresses = list(
        Address.objects.filter(source="demo", box="", parcel__buildings__storeys__isnull=False)[:40]
    )
    monkeypatch.setattr(parallel, "MIN_ROWS_PER_PROCESS", 10)
    monkeypatch.setattr(parallel, "PART_ROWS", 6)
    if parallel.workers_for(len(addresses)) < 2:
        pytest.skip("one core only")
    before = Valuation.objects.count()
    outcomes = valuations_create_many(queries=[ValuationQuery(address_id=a.pk) for a in addresses])
    assert Valuation.objects.count() == before + len(addresses)
    for address, outcome in zip(addresses[::9], outcomes[::9], strict=True):
        assert outcome.valuation is not None
        stored = Valuation.objects.get(pk=outcome.valuation.pk)
        assert outcome.valuation.result == stored.result  # read back on first use
        single = valuation_create(query=ValuationQuery(address_id=address.pk))
        for key in ("price_eur", "low_eur", "high_eur", "explanation", "distribution", "comparables"):
            assert stored.result[key] == single.result[key], key
        assert stored.price_eur == single.price_eur and stored.parcel_id == single.parcel_id


def test_a_batch_that_fails_in_a_worker_stores_nothing(house: Address, models_in, monkeypatch) -> None:
    from valuation import engine, parallel

    addresses = list(
        Address.objects.filter(source="demo", box="", parcel__buildings__storeys__isnull=False)[:30]
    )
    monkeypatch.setattr(parallel, "MIN_ROWS_PER_PROCESS", 10)
    monkeypatch.setattr(parallel, "PART_ROWS", 4)
    if parallel.workers_for(len(addresses)) < 2:
        pytest.skip("one core only")
    real = engine._compute

    def failing(rows, work, *args):
        if os.getpid() != parent:
            raise MemoryError("worker ran out of memory")
        return real(rows, work, *args)

    parent = os.getpid()
    monkeypatch.setattr(engine, "_compute", failing)
    before = Valuation.objects.count()
    with pytest.raises(RuntimeError, match="worker ran out of memory"):
        valuations_create_many(queries=[ValuationQuery(address_id=a.pk) for a in addresses])
    assert Valuation.objects.count() == before
