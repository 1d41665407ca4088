"""`make loadtest`: notaries and a partner system against the running demo (Locust, headless).

    locust -f benchmarks/locustfile.py --headless -u 50 -r 10 -t 180s --host http://127.0.0.1:8000 \
        --fixture var/loadtest/fixture.json --window 60 --p99-ms 300

The fixture (accounts, an API key and demo addresses) comes from ``benchmarks.loadtest_prepare``.

Every notary logs in once under their own name (the CSRF token from the login form). The measured
window (``--window`` seconds) opens when all of them are in: from then on each one works as a notary
does, with 1-3 s of thought between tasks: open the search page, type an address while the
suggestions come (street, then house number, the postcode if it is still ambiguous), pick it and
value it (entering the living area when the page asks for it), read the result they were sent to,
reopen an earlier result, correct a fact, or look at the office's list. One user in ten is a partner
system on the REST API (address search, valuation, read-back). ``-t`` only bounds the whole run.

At the end it prints requests, failures, throughput and median / p95 / p99 per kind of request and
over the window, and exits 1 when any request failed (logins included) or when the window's p99
exceeds ``--p99-ms``. Logins are reported apart and left out of the p99: each costs one PBKDF2 of
Django's default strength (about 0.35 s of CPU), which is the point of a password hash.
"""

from __future__ import annotations

import json
import random
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import gevent
from gevent.event import Event
from locust import between, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment
from locust.stats import StatsEntry

LOGIN = "login"  # request names starting so are set-up, not the measured mix
rng = random.Random()  # noqa: S311 - think times and picks, never secrets
_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
_ASKS_LIVING_AREA = re.compile(r'class="has-error">\s*<label for="id_living_area_m2"')
_RESULT = re.compile(r"^/valuations/(\d+)/$")


class Run:
    """What the users share: the fixture, the start barrier and the measured window."""

    fixture: dict[str, Any] = {}
    accounts: list[dict[str, str]] = []
    logged_in = 0
    ready = Event()
    window_start: float | None = None
    window_end: float | None = None


def _fixture_accounts() -> list[dict[str, str]]:
    return list(Run.fixture.get("users", []))


def _opts(environment: Environment) -> Any:
    assert environment.parsed_options is not None
    return environment.parsed_options


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--fixture", default="var/loadtest/fixture.json", help="from loadtest_prepare")
    parser.add_argument("--window", type=float, default=60, help="measured seconds after all logins")
    parser.add_argument("--p99-ms", type=float, default=300, help="fail above this p99 (ms)")


@events.test_start.add_listener
def _load(environment: Environment, **_: Any) -> None:
    Run.fixture = json.loads(Path(_opts(environment).fixture).read_text())
    Run.accounts = _fixture_accounts()
    rng.shuffle(Run.accounts)
    Run.logged_in = 0
    Run.ready.clear()


def _arrived(environment: Environment) -> None:
    """One more user has logged in (or failed to): when all have, open the measured window."""
    Run.logged_in += 1
    if Run.logged_in < _opts(environment).num_users or Run.ready.is_set():
        return
    Run.window_start = time.time()
    Run.ready.set()
    runner = environment.runner
    assert runner is not None

    def close() -> None:
        Run.window_end = time.time()
        runner.quit()

    gevent.spawn_later(_opts(environment).window, close)


def _start_thinking() -> None:
    """Wait for the window, then a think time: 50 users released at one instant would all ask for
    the same page in the same millisecond, which no office does."""
    Run.ready.wait()
    gevent.sleep(rng.uniform(0, 3))


def _address_words(address: dict[str, Any], language: str) -> tuple[str, str]:
    street = address["street_fr"] if language == "fr" and address["street_fr"] else address["street_nl"]
    number = address["house_number"] + (f" bus {address['box']}" if address["box"] else "")
    return street, number


