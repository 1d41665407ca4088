"""After loading the demo, the planner knows its tables.

Without statistics (COPY leaves none, and autovacuum may be off or late) PostgreSQL guessed a few
hundred addresses and scanned them all, folding each street, for every suggestion.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def test_demo_tables_have_statistics(demo_model: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename, count(*) FROM pg_stats WHERE schemaname = current_schema() "
            "AND tablename = ANY(%s) GROUP BY tablename",
            [["opendata_address", "opendata_parcel", "opendata_building", "valuation_sale"]],
        )
        counted = dict(cursor.fetchall())
    assert set(counted) == {"opendata_address", "opendata_parcel", "opendata_building", "valuation_sale"}
    assert all(n > 0 for n in counted.values())


def test_planner_knows_how_many_addresses_there_are(demo_model: Any) -> None:
    """Never analysed, a table reads reltuples -1 and the planner guesses; after ANALYZE, the count."""
    from opendata.models import Address

    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'opendata_address'")
        (estimated,) = cursor.fetchone()
    count = Address.objects.count()
    assert count > 0 and abs(estimated - count) <= 0.1 * count
