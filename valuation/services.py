"""Write services of the valuation app: create valuations (one or many) and store them as shown."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection, transaction
from django.utils import timezone

from opendata.copy import copy_rows
from opendata.models import RunStatus, SourceRefreshRun
from valuation.engine import FACT_NAMES, Target, ValuationInputError, value_targets
from valuation.locate import LocateError, Subject, subject_locate, subjects_locate_many
from valuation.models import Channel, Valuation
from valuation.sales_data import sales_snapshot

OVERRIDABLE = set(FACT_NAMES) | {"condition"}
CONDITIONS = ("to_renovate", "average", "good", "as_new")


@dataclass
class ValuationQuery:
    """How the property is named, the notary's facts and the date; validated at the edge."""

    address: str | None = None
    capakey: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    address_id: int | None = None
    facts: dict[str, Any] | None = None
    valuation_date: date | None = None

    def as_inputs(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if v not in (None, {}, "")}
        if self.valuation_date:
            data["valuation_date"] = self.valuation_date.isoformat()
        return data

    def label(self) -> str:
        if self.address:
            return self.address
        if self.capakey:
            return self.capakey
        if self.latitude is not None:
            return f"{self.latitude}, {self.longitude}"
        return f"address #{self.address_id}" if self.address_id else ""


def facts_clean(facts: dict[str, Any] | None) -> dict[str, Any]:
    """Check the notary's facts; raise ValuationInputError naming the field at fault."""
    clean: dict[str, Any] = {}
    for name, value in (facts or {}).items():
        if value is None or value == "":
            continue
        if name not in OVERRIDABLE:
            raise ValuationInputError(f"'{name}' is not a fact the notary can give.", field=name)
        if name == "property_type":
            if value not in ("house", "apartment", "other"):
                raise ValuationInputError("The property type is house, apartment or other.", field=name)
            clean[name] = value
        elif name == "condition":
            if value not in CONDITIONS:
                raise ValuationInputError(f"The condition is one of {', '.join(CONDITIONS)}.", field=name)
            clean[name] = value
        else:
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ValuationInputError(f"'{value}' is not a number.", field=name) from None
            limits = {
                "living_area_m2": (10, 5000),
                "land_area_m2": (0, 1_000_000),
                "rooms": (1, 100),
                "bedrooms": (0, 50),
                "year_built": (1000, date.today().year + 5),
                "epc_kwh_m2": (0, 2000),
            }
            low, high = limits[name]
            if not low <= number <= high:
                raise ValuationInputError(
                    f"{number:g} is outside the plausible range {low}-{high}.", field=name
                )
            clean[name] = number
    return clean


def data_vintages() -> dict[str, Any]:
    """The vintage of every data source: last successful refresh per source, and the sales."""
    sources: dict[str, dict[str, Any]] = {}
    for run in SourceRefreshRun.objects.filter(status=RunStatus.SUCCEEDED).order_by("source", "-finished_at"):
        if run.source not in sources:
            sources[run.source] = {
                "vintage": run.vintage,
                "refreshed": run.finished_at.isoformat() if run.finished_at else None,
            }
    snapshot = sales_snapshot()
    latest = snapshot.frame["sale_date"].max() if len(snapshot) else None
    sources["sales"] = {
        "vintage": latest.date().isoformat() if latest is not None else None,
        "count": len(snapshot),
    }
    return sources


def _store(
    *,
    query: ValuationQuery,
    subject: Subject,
    result: dict[str, Any],
    channel: str,
    user: Any,
    version: Any,
    vintages: dict[str, Any],
) -> Valuation:
    result = {**result, "vintages": vintages}
    return Valuation(
        channel=channel,
        created_by=user if user is not None and not isinstance(user, AnonymousUser) else None,
        query=query.label()[:300],
        inputs=query.as_inputs(),
        valuation_date=date.fromisoformat(result["valuation_date"]),
        parcel=subject.parcel,
        point=subject.point,
        model_version=version,
        price_eur=result["price_eur"],
        low_eur=result["low_eur"],
        high_eur=result["high_eur"],
        coverage=result["coverage"],
        result=result,
    )


