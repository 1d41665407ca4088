"""``field__in_array``: the same rows as ``__in``, with the list sent as one array parameter."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from opendata.models import Municipality


@pytest.mark.django_db
def test_in_array_finds_what_in_finds() -> None:
    for code in ("11111", "22222", "33333"):
        Municipality.objects.create(nis_code=code, name_nl=f"Gemeente {code}", valid_from="2025-01-01")
    wanted = ["11111", "33333", "99999"]
    with CaptureQueriesContext(connection) as queries:
        found = set(Municipality.objects.filter(nis_code__in_array=wanted).values_list("nis_code", flat=True))
    assert found == set(Municipality.objects.filter(nis_code__in=wanted).values_list("nis_code", flat=True))
    assert found == {"11111", "33333"}
    assert "= ANY(" in queries.captured_queries[0]["sql"]
    ids = list(Municipality.objects.filter(nis_code__in=wanted).values_list("pk", flat=True))
    assert Municipality.objects.filter(pk__in_array=ids).count() == 2
    assert not Municipality.objects.filter(pk__in_array=[]).exists()
