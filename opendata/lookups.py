"""``field__in_array=[...]``: ``field = ANY(%s)`` with the whole list as one array parameter.

Django's ``__in`` writes one placeholder per value: with thousands of values (a batch of CaPaKeys or
parcel ids) building, parsing and binding them costs more than the query itself.
"""

from __future__ import annotations

from typing import Any

from django.db.models import CharField, ForeignKey, IntegerField, Lookup


class InArray(Lookup):
    lookup_name = "in_array"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s)", [*lhs_params, list(self.rhs)]


for _field in (CharField, IntegerField, ForeignKey):
    _field.register_lookup(InArray)