def valuation_create(
    *, query: ValuationQuery, channel: str = Channel.WEB, user: AbstractBaseUser | AnonymousUser | None = None
) -> Valuation:
    """Locate, value and store one property. Raises LocateError or ValuationInputError for bad input."""
    facts = facts_clean(query.facts)
    subject = subject_locate(
        address=query.address,
        capakey=query.capakey,
        latitude=query.latitude,
        longitude=query.longitude,
        address_id=query.address_id,
    )
    when = query.valuation_date or timezone.localdate()
    version, results = value_targets([Target(subject=subject, valuation_date=when, facts=facts)])
    outcome = results[0]
    if isinstance(outcome, ValuationInputError):
        raise outcome
    valuation = _store(
        query=query,
        subject=subject,
        result=outcome,
        channel=channel,
        user=user,
        version=version,
        vintages=data_vintages(),
    )
    valuation.save()
    return valuation


@dataclass
class BatchItemOutcome:
    valuation: Valuation | None = None
    error: dict[str, str] | None = None


def valuations_create_many(
    *, queries: list[ValuationQuery], channel: str = Channel.BATCH, user: Any = None
) -> list[BatchItemOutcome]:
    """Value many properties in one pass; an item that fails carries its own error, the others succeed."""
    outcomes = [BatchItemOutcome() for _ in queries]
    targets: list[Target] = []
    positions: list[int] = []
    subjects: list[Subject] = []
    today = timezone.localdate()
    located = subjects_locate_many(
        [
            {
                "address": q.address,
                "capakey": q.capakey,
                "latitude": q.latitude,
                "longitude": q.longitude,
                "address_id": q.address_id,
            }
            for q in queries
        ]
    )
    for i, (query, subject) in enumerate(zip(queries, located, strict=True)):
        try:
            facts = facts_clean(query.facts)
            if isinstance(subject, LocateError):
                raise subject
        except (LocateError, ValuationInputError) as exc:
            outcomes[i].error = {"field": exc.field, "message": str(exc)}
            continue
        targets.append(Target(subject=subject, valuation_date=query.valuation_date or today, facts=facts))
        positions.append(i)
        subjects.append(subject)
    if not targets:
        return outcomes
    version, results = value_targets(targets)
    vintages = data_vintages()
    to_save = []
    for position, subject, outcome in zip(positions, subjects, results, strict=True):
        if isinstance(outcome, ValuationInputError):
            outcomes[position].error = {"field": outcome.field, "message": str(outcome)}
            continue
        valuation = _store(
            query=queries[position],
            subject=subject,
            result=outcome,
            channel=channel,
            user=user,
            version=version,
            vintages=vintages,
        )
        outcomes[position].valuation = valuation
        to_save.append(valuation)
    valuations_store(to_save)
    return outcomes


_STORED = (
    "id",
    "created_at",
    "channel",
    "created_by_id",
    "query",
    "inputs",
    "valuation_date",
    "parcel_id",
    "point",
    "model_version_id",
    "price_eur",
    "low_eur",
    "high_eur",
    "coverage",
    "result",
)


def valuations_store(valuations: list[Valuation]) -> None:
    """Store many valuations by COPY (ids drawn from the table's sequence first), in one transaction."""
    if not valuations:
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "select nextval(pg_get_serial_sequence('valuation_valuation', 'id')) from generate_series(1, %s)",
            [len(valuations)],
        )
        ids = [row[0] for row in cursor.fetchall()]
        now = timezone.now()
        for valuation, pk in zip(valuations, ids, strict=True):
            valuation.pk, valuation.created_at = pk, now
        copy_rows(
            "valuation_valuation",
            _STORED,
            (
                (
                    v.pk,
                    v.created_at,
                    v.channel,
                    v.created_by_id,
                    v.query,
                    json.dumps(v.inputs),
                    v.valuation_date,
                    v.parcel_id,
                    f"SRID={v.point.srid};POINT({v.point.x!r} {v.point.y!r})",
                    v.model_version_id,
                    v.price_eur,
                    v.low_eur,
                    v.high_eur,
                    v.coverage,
                    json.dumps(v.result),
                )
                for v in valuations
            ),
        )
    for valuation in valuations:
        valuation._state.adding, valuation._state.db = False, "default"
