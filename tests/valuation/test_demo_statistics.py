"""After loading the demo, the planner knows its tables: the search box's trigram index is used.

Without statistics (COPY leaves none, and autovacuum may be off or late) PostgreSQL guessed a few
hundred addresses and scanned them all for every suggestion.
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


def test_suggestions_use_the_trigram_index(demo_model: Any) -> None:
    """The plan of the search box's street query, as it ran for 'Kerk', reads the index."""
    from django.test.utils import CaptureQueriesContext

    from valuation.suggest import suggest

    with CaptureQueriesContext(connection) as ctx:
        assert suggest("Kerk")
    streets = next(q["sql"] for q in ctx.captured_queries if "notary_fold" in q["sql"])
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + streets.replace("%%", "%"))
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "opendata_address_street_nl_fold" in plan, plan