class Notary(FastHttpUser):
    """A notary of one of the load-test offices, in Dutch or in French."""

    weight = 9
    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.results: list[int] = []
        self.token = ""
        try:
            account = Run.accounts.pop()
        except IndexError:
            raise RuntimeError("more notaries than accounts in the fixture: prepare more users") from None
        self.language = account["language"]
        self.headers = {"Accept-Language": self.language}
        try:
            self._login(account["username"], Run.fixture["password"])
        finally:
            _arrived(self.environment)
        _start_thinking()

    def _login(self, username: str, password: str) -> None:
        with self.client.get("/login/", name=f"{LOGIN}: form", catch_response=True) as r:
            match = _CSRF.search(r.text or "")
            if not match:
                r.failure("no CSRF token in the login form")
                return
        form = {"username": username, "password": password, "csrfmiddlewaretoken": match.group(1)}
        with self.client.post(
            "/login/", data=form, name=f"{LOGIN}: post", allow_redirects=False, catch_response=True
        ) as r:
            if r.status_code != 302 or not r.headers.get("Location", "").endswith("/search/"):
                r.failure(f"login refused: {r.status_code}")

    def _page(self, path: str, name: str) -> str:
        with self.client.get(
            path, name=name, headers=self.headers, allow_redirects=False, catch_response=True
        ) as r:
            if r.status_code != 200:
                r.failure(f"{r.status_code}")
                return ""
            match = _CSRF.search(r.text or "")
            if match:
                self.token = match.group(1)
            return r.text or ""

    def _suggest(self, typed: str) -> list[dict[str, Any]]:
        with self.client.get(
            "/search/suggestions?q=" + quote_plus(typed),
            name="suggestions",
            headers={**self.headers, "Accept": "application/json"},
            catch_response=True,
        ) as r:
            if r.status_code != 200:
                r.failure(f"{r.status_code}")
                return []
            return list(r.json().get("results", []))

    def _type_address(self, address: dict[str, Any]) -> dict[str, Any] | None:
        """Type the street, then the number (then the postcode) as the suggestions come; the pick."""
        street, number = _address_words(address, self.language)
        cut = rng.randint(3, max(3, min(len(street), 6)))
        typed = [street[:cut], f"{street} {number}", f"{street} {number}, {address['postcode']}"]
        for text in typed:
            gevent.sleep(rng.uniform(0.3, 0.9))  # keystrokes, and the 120 ms pause of the page
            for suggestion in self._suggest(text):
                if suggestion.get("address_id") == address["id"]:
                    return suggestion
        return None

    def _follow_result(self, response: Any) -> None:
        location = response.headers.get("Location", "")
        match = _RESULT.match(location)
        if match:
            self.results.append(int(match.group(1)))
            self._page(location, "result page")

    @task(6)
    def value_a_property(self) -> None:
        self._page("/search/", "search page")
        address = rng.choice(Run.fixture["addresses"])
        picked = self._type_address(address)
        if picked is None:
            self.environment.events.request.fire(
                request_type="PICK",
                name="suggestions: the address is offered",
                response_time=0,
                response_length=0,
                exception=RuntimeError("the address typed was not among the suggestions"),
                context={},
            )
            return
        form = {"q": picked["label"], "address_id": picked["address_id"], "csrfmiddlewaretoken": self.token}
        if rng.random() < 0.3:  # the notary knows some facts already
            form["living_area_m2"] = rng.randint(80, 260)
            form["bedrooms"] = rng.randint(1, 5)
        response, asks_area = self._post_valuation(form)
        if response is None and asks_area:
            gevent.sleep(rng.uniform(1, 2))  # the notary types the living area
            form["living_area_m2"] = rng.randint(80, 260)
            response, _ = self._post_valuation(form, asked=True)
        if response is None:
            return
        self._follow_result(response)

    def _post_valuation(self, form: dict[str, Any], *, asked: bool = False) -> tuple[Any, bool]:
        """POST the search form: (the redirect to the result, or None; whether the page asked for the
        living area of a house the data does not know, which is a right answer, not a failure)."""
        with self.client.post(
            "/valuations/new",
            data=form,
            name="valuation",
            headers=self.headers,
            allow_redirects=False,
            catch_response=True,
        ) as r:
            if r.status_code == 302:
                r.success()
                return r, False
            if not asked and r.status_code == 400 and _ASKS_LIVING_AREA.search(r.text or ""):
                r.success()
                return None, True
            r.failure(f"{r.status_code}" + (" with the living area" if asked else ""))
            return None, False

    @task(2)
    def reopen_a_result(self) -> None:
        if self.results:
            self._page(f"/valuations/{rng.choice(self.results)}/", "result page")

    @task(1)
    def correct_a_fact(self) -> None:
        if not self.results:
            return
        pk = rng.choice(self.results)
        form = {
            "living_area_m2": rng.randint(80, 260),
            "condition": rng.choice(["to_renovate", "average", "good", "as_new"]),
            "csrfmiddlewaretoken": self.token,
        }
        with self.client.post(
            f"/valuations/{pk}/revise",
            data=form,
            name="valuation: corrected facts",
            headers=self.headers,
            allow_redirects=False,
            catch_response=True,
        ) as r:
            if r.status_code != 302 or not _RESULT.match(r.headers.get("Location", "")):
                r.failure(f"{r.status_code}")
                return
            if r.headers["Location"] == f"/valuations/{pk}/":
                r.failure("the correction was refused")
                return
        self._follow_result(r)

    @task(1)
    def office_list(self) -> None:
        self._page("/valuations/", "valuations list")


