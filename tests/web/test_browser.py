"""The notary's journey in a real browser: Playwright driving Debian's Chromium against the running app.

The app runs as its own process (``manage.py runserver``) on the test database, which holds the demo
region and an active model (loaded once per session). Screenshots of every step are kept in
``var/test-artifacts/browser/``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from tests.servers import app_serve, free_port, python_command

# Marked as a database test so that pytest-django runs it with the other non-transactional tests,
# before the transactional ones whose flushes would remove the session's demo region and model.
pytestmark = pytest.mark.django_db

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(settings.BASE_DIR) / "var" / "test-artifacts" / "browser"
PASSWORD = "Notaris-2026-veilig"


@pytest.fixture(scope="module")
def app(django_db_setup: Any, django_db_blocker: Any, demo_model: Any, model_dir: Path) -> Iterator[str]:
    """The app served by its own process on the test database; its URL."""
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    port = free_port()
    command = python_command("manage.py", "runserver", "--noreload", f"127.0.0.1:{port}")
    try:
        with app_serve(
            command, port, {"DATABASE_URL": url, "MODEL_DIR": str(model_dir), "DEBUG": "1"}
        ) as base:
            yield base
    finally:
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            # The server's session may outlive its process for a moment; the test database is
            # dropped at the end of the run, which no open session may block.
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


@pytest.fixture(scope="module")
def accounts(django_db_blocker: Any, demo_model: Any) -> Iterator[dict[str, str]]:
    """A notary of an office and a staff member, committed (the app's process must see them)."""
    from django.contrib.auth.models import User

    from valuation.models import Membership, Office

    with django_db_blocker.unblock():
        office = Office.objects.create(name="Notaris Janssens (browser test)")
        notary = User.objects.create_user("jan", password=PASSWORD, first_name="Jan")
        Membership.objects.create(user=notary, office=office)
        User.objects.create_superuser("beheer", "beheer@example.org", PASSWORD)
    yield {"notary": "jan", "staff": "beheer"}
    with django_db_blocker.unblock():
        office.valuations.all().delete()
        User.objects.filter(username__in=["jan", "beheer"]).delete()
        office.delete()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make test does)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # Playwright's event loop runs in this thread, where the test's queries run too; only for this
    # module (a later `check --deploy` must not see the variable).
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            yield chromium
            chromium.close()
    finally:
        if before is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


def _shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _log_in(page: Any, base: str, user: str) -> None:
    page.goto(base + "/login/")
    page.get_by_label(re.compile("User name|Gebruikersnaam|Nom d'utilisateur")).fill(user)
    page.get_by_label(re.compile("Password|Wachtwoord|Mot de passe")).fill(PASSWORD)
    page.locator("form button[type=submit].primary").click()


def _watch_csp(page: Any, violations: list[str]) -> None:
    """Collects what the Content-Security-Policy blocked (Chromium logs each refusal on the console)."""
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )


def test_a_notary_values_a_house_corrects_it_and_sends_feedback(
    app: str, accounts: dict[str, str], browser: Any, house: Any
) -> None:
    context = browser.new_context(locale="nl-BE", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    requests_elsewhere: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(app) else requests_elsewhere.append(r.url))
    violations: list[str] = []
    _watch_csp(page, violations)

    _log_in(page, app, accounts["notary"])
    page.wait_for_url(re.compile(r"/search/$"))
    _shot(page, "01-search")

    box = page.locator("#id_q")
    box.press_sequentially(f"{house.street_nl[:5].lower()}", delay=30)  # part of the street, as typed
    page.locator("#suggestions [role=option]").first.wait_for()
    _shot(page, "02-street-suggestions")
    box.fill("")
    box.press_sequentially(f"{house.street_nl} {house.house_number}", delay=20)
    option = page.locator(
        "#suggestions [role=option]", has_text=f"{house.street_nl} {house.house_number},"
    ).first
    option.wait_for()
    _shot(page, "03-address-suggestions")
    option.click()

    page.wait_for_url(re.compile(r"/valuations/\d+/$"))
    price = page.get_by_test_id("price").inner_text()
    assert re.fullmatch(r"€\s?\d{1,3}(\.\d{3})+", price.strip()), price
    assert "\u2013" in page.get_by_test_id("range").inner_text()  # low - high
    assert page.get_by_test_id("distribution").locator("tbody tr").count() == 13
    assert page.get_by_test_id("waterfall").locator("li").count() >= 3
    assert page.locator("#map.leaflet-container").count() == 1
    assert page.locator("#map path.leaflet-interactive").count() >= 1  # the parcel, without any tiles
    assert page.locator("#map .sale-marker").count() >= 1
    _shot(page, "04-result")

    page.set_viewport_size({"width": 820, "height": 1180})  # a tablet, upright
    assert page.evaluate("document.documentElement.scrollWidth") <= 820  # no sideways scrolling
    _shot(page, "04b-result-tablet")
    page.set_viewport_size({"width": 1280, "height": 900})

    first_url = page.url
    area = page.locator("#revise-form input[name=living_area_m2]")
    area.fill("310")
    page.locator("#revise-form button[type=submit]").click()
    page.wait_for_url(lambda url: url != first_url and "/valuations/" in url)
    new_price = page.get_by_test_id("price").inner_text()
    assert new_price != price
    _shot(page, "05-corrected")

    page.locator("#feedback input[value=too_high]").check()
    page.locator("#feedback input[name=estimate_eur]").fill("350000")
    page.locator("#feedback textarea").fill("Badkamer te renoveren.")
    page.locator("#feedback button[type=submit]").click()
    page.locator("#feedback .received").wait_for()
    _shot(page, "06-feedback-received")

    page.locator(".languages button[value=fr]").click()
    page.get_by_role("heading", name="Prix indicatif").wait_for()
    assert "Comment le modèle" in page.content()
    _shot(page, "07-french")
    assert requests_elsewhere == []  # no CDN, no tiles: nothing from another host
    context.close()

    staff = browser.new_context(locale="en-GB").new_page()
    _log_in(staff, app, accounts["staff"])
    staff.goto(app + "/admin/valuation/feedback/?verdict__exact=too_high")
    assert staff.locator("#result_list tbody tr").count() >= 1
    assert "350000" in staff.locator("#result_list").inner_text().replace(",", "").replace(".", "")
    _shot(staff, "08-admin-feedback")
    _watch_csp(staff, violations)
    staff.goto(app + f"/admin/opendata/parcel/{house.parcel_id}/change/")
    assert staff.locator(".admin-map path.leaflet-interactive").count() == 1  # the parcel on our Leaflet
    _shot(staff, "09-admin-parcel-map")
    staff.goto(app + "/api/docs/")
    staff.get_by_text("Notary valuation API").first.wait_for()
    _shot(staff, "10-api-docs")
    staff.context.close()
    # The pages work under the policy: nothing inline was refused. ReDoc's footer logo comes from its
    # CDN, which the policy blocks on purpose (no request leaves for another host).
    assert [v for v in violations if "cdn.redoc.ly" not in v] == []
