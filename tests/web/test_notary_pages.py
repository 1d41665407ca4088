"""The notary's pages on the demo region: search, result, corrections, feedback, offices, languages."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from opendata.models import Address
from tests.web.conftest import PASSWORD, notary
from valuation.models import Feedback, Office, Valuation

pytestmark = pytest.mark.django_db


def _value(client: Client, address: Address, **facts: Any) -> Valuation:
    response = client.post(reverse("valuate"), {"q": address.label(), "address_id": address.pk, **facts})
    assert response.status_code == 302, response.content.decode()[:2000]
    found = re.search(r"/valuations/(\d+)/", response["Location"])
    assert found is not None
    return Valuation.objects.get(pk=int(found.group(1)))


def test_pages_need_a_login(client: Client) -> None:
    for name in ("search", "valuation-list"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and reverse("login") in response["Location"]
    assert client.get(reverse("suggestions"), {"q": "kerk"}).status_code == 401


def test_suggestions_forgive_accents_case_typos_and_take_capakeys(client_a: Client, house: Address) -> None:
    def labels(q: str) -> list[str]:
        response = client_a.get(reverse("suggestions"), {"q": q})
        assert response.status_code == 200
        return [s["label"] for s in response.json()["results"]]

    assert any(label.startswith("Kerkstraat") for label in labels("kerkstr"))
    assert any(label.startswith("Rue de l'Église") for label in labels("rue de l'eglise"))
    assert any(label.startswith("Kerkstraat") for label in labels("kerkstrat"))  # a typo
    street = house.street_nl
    found = client_a.get(reverse("suggestions"), {"q": f"{street} {house.house_number}"}).json()["results"]
    assert any(s["address_id"] == house.pk for s in found)
    assert house.parcel is not None
    key = house.parcel.capakey[:7]
    parcels = client_a.get(reverse("suggestions"), {"q": key}).json()["results"]
    assert parcels and all(s["capakey"].startswith(key) for s in parcels)
    assert labels("x") == []


def test_a_valuation_shows_price_range_distribution_explanation_map(client_a: Client, house: Address) -> None:
    valuation = _value(client_a, house)
    assert valuation.office is not None and valuation.office.name == "Notaris Peeters"
    assert valuation.channel == "web"
    page = client_a.get(reverse("valuation-detail", args=[valuation.pk])).content.decode()
    price = f"{valuation.price_eur:,}".replace(",", ".")
    assert f"€\u00a0{price}" in page  # Dutch money format
    assert "80%" in page
    assert 'data-testid="distribution"' in page and "highlight" in page
    assert 'data-testid="waterfall"' in page and 'data-testid="comparables"' in page
    assert 'id="map-layers"' in page and '"kind": "parcel"' in page
    assert valuation.result["model_version"] in page
    assert "/static/vendor/leaflet-1.9.4/leaflet.js" in page
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing from another host


def test_correcting_the_living_area_revalues_and_keeps_the_correction(
    client_a: Client, house: Address
) -> None:
    first = _value(client_a, house)
    response = client_a.post(reverse("valuation-revise", args=[first.pk]), {"living_area_m2": "300"})
    assert response.status_code == 302
    second = Valuation.objects.latest("pk")
    assert second.pk != first.pk and second.inputs["facts"] == {"living_area_m2": 300.0}
    assert second.result["facts"]["living_area_m2"] == {"value": 300.0, "source": "notary"}
    assert second.price_eur != first.price_eur
    bad = client_a.post(reverse("valuation-revise", args=[first.pk]), {"living_area_m2": "-5"}, follow=True)
    assert "living" in bad.content.decode().lower() or "woon" in bad.content.decode().lower()
    assert Valuation.objects.latest("pk").pk == second.pk  # nothing stored for bad input


def test_feedback_is_stored_and_acknowledged(client_a: Client, house: Address) -> None:
    valuation = _value(client_a, house)
    response = client_a.post(
        reverse("valuation-feedback", args=[valuation.pk]),
        {"verdict": "too_high", "estimate_eur": "350000", "comment": "Dak te vernieuwen."},
        follow=True,
    )
    feedback = Feedback.objects.get(valuation=valuation)
    assert (feedback.verdict, feedback.estimate_eur, feedback.status) == ("too_high", 350_000, "new")
    assert feedback.office == valuation.office
    assert "received" in response.content.decode() or "ontvangen" in response.content.decode()
    refused = client_a.post(reverse("valuation-feedback", args=[valuation.pk]), {"verdict": "nonsense"})
    assert refused.status_code == 302 and Feedback.objects.filter(valuation=valuation).count() == 1


def test_an_office_cannot_open_another_offices_valuation(
    client_a: Client, client_b: Client, house: Address
) -> None:
    valuation = _value(client_a, house)
    assert client_b.get(reverse("valuation-detail", args=[valuation.pk])).status_code == 404
    assert client_b.post(reverse("valuation-revise", args=[valuation.pk]), {}).status_code == 404
    assert (
        client_b.post(reverse("valuation-feedback", args=[valuation.pk]), {"verdict": "right"}).status_code
        == 404
    )
    assert (
        str(valuation.pk)
        not in client_b.get(reverse("valuation-list")).content.decode().split("<tbody>")[1][:200]
    )
    assert client_a.get(reverse("valuation-detail", args=[valuation.pk])).status_code == 200


@pytest.mark.parametrize(
    ("query", "sentence"),
    [
        ("Nergensstraat 1", "No street of that name"),
        ("Kerkstraat 99999", "no such house number"),
        ("Kerkstraat", "Add the house number"),
    ],
)
def test_no_match_gets_a_sentence_not_an_error_page(
    client_a: Client, house: Address, query: str, sentence: str
) -> None:
    before = Valuation.objects.count()
    response = client_a.post(reverse("valuate"), {"q": query}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert sentence in response.content.decode()
    assert Valuation.objects.count() == before


def test_french_pages_and_money(client_a: Client, house: Address) -> None:
    valuation = _value(client_a, house)
    client_a.post(reverse("set_language"), {"language": "fr", "next": "/"})
    page = client_a.get(reverse("valuation-detail", args=[valuation.pk])).content.decode()
    assert "Prix indicatif" in page and "Comment le modèle" in page
    assert f"{valuation.price_eur:,}".replace(",", "\u202f") + "\u00a0€" in page
    assert '<html lang="fr">' in page


def test_login_is_throttled_after_repeated_failures(client: Client, offices: tuple[Office, Office]) -> None:
    cache.clear()
    notary("carla", offices[0])
    for _ in range(5):
        assert client.post(reverse("login"), {"username": "carla", "password": "wrong"}).status_code == 200
    blocked = client.post(reverse("login"), {"username": "carla", "password": PASSWORD})
    assert blocked.status_code == 429 and "_auth_user_id" not in client.session
    cache.clear()
    assert client.post(reverse("login"), {"username": "carla", "password": PASSWORD}).status_code == 302


def test_staff_see_feedback_in_the_admin_filtered(client_a: Client, house: Address) -> None:
    valuation = _value(client_a, house)
    client_a.post(reverse("valuation-feedback", args=[valuation.pk]), {"verdict": "too_low"})
    staff = Client()
    staff.force_login(User.objects.create_superuser("staff", "staff@example.org", PASSWORD))
    listing = staff.get(reverse("admin:valuation_feedback_changelist"), {"verdict__exact": "too_low"})
    assert listing.status_code == 200 and f"#{valuation.pk}" in listing.content.decode()
    assert (
        staff.get(reverse("admin:valuation_feedback_changelist"), {"verdict__exact": "right"})
        .content.decode()
        .count(f"#{valuation.pk}<")
        == 0
    )


def test_suggestions_ignore_control_characters(client_a: Client, house: Address) -> None:
    # Found by the API fuzzer: a NUL byte reached PostgreSQL, which refuses it (a 500).
    response = client_a.get(reverse("suggestions"), {"q": "kerk\x00str"})
    assert response.status_code == 200
