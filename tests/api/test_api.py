"""Contract tests of the partner API on the demo region: each endpoint, its errors, keys and scopes."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from django.test import override_settings
from rest_framework.test import APIClient

from opendata.models import Address
from valuation.api.keys import api_key_issue, api_key_revoke
from valuation.models import ApiKey, Feedback, Partner, Valuation

pytestmark = pytest.mark.django_db


def _client(key: str | None) -> APIClient:
    client = APIClient()
    if key:
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


@pytest.fixture
def keys(demo_model: Any, models_in: Any) -> dict[str, Any]:
    cache.clear()
    bank, software = (
        Partner.objects.create(name="Bank", slug="bank"),
        Partner.objects.create(name="Akte", slug="akte"),
    )
    bank_row, bank_key = api_key_issue(partner=bank, scopes=["valuate"], name="production")
    _, software_key = api_key_issue(partner=software, scopes=["valuate", "deliver_sales"])
    _, sales_only = api_key_issue(partner=software, scopes=["deliver_sales"])
    return {"bank": bank_key, "bank_row": bank_row, "software": software_key, "sales_only": sales_only}


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = response.json()["error"]
    assert set(body) >= {"code", "message", "fields"} and body["message"]
    return body


def test_value_then_read_back_exactly(keys: dict[str, Any], house: Address) -> None:
    client = _client(keys["bank"])
    response = client.post(
        "/api/v1/valuations?lang=fr",
        {"address_id": house.pk, "facts": {"living_area_m2": 150}},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["price_eur"] % 1000 == 0 and body["low_eur"] <= body["price_eur"] <= body["high_eur"]
    assert body["base_eur"] + sum(c["contribution_eur"] for c in body["contributions"]) == body["price_eur"]
    assert all(c["label"] for c in body["contributions"])
    assert body["location"]["type"] == "Point" and len(body["location"]["coordinates"]) == 2
    assert body["facts"]["living_area_m2"] == {"value": 150.0, "source": "notary"}
    assert len(body["distribution"]["bands"]) == 13 and body["comparables"]
    stored = Valuation.objects.get(pk=body["id"])
    assert stored.channel == "api" and stored.partner is not None and stored.partner.slug == "bank"
    again = client.get(f"/api/v1/valuations/{body['id']}?lang=fr").json()
    assert again == body


def test_a_partner_sees_only_its_own_valuations(keys: dict[str, Any], house: Address) -> None:
    made = _client(keys["bank"]).post("/api/v1/valuations", {"address_id": house.pk}, format="json").json()
    other = _client(keys["software"])
    assert _error(other.get(f"/api/v1/valuations/{made['id']}"), 404)["code"] == "not_found"
    _error(other.post(f"/api/v1/valuations/{made['id']}/feedback", {"verdict": "right"}, format="json"), 404)


def test_keys_scopes_and_revocation(keys: dict[str, Any], house: Address) -> None:
    assert _error(_client(None).get("/api/v1/addresses", {"q": "kerk"}), 401)["code"] == "not_authenticated"
    assert _error(_client("nv_0000_nonsense").get("/api/v1/addresses", {"q": "kerk"}), 401)
    assert _error(_client(keys["sales_only"]).get("/api/v1/addresses", {"q": "kerk"}), 403)
    assert not ApiKey.objects.filter(digest__contains=keys["bank"]).exists()  # only a digest is stored
    api_key_revoke(keys["bank_row"])
    _error(_client(keys["bank"]).get("/api/v1/addresses", {"q": "kerk"}), 401)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "address"),
        ({"address": "Dorpsplein 2", "capakey": "99001A0001/00_000"}, "capakey"),
        ({"latitude": 50.8}, "longitude"),
        ({"latitude": 123, "longitude": 4.3}, "latitude"),
        ({"address_id": 1, "facts": {"living_area_m2": -3}}, "facts"),
        ({"address_id": 1, "facts": {"swimming_pool": True}}, "facts"),
        ({"address_id": 1, "valuation_date": "2999-01-01"}, "valuation_date"),
        ({"address_id": "one"}, "address_id"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    keys: dict[str, Any], payload: dict[str, Any], field: str
) -> None:
    before = Valuation.objects.count()
    body = _error(_client(keys["bank"]).post("/api/v1/valuations", payload, format="json"), 400)
    assert body["code"] == "invalid" and field in body["fields"], body
    assert Valuation.objects.count() == before


def test_not_found_and_unknown_living_area_are_4xx(keys: dict[str, Any], house: Address) -> None:
    client = _client(keys["bank"])
    missing = _error(client.post("/api/v1/valuations", {"address": "Nergensstraat 1"}, format="json"), 404)
    assert "address" in missing["fields"]
    bad_key = _error(client.post("/api/v1/valuations", {"capakey": "nonsense"}, format="json"), 404)
    assert "capakey" in bad_key["fields"]
    _error(client.post("/api/v1/valuations", "not json", content_type="application/json"), 400)
    _error(client.post("/api/v1/valuations", {"address_id": 1}), 415)  # a form post: JSON only


def test_feedback_and_address_search(keys: dict[str, Any], house: Address) -> None:
    client = _client(keys["bank"])
    made = client.post("/api/v1/valuations", {"address_id": house.pk}, format="json").json()
    response = client.post(
        f"/api/v1/valuations/{made['id']}/feedback",
        {"verdict": "too_low", "estimate_eur": 420000, "comment": "Renovated in 2024."},
        format="json",
    )
    assert response.status_code == 201 and response.json()["status"] == "new"
    feedback = Feedback.objects.get(valuation_id=made["id"])
    assert feedback.partner is not None and feedback.estimate_eur == 420_000
    _error(client.post(f"/api/v1/valuations/{made['id']}/feedback", {"verdict": "meh"}, format="json"), 400)
    found = client.get("/api/v1/addresses", {"q": f"{house.street_nl} {house.house_number}"}).json()
    assert any(a["address_id"] == house.pk for a in found)
    assert _error(client.get("/api/v1/addresses", {"q": "k"}), 400)["fields"] == {
        "q": ["Type at least two characters."]
    }


def test_throttling_per_key_answers_429_with_retry_after(keys: dict[str, Any]) -> None:
    with override_settings(API_RATE="3/min"):
        client = _client(keys["bank"])
        for _ in range(3):
            assert client.get("/api/v1/addresses", {"q": "kerk"}).status_code == 200
        throttled = client.get("/api/v1/addresses", {"q": "kerk"})
        assert _error(throttled, 429)["code"] == "throttled"
        assert int(throttled["Retry-After"]) > 0
        assert _client(keys["software"]).get("/api/v1/addresses", {"q": "kerk"}).status_code == 200  # per key


def test_the_schema_and_its_documentation_page(client: Any) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {
        "/api/v1/valuations",
        "/api/v1/valuations/{id}",
        "/api/v1/valuations/{id}/feedback",
        "/api/v1/addresses",
    } <= set(paths)
    assert "examples" in str(paths["/api/v1/valuations"]["post"])
    docs = client.get("/api/docs/").content.decode()
    assert "redoc" in docs.lower() and "cdn." not in docs and "//unpkg" not in docs


def test_staff_issue_a_key_once_and_revoke_it_in_the_admin(keys: dict[str, Any], client: Any) -> None:
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_superuser("beheer", "beheer@example.org", "Notaris-2026-veilig"))
    partner = Partner.objects.get(slug="bank")
    response = client.post(
        "/admin/valuation/partner/",
        {"action": "issue_valuate_key", "_selected_action": [partner.pk]},
        follow=True,
    )
    shown = [str(m) for m in response.context["messages"]]
    key = shown[0].split(": ", 1)[1].split(" ")[0]
    assert key.startswith("nv_") and _client(key).get("/api/v1/addresses", {"q": "kerk"}).status_code == 200
    row = ApiKey.objects.get(prefix=key.split("_")[1])
    assert key not in str(
        client.get(f"/admin/valuation/apikey/{row.pk}/change/").content
    )  # never shown again
    client.post("/admin/valuation/apikey/", {"action": "revoke", "_selected_action": [row.pk]})
    _error(_client(key).get("/api/v1/addresses", {"q": "kerk"}), 401)


def test_sales_delivery_is_validated_and_idempotent(keys: dict[str, Any]) -> None:
    from valuation.models import Sale

    sales = [
        {
            "sale_id": "A-1",
            "sale_date": "2026-03-15",
            "price_eur": 325000,
            "latitude": 50.8466,
            "longitude": 4.3517,
            "property_type": "house",
            "living_area_m2": 145,
        },
        {
            "sale_id": "A-2",
            "sale_date": "2026-03-18",
            "price_eur": "219500.50",
            "latitude": 51.0543,
            "longitude": 3.7174,
            "property_type": "apartment",
        },
        {"sale_id": "A-3", "sale_date": "2026-13-01", "price_eur": -5, "latitude": 50.8, "longitude": 4.3},
    ]
    client = _client(keys["software"])
    first = client.post("/api/v1/sales", {"sales": sales}, format="json")
    assert first.status_code == 200, first.content
    body = first.json()
    assert (body["read"], body["inserted"], body["updated"]) == (3, 2, 0)
    assert body["rejected"][0]["index"] == 2 and body["rejected"][0]["sale_id"] == "A-3"
    assert any("sale_date" in reason for reason in body["rejected"][0]["reasons"])
    again = client.post("/api/v1/sales", {"sales": sales}, format="json").json()
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, 2)
    assert Sale.objects.filter(source="partner-akte").count() == 2
    assert _error(_client(keys["bank"]).post("/api/v1/sales", {"sales": sales}, format="json"), 403)
    assert "sales" in _error(client.post("/api/v1/sales", {"sales": []}, format="json"), 400)["fields"]


def test_a_batch_values_the_good_items_and_reports_the_bad(
    keys: dict[str, Any], house: Address, monkeypatch: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from config.celery import app as celery_app

    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    client = _client(keys["bank"])
    items = [
        {"address_id": house.pk},
        {"address_id": house.pk, "facts": {"living_area_m2": 200}},
        {"latitude": 123},
    ]
    with django_capture_on_commit_callbacks(execute=True):
        queued = client.post("/api/v1/valuations/batch", {"items": items}, format="json")
    assert queued.status_code == 202, queued.content
    status_url = queued.json()["status_url"]
    assert status_url.endswith(f"/api/v1/valuations/batch/{queued.json()['id']}")
    done = client.get(status_url).json()
    assert (done["status"], done["total"], done["done"]) == ("done", 3, 3)
    first, second, bad = done["results"]
    assert Valuation.objects.get(pk=first["valuation_id"]).price_eur == first["price_eur"]
    assert second["price_eur"] != first["price_eur"]
    assert bad["index"] == 2 and "latitude" in bad["error"]["fields"]
    assert _error(_client(keys["software"]).get(status_url), 404)
    too_many = client.post("/api/v1/valuations/batch", {"items": [{"address_id": 1}] * 10_001}, format="json")
    assert "items" in _error(too_many, 400)["fields"]


def test_feedback_review_transitions_filters_and_export(
    keys: dict[str, Any], house: Address, client: Any
) -> None:
    from django.contrib.auth.models import User

    api = _client(keys["bank"])
    made = api.post("/api/v1/valuations", {"address_id": house.pk}, format="json").json()
    for verdict, estimate in (("too_low", 450_000), ("right", None)):
        payload = {"verdict": verdict, **({"estimate_eur": estimate} if estimate else {})}
        api.post(f"/api/v1/valuations/{made['id']}/feedback", payload, format="json")
    low, right = Feedback.objects.get(verdict="too_low"), Feedback.objects.get(verdict="right")
    client.force_login(User.objects.create_superuser("beheer", "beheer@example.org", "Notaris-2026-veilig"))
    url = "/admin/valuation/feedback/"
    client.post(url, {"action": "mark_in_review", "_selected_action": [low.pk]})
    client.post(url, {"action": "accept", "_selected_action": [low.pk, right.pk]})
    low.refresh_from_db()
    right.refresh_from_db()
    assert (low.status, right.status) == ("accepted", "accepted")
    client.post(url, {"action": "mark_in_review", "_selected_action": [right.pk]})  # not from accepted
    right.refresh_from_db()
    assert right.status == "accepted"
    band = str(sum(1 for edge in (100_000, *range(150_000, 650_001, 50_000)) if made["price_eur"] >= edge))
    assert f"#{made['id']}<" in client.get(url, {"band": band}).content.decode()
    export = client.post(url, {"action": "export_accepted", "_selected_action": [low.pk, right.pk]})
    lines = export.content.decode().strip().splitlines()
    assert len(lines) == 2 and lines[1].split(",")[8] == "450000"  # only the one with an estimate


def test_staff_activate_a_model_version_after_confirming(keys: dict[str, Any], client: Any) -> None:
    from django.contrib.auth.models import User

    from valuation.models import ModelVersion

    active = ModelVersion.objects.get(status="active")
    client.force_login(User.objects.create_superuser("beheer", "beheer@example.org", "Notaris-2026-veilig"))
    url = "/admin/valuation/modelversion/"
    asked = client.post(url, {"action": "activate", "_selected_action": [active.pk]})
    assert asked.status_code == 200 and b"Yes, activate" in asked.content  # a confirmation page first
    ModelVersion.objects.filter(pk=active.pk).update(status="retired")  # as after a newer promotion
    client.post(url, {"action": "activate", "_selected_action": [active.pk], "confirmed": "yes"})
    assert ModelVersion.objects.get(pk=active.pk).status == "active"  # rolled back to it


def test_staff_refresh_a_source_now_from_its_runs(client: Any, monkeypatch: Any, db: Any) -> None:
    from django.contrib.auth.models import User

    from opendata import tasks
    from opendata.models import SourceRefreshRun

    run = SourceRefreshRun.objects.create(source="stations", status="succeeded", location="test")
    queued: list[str] = []
    monkeypatch.setattr(tasks.refresh_source, "delay", lambda name: queued.append(name))
    client.force_login(User.objects.create_superuser("beheer", "beheer@example.org", "Notaris-2026-veilig"))
    listing = client.get("/admin/opendata/sourcerefreshrun/")
    assert listing.status_code == 200 and "next scheduled run" in listing.content.decode().lower()
    client.post("/admin/opendata/sourcerefreshrun/", {"action": "refresh_now", "_selected_action": [run.pk]})
    assert queued == ["stations"]


def test_cors_is_closed_by_default(keys: dict[str, Any]) -> None:
    client = _client(keys["bank"])
    response = client.get("/api/v1/addresses", {"q": "kerk"}, HTTP_ORIGIN="https://elsewhere.example")
    assert response.status_code == 200 and "Access-Control-Allow-Origin" not in response
    preflight = client.options(
        "/api/v1/valuations",
        HTTP_ORIGIN="https://elsewhere.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    assert "Access-Control-Allow-Origin" not in preflight


def test_admin_actions_need_the_change_permission(keys: dict[str, Any], house: Address, client: Any) -> None:
    from django.contrib.auth.models import Permission, User

    from valuation.models import ModelVersion

    made = _client(keys["bank"]).post("/api/v1/valuations", {"address_id": house.pk}, format="json").json()
    _client(keys["bank"]).post(
        f"/api/v1/valuations/{made['id']}/feedback", {"verdict": "right"}, format="json"
    )
    viewer = User.objects.create_user("kijker", password="Notaris-2026-veilig", is_staff=True)
    viewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_feedback", "view_modelversion"])
    )
    client.force_login(viewer)
    feedback = Feedback.objects.get(valuation_id=made["id"])
    page = client.get("/admin/valuation/feedback/")
    assert page.status_code == 200 and b'value="accept"' not in page.content  # not offered
    client.post("/admin/valuation/feedback/", {"action": "accept", "_selected_action": [feedback.pk]})
    feedback.refresh_from_db()
    assert feedback.status == "new"
    active = ModelVersion.objects.get(status="active")
    ModelVersion.objects.filter(pk=active.pk).update(status="retired")
    client.post(
        "/admin/valuation/modelversion/",
        {"action": "activate", "_selected_action": [active.pk], "confirmed": "yes"},
    )
    assert ModelVersion.objects.get(pk=active.pk).status == "retired"  # refused
    ModelVersion.objects.filter(pk=active.pk).update(status="active")


def test_a_body_over_the_size_limit_gets_413_in_the_error_shape(db: Any, settings: Any) -> None:
    cache.clear()
    _, key = api_key_issue(partner=Partner.objects.create(name="Big", slug="big"), scopes=["deliver_sales"])
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    big = {"sales": [{"price_eur": 250_000, "comment": "x" * 100}] * 200}
    body = _error(_client(key).post("/api/v1/sales", big, format="json"), 413)
    assert body["code"] == "too_large" and "10,000 bytes" in body["message"]
    small = {"sales": [{"price_eur": 250_000}]}
    assert _client(key).post("/api/v1/sales", small, format="json").status_code != 413


def test_a_body_without_a_length_is_bounded_too(settings: Any) -> None:
    import io
    import types

    from valuation.api.parsers import LimitedJSONParser, RequestTooLarge

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    chunked = types.SimpleNamespace(META={})  # no CONTENT_LENGTH, as with Transfer-Encoding: chunked
    with pytest.raises(RequestTooLarge):
        LimitedJSONParser().parse(io.BytesIO(b"[" + b"1," * 1000 + b"1]"), None, {"request": chunked})
    assert LimitedJSONParser().parse(io.BytesIO(b"[1, 2]"), None, {"request": chunked}) == [1, 2]


def test_a_page_refuses_a_body_over_the_limit_with_a_sentence(client: Any, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = client.post("/login/", {"username": "x" * 2000, "password": "y"})
    assert response.status_code == 413 and "1,000" in response.content.decode()  # a sentence with the limit
