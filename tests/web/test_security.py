"""Pages under the Content-Security-Policy, and forms fed anything a keyboard or a script can send.

The policy forbids inline script and style, so every page we render must have none (the browser test
checks Chromium refuses nothing). Hypothesis sends arbitrary text to the search box, the suggestions,
the facts and the feedback: the answer is a page or a 4xx, never a server error, and refused input
stores nothing.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opendata.models import Address
from valuation.models import Feedback, Valuation

PASSWORD = "Notaris-2026-veilig"
FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class _Inline(HTMLParser):
    """Finds what a policy without 'unsafe-inline' would refuse: inline scripts, styles, handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_code = False  # inside a <script> that is code (JSON data blocks are not run)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if "style" in names:
            self.found.append(f"<{tag} style=...>")
        self.found += [f"<{tag} {n}=...>" for n in names if n.startswith("on")]
        if tag == "style":
            self.found.append("<style>")
        if any(str(v or "").strip().lower().startswith("javascript:") for v in names.values()):
            self.found.append(f"<{tag} javascript: URL>")
        self._in_code = tag == "script" and names.get("type") != "application/json"

    def handle_data(self, data: str) -> None:
        if self._in_code and data.strip():
            self.found.append("<script> with code")

    def handle_endtag(self, tag: str) -> None:
        self._in_code = False


def _inline(html: str) -> list[str]:
    parser = _Inline()
    parser.feed(html)
    return parser.found


def _value(client: Client, house: Address) -> Valuation:
    response = client.post(reverse("valuate"), {"address_id": house.pk})
    assert response.status_code == 302, response.content[:500]
    return Valuation.objects.latest("pk")


def test_every_page_is_served_under_a_policy_without_inline_code(client_a: Client, house: Address) -> None:
    valuation = _value(client_a, house)
    staff = Client()
    staff.force_login(User.objects.create_superuser("csp-staff", "staff@example.org", PASSWORD))
    pages = [
        (Client(), reverse("login")),
        (client_a, reverse("search")),
        (client_a, reverse("valuation-detail", args=[valuation.pk])),
        (client_a, reverse("valuation-list")),
        (staff, reverse("admin:index")),
        (staff, reverse("admin:opendata_parcel_change", args=[house.parcel_id])),
        (staff, reverse("admin:valuation_valuation_change", args=[valuation.pk])),
        (staff, reverse("admin:valuation_sale_changelist")),
    ]
    for client, url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "style-src 'self'" in policy, url
        assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy, url
        assert _inline(response.content.decode()) == [], url
    detail = client_a.get(reverse("valuation-detail", args=[valuation.pk])).content.decode()
    assert detail.count('<svg class="bar"') == 13  # the price bands, drawn without inline style


def test_only_the_api_reference_may_use_inline_styles(client: Client) -> None:
    docs = client.get(reverse("api-docs"))
    assert docs.status_code == 200
    policy = docs["Content-Security-Policy"]
    assert "style-src 'self' 'unsafe-inline'" in policy and "script-src 'self';" in policy
    assert "fonts.googleapis.com" not in docs.content.decode()  # nothing from another host
    assert _inline(docs.content.decode()) == []


texts = st.text(st.characters(codec="utf-8"), max_size=300)


@FUZZ
@given(q=texts)
def test_the_suggestions_take_any_text(client_a: Client, house: Address, q: str) -> None:
    response = client_a.get(reverse("suggestions"), {"q": q})
    assert response.status_code == 200
    assert isinstance(response.json()["results"], list)


@FUZZ
@given(
    q=texts,
    address_id=st.one_of(st.text(max_size=30), st.integers(-(2**70), 2**70).map(str)),
    capakey=st.text(max_size=60),
    living=st.one_of(st.text(max_size=20), st.floats(allow_nan=True, allow_infinity=True).map(str)),
    when=st.one_of(st.text(max_size=20), st.dates().map(str)),
)
def test_the_search_box_refuses_nonsense_with_a_sentence(
    client_a: Client, house: Address, q: str, address_id: str, capakey: str, living: str, when: str
) -> None:
    before = Valuation.objects.count()
    response = client_a.post(
        reverse("valuate"),
        {
            "q": q,
            "address_id": address_id,
            "capakey": capakey,
            "living_area_m2": living,
            "valuation_date": when,
        },
    )
    assert response.status_code in (302, 400, 404), response.status_code
    if response.status_code == 302:
        assert Valuation.objects.count() == before + 1
    else:
        assert Valuation.objects.count() == before  # nothing stored for refused input
        page = response.content.decode()
        assert 'role="alert"' in page or 'class="error"' in page  # a sentence says what is wrong


@pytest.fixture
def valued(client_a: Client, house: Address) -> Valuation:
    return _value(client_a, house)


facts = st.fixed_dictionaries(
    {},
    optional={
        name: st.one_of(st.text(max_size=25), st.integers(-(10**12), 10**12).map(str))
        for name in ("living_area_m2", "land_area_m2", "rooms", "bedrooms", "year_built", "condition")
    },
)


@FUZZ
@given(data=facts)
def test_corrections_take_any_input_and_never_change_the_stored_valuation(
    client_a: Client, valued: Valuation, data: dict[str, str]
) -> None:
    stored = Valuation.objects.get(pk=valued.pk)
    response = client_a.post(reverse("valuation-revise", args=[valued.pk]), data)
    assert response.status_code in (302, 400), response.status_code
    after = Valuation.objects.get(pk=valued.pk)
    assert (after.price_eur, after.inputs, after.result) == (stored.price_eur, stored.inputs, stored.result)


@FUZZ
@given(
    verdict=st.one_of(st.sampled_from(["right", "too_high", "too_low"]), st.text(max_size=20)),
    estimate=st.one_of(st.text(max_size=20), st.integers(-(2**70), 2**70).map(str)),
    comment=st.text(max_size=5000),
)
def test_feedback_takes_any_input_and_stores_only_valid_feedback(
    client_a: Client, valued: Valuation, verdict: str, estimate: str, comment: str
) -> None:
    before = Feedback.objects.filter(valuation=valued).count()
    response = client_a.post(
        reverse("valuation-feedback", args=[valued.pk]),
        {"verdict": verdict, "estimate_eur": estimate, "comment": comment},
    )
    assert response.status_code == 302, response.status_code  # back to the result, with a message
    said = [m.level_tag for m in get_messages(response.wsgi_request)][-1]  # this answer's message
    stored = Feedback.objects.filter(valuation=valued).count()
    assert stored == before + (1 if said == "success" else 0)


@FUZZ
@given(username=st.text(max_size=200), password=st.text(max_size=200))
def test_the_login_form_takes_any_input(client: Client, db: Any, username: str, password: str) -> None:
    from django.core.cache import cache

    cache.clear()  # the throttle would answer 429 after a few failures, which is right but not the point
    response = client.post(reverse("login"), {"username": username, "password": password})
    assert response.status_code in (200, 400, 429)
    assert "_auth_user_id" not in client.session