class Partner(FastHttpUser):
    """A partner system on the REST API with the load-test key."""

    weight = 1
    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.ids: list[int] = []
        self.api = {"Authorization": f"Api-Key {Run.fixture['api_key']}", "Accept": "application/json"}
        _arrived(self.environment)
        _start_thinking()

    @task(3)
    def value(self) -> None:
        address = rng.choice(Run.fixture["addresses"])
        street, number = _address_words(address, "nl")
        with self.client.get(
            "/api/v1/addresses?q=" + quote_plus(f"{street} {number}, {address['postcode']}"),
            name="api: addresses",
            headers=self.api,
            catch_response=True,
        ) as r:
            found = [
                a for a in (r.json() if r.status_code == 200 else []) if a["address_id"] == address["id"]
            ]
            if not found:
                r.failure(f"{r.status_code}: the address was not found")
                return
        body = {"address_id": address["id"], "facts": {"living_area_m2": rng.randint(80, 260)}}
        with self.client.post(
            "/api/v1/valuations", json=body, name="api: valuation", headers=self.api, catch_response=True
        ) as r:
            if r.status_code != 201:
                r.failure(f"{r.status_code}")
                return
            self.ids.append(int(r.json()["id"]))

    @task(1)
    def read_back(self) -> None:
        if self.ids:
            self.client.get(
                f"/api/v1/valuations/{rng.choice(self.ids)}", name="api: valuation read", headers=self.api
            )


# --- the summary ----------------------------------------------------------------------------------
def _merged(entries: list[StatsEntry], stats: Any, name: str) -> StatsEntry:
    total = StatsEntry(stats, name, "")
    for entry in entries:
        total.extend(entry)
    return total


def _row(entry: StatsEntry, seconds: float) -> str:
    pct = entry.get_response_time_percentile
    return (
        f"{entry.name:<34} {entry.num_requests:>8} {entry.num_failures:>8} "
        f"{entry.num_requests / seconds if seconds else 0:>8.1f} "
        f"{pct(0.5):>7} {pct(0.95):>7} {pct(0.99):>7} {entry.max_response_time:>8.0f}"
    )


def summary(environment: Environment) -> tuple[str, int]:
    """The table of the run and its exit code (1: a failure, or the window's p99 over the target)."""
    stats = environment.stats
    assert stats is not None
    options = _opts(environment)
    entries = sorted(stats.entries.values(), key=lambda e: e.name)
    setup = [e for e in entries if e.name.startswith(LOGIN)]
    mix = [e for e in entries if not e.name.startswith(LOGIN)]
    window = (Run.window_end or time.time()) - (Run.window_start or time.time())
    total = _merged(mix, stats, "the mix (measured window)")
    login = _merged(setup, stats, "logins (before the window)")
    crashes = len(environment.runner.exceptions) if environment.runner else 0
    failures = sum(e.num_failures for e in entries) + crashes
    p99 = total.get_response_time_percentile(0.99)
    lines = [
        f"{len(Run.fixture.get('users', []))} accounts, {options.num_users} users "
        f"({Run.logged_in} started), window {window:.0f} s after the last login",
        f"{'request':<34} {'count':>8} {'failures':>8} {'req/s':>8} "
        f"{'median':>7} {'p95':>7} {'p99':>7} {'max':>8}   (ms)",
    ]
    lines += [_row(e, window) for e in mix]
    lines += [_row(total, window), _row(login, window) + "   (req/s: not in the window)"]
    errors = sorted(stats.errors.values(), key=lambda e: -e.occurrences)
    for error in errors[:10]:
        lines.append(f"failure: {error.occurrences} x {error.method} {error.name}: {error.error}")
    if len(errors) > 10:
        lines.append(
            f"... and {len(errors) - 10} other kinds of failure (var/loadtest/loadtest_failures.csv)"
        )
    full = Run.window_start is not None and window >= options.window - 1  # not cut short by -t
    ok = failures == 0 and total.num_requests > 0 and full and p99 <= options.p99_ms
    verdict = "PASS" if ok else "FAIL"
    rate = total.num_requests / max(window, 1e-9)
    lines.append(
        f"{verdict}: {total.num_requests} requests in {window:.0f} s = {rate:.1f}"
        f" req/s, failures {failures}, p99 {p99} ms (target <= {options.p99_ms:.0f} ms, no failure"
        f"{'' if full else ', and a full window: -t cut it short'})"
    )
    return "\n".join(lines), 0 if ok else 1


@events.quitting.add_listener
def _verdict(environment: Environment, **_: Any) -> None:
    text, code = summary(environment)
    print("\n" + text, flush=True)
    out = Path(_opts(environment).fixture).with_name("summary.txt")
    out.write_text(text + "\n")
    environment.process_exit_code = code
