"""The office's list and the recent valuations: labels from the stored result, without loading results."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from opendata.models import Address

pytestmark = pytest.mark.django_db


def _value(client: Client, address: Address) -> int:
    response = client.post(
        reverse("valuate"), {"q": address.label(), "address_id": address.pk, "living_area_m2": 130}
    )
    assert response.status_code == 302
    found = re.search(r"/valuations/(\d+)/", response["Location"])
    assert found is not None
    return int(found.group(1))


def test_list_and_recent_show_labels_without_reading_whole_results(client_a: Client, house: Address) -> None:
    others = list(Address.objects.filter(source="demo", box="").exclude(pk=house.pk).order_by("pk")[:2])
    ids = [_value(client_a, a) for a in [house, *others]]
    with CaptureQueriesContext(connection) as listing:
        page = client_a.get(reverse("valuation-list")).content.decode()
    for pk, address in zip(ids, [house, *others], strict=True):
        assert f'href="/valuations/{pk}/">{address.label()}</a>' in page
    listed = [q["sql"] for q in listing.captured_queries if 'FROM "valuation_valuation"' in q["sql"]]
    assert len(listed) == 1  # one query for all rows, whoever made them
    whole = re.compile(r'"valuation_valuation"\."(result|inputs)"(?!\s*#>>)')  # #>> reads one key
    assert whole.search(listed[0]) is None, listed[0]

    search = client_a.get(reverse("search")).content.decode()
    recent = search.split('id="recent-h"')[1]
    assert recent.index(others[-1].label()) < recent.index(house.label())  # newest first
