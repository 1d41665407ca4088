"""Write services of the valuation app: create valuations (one or many) and store them as shown."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection, transaction
from django.utils import timezone

from config.metrics import VALUATIONS
from opendata.copy import copy_rows
from opendata.models import RunStatus, SourceRefreshRun
from valuation.engine import (
    FACT_NAMES,
    Target,
    ValuationInputError,
    value_compute_parts,
    value_prepare,
    value_targets,
)
from valuation.locate import LocateError, Subject, subject_locate, subjects_locate_many
from valuation.models import Channel, Feedback, Office, Partner, Valuation
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

    NAMING = ("address", "capakey", "latitude", "longitude", "address_id")

    @classmethod
    def naming(
        cls,
        data: Mapping[str, Any],
        *,
        facts: dict[str, Any] | None = None,
        valuation_date: date | None = None,
    ) -> ValuationQuery:
        """The property as ``data`` names it (validated request data, or a stored valuation's inputs),
        with these facts and date."""
        return cls(**{k: data.get(k) for k in cls.NAMING}, facts=facts, valuation_date=valuation_date)

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


def feedback_create(
    *,
    valuation: Valuation,
    verdict: str,
    estimate_eur: int | None = None,
    comment: str = "",
    user: Any = None,
    office: Office | None = None,
    partner: Partner | None = None,
) -> Feedback:
    """Feedback on a valuation, from a notary of ``office`` (web) or from ``partner`` (API)."""
    return Feedback.objects.create(
        valuation=valuation,
        verdict=verdict,
        estimate_eur=estimate_eur,
        comment=comment or "",
        created_by=_user(user),
        office=office,
        partner=partner,
    )


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
    office: Any = None,
    partner: Any = None,
) -> Valuation:
    return Valuation(
        channel=channel,
        created_by=_user(user),
        office=office,
        partner=partner,
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


def _user(user: Any) -> Any:
    return user if user is not None and not isinstance(user, AnonymousUser) else None


def valuation_create(
    *,
    query: ValuationQuery,
    channel: str = Channel.WEB,
    user: AbstractBaseUser | AnonymousUser | None = None,
    office: Office | None = None,
    partner: Partner | None = None,
) -> Valuation:
    """Locate, value and store one property (for ``office`` or ``partner``, if given). Raises
    LocateError or ValuationInputError for bad input."""
    facts = facts_clean(query.facts)
    subject = subject_locate(
        address=query.address,
        capakey=query.capakey,
        latitude=query.latitude,
        longitude=query.longitude,
        address_id=query.address_id,
    )
    when = query.valuation_date or timezone.localdate()
    version, results = value_targets(
        [Target(subject=subject, valuation_date=when, facts=facts)], vintages=data_vintages()
    )
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
        office=office,
        partner=partner,
    )
    valuation.save()
    VALUATIONS.labels(channel).inc()
    return valuation


@dataclass
class BatchItemOutcome:
    valuation: Valuation | None = None
    error: dict[str, str] | None = None


def valuations_create_many(
    *,
    queries: list[ValuationQuery],
    channel: str = Channel.BATCH,
    user: Any = None,
    office: Any = None,
    partner: Any = None,
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
    prepared = value_prepare(targets, vintages=data_vintages())
    for position, result in zip(positions, prepared.results, strict=True):
        if isinstance(result, ValuationInputError):
            outcomes[position].error = {"field": result.field, "message": str(result)}
    # Stored as they are computed, in one transaction: the parent stores the workers' parts while
    # they compute the next ones. A failure stores nothing.
    with transaction.atomic():
        ids = _next_ids(len(prepared.ok))
        now = timezone.now()
        for offset, part in value_compute_parts(prepared, encode=True, caller_load=STORE_LOAD):
            stored = []
            for k, encoded in enumerate(part, start=offset):
                i = prepared.ok[k]
                query, subject, target = queries[positions[i]], subjects[i], targets[i]
                valuation = Valuation.from_db(
                    "default",
                    _SHOWN,
                    (
                        ids[k],
                        now,
                        channel,
                        getattr(_user(user), "pk", None),
                        getattr(office, "pk", None),
                        getattr(partner, "pk", None),
                        query.label()[:300],
                        query.as_inputs(),
                        target.valuation_date,
                        subject.parcel.pk if subject.parcel is not None else None,
                        subject.point,
                        prepared.version.pk,
                        encoded.price_eur,
                        encoded.low_eur,
                        encoded.high_eur,
                        encoded.coverage,
                    ),
                )
                outcomes[positions[i]].valuation = valuation
                stored.append((valuation, encoded.text))
            _copy(stored)
            VALUATIONS.labels(channel).inc(len(stored))
    return outcomes


#: The parent's work to store one result, as a fraction of the work to compute it (measured on the
#: bench town: about 0.19 ms against 1.25 ms); the parent values that much fewer rows itself.
STORE_LOAD = 0.15

_STORED = (
    "id",
    "created_at",
    "channel",
    "created_by_id",
    "office_id",
    "partner_id",
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


# The stored valuation as :func:`valuations_create_many` hands it back: its result (the large JSON)
# deferred, read from the database when asked for, like a row fetched with ``.defer("result")``.
_SHOWN = [name for name in _STORED if name != "result"]


def _next_ids(n: int) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "select nextval(pg_get_serial_sequence('valuation_valuation', 'id')) from generate_series(1, %s)",
            [n],
        )
        return [row[0] for row in cursor.fetchall()]


def _copy(stored: list[tuple[Valuation, str]]) -> None:
    """COPY valuations with their result already as JSON text (in the caller's transaction)."""
    copy_rows(
        "valuation_valuation",
        _STORED,
        (
            (
                v.pk,
                v.created_at,
                v.channel,
                v.created_by_id,
                v.office_id,
                v.partner_id,
                v.query,
                orjson.dumps(v.inputs).decode(),
                v.valuation_date,
                v.parcel_id,
                "SRID={};POINT({!r} {!r})".format(v.point.srid, *v.point.coords[:2]),
                v.model_version_id,
                v.price_eur,
                v.low_eur,
                v.high_eur,
                v.coverage,
                text,
            )
            for v, text in stored
        ),
    )
