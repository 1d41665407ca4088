"""Find the property a valuation is about: from an address, a CaPaKey or coordinates.

Returns a :class:`Subject` (point in EPSG:31370, parcel and address where known) or raises
:class:`LocateError` with a sentence for a person and, where possible, suggestions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

from django.contrib.gis.db.models.functions import PointOnSurface
from django.contrib.gis.geos import Point
from django.contrib.postgres.lookups import Unaccent
from django.db.models import F, FloatField, Func, Q, QuerySet, Value
from django.db.models.functions import Lower

from opendata.capakey import InvalidCapaKey, normalise_capakey
from opendata.models import Address, Building, Parcel


class LocateError(ValueError):
    """The property cannot be found; ``field`` names the input at fault, ``suggestions`` may help."""

    def __init__(self, message: str, *, field: str = "query", suggestions: list[str] | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.suggestions = suggestions or []


@dataclass
class Subject:
    point: Point
    parcel: Parcel | None = None
    address: Address | None = None
    label: str = ""
    notes: list[str] = field(default_factory=list)
    buildings: list[BuildingFacts] | None = None  # as located (None: read them from the parcel)


_CAPAKEY_HINT = re.compile(r"^\s*\d{5}\s*[A-Za-z]")
_POSTCODE = re.compile(r"^\d{4}$")
_HOUSE_NUMBER = re.compile(r"^\d+[A-Za-z]?(?:-\d+[A-Za-z]?)?$")
_BOX = re.compile(r"^(?:bus|bte|boîte|boite|box|b)\.?$", re.IGNORECASE)


def _parcels() -> QuerySet[Parcel]:
    """Parcels as a valuation reads them: the point on their surface instead of their outline (building
    thousands of GEOS polygons costs more than valuing the houses). Every way of finding a parcel ends
    in :func:`_attach`, so a parcel's point and facts are the same whichever way it was found."""
    return Parcel.objects.defer("geometry").annotate(surface_point=PointOnSurface("geometry"))


class BuildingFacts(NamedTuple):
    """What a valuation reads of a building (the footprint's area computed by PostGIS)."""

    pk: int
    source: str
    building_type: str
    height_m: float | None
    storeys: int | None
    footprint_area_m2: float


@dataclass
class ParcelFacts:
    """What a valuation reads of a parcel besides its own row: its buildings and its first address."""

    buildings: list[BuildingFacts] = field(default_factory=list)
    first_address: Address | None = None


def _attach(parcels: list[Parcel]) -> dict[int, ParcelFacts]:
    """The buildings (:class:`BuildingFacts`) and first address (lowest house number) of each parcel,
    in two queries for all of them. Django's prefetch_related would do the same with one queryset per
    parcel and model instances, most of a batch's locating time."""
    found = {p.pk: ParcelFacts() for p in parcels}
    if not found:
        return found
    buildings = (
        Building.objects.filter(parcel_id__in_array=list(found))
        .annotate(footprint_area_m2=Func("footprint", function="ST_Area", output_field=FloatField()))
        .order_by("pk")
        .values_list("parcel_id", *BuildingFacts._fields)
    )
    for parcel_id, *facts in buildings:
        found[parcel_id].buildings.append(BuildingFacts(*facts))
    for address in Address.objects.filter(parcel_id__in_array=list(found)).select_related("municipality"):
        entry = found[int(address.parcel_id or 0)]
        if entry.first_address is None or _address_order(address) < _address_order(entry.first_address):
            entry.first_address = address
    return found


def _address_order(address: Address) -> tuple[tuple[int, str], str, int]:
    return _number_key(address.house_number), address.box or "", address.pk


def _subject_from_parcel(parcel: Parcel, label: str, facts: ParcelFacts) -> Subject:
    address = facts.first_address
    return Subject(
        point=cast(Any, parcel).surface_point,  # annotated by _parcels()
        parcel=parcel,
        address=address,
        label=address.label() if address else label,
        buildings=facts.buildings,
    )


def subject_from_coordinates(*, latitude: float, longitude: float) -> Subject:
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise LocateError(
            "Latitude must lie between -90 and 90 and longitude between -180 and 180.", field="latitude"
        )
    point = Point(longitude, latitude, srid=4326)
    point.transform(31370)
    parcel = _parcels().filter(geometry__contains=point).order_by("pk").first()
    facts = _attach([parcel])[parcel.pk] if parcel is not None else ParcelFacts()
    address = facts.first_address
    label = address.label() if address else f"{latitude:.6f}, {longitude:.6f}"
    buildings = facts.buildings if parcel is not None else None
    return Subject(point=point, parcel=parcel, address=address, label=label, buildings=buildings)


def subject_from_capakey(text: str) -> Subject:
    try:
        capakey = normalise_capakey(text)
    except InvalidCapaKey as exc:
        raise LocateError(str(exc), field="capakey") from exc
    parcel = _parcels().filter(capakey=capakey).first()
    if parcel is None:
        raise LocateError(
            f"No parcel {capakey} is known here. Check the key, or search by address.", field="capakey"
        )
    return _subject_from_parcel(parcel, capakey, _attach([parcel])[parcel.pk])


def subject_from_address_id(address_id: int) -> Subject:
    address = Address.objects.select_related("parcel", "municipality").filter(pk=address_id).first()
    if address is None:
        raise LocateError(f"Address {address_id} does not exist.", field="address_id")
    return _subject_from_address(address, _attach([address.parcel] if address.parcel else []))


def _subject_from_address(address: Address, facts: dict[int, ParcelFacts]) -> Subject:
    notes = []
    if address.parcel is None:
        notes.append("This address is not linked to a cadastral parcel; parcel facts are unknown.")
    found = facts.get(address.parcel.pk) if address.parcel is not None else None
    return Subject(
        point=address.point,
        parcel=address.parcel,
        address=address,
        label=address.label(),
        notes=notes,
        buildings=found.buildings if found is not None else None,
    )


def parse_address(text: str) -> tuple[str, str | None, str | None, str | None]:
    """Split 'Kerkstraat 10 bus 2, 9999 Demodorp' into (street, house number, box, postcode)."""
    tokens = [t for t in re.split(r"[\s,]+", text.strip()) if t]
    street: list[str] = []
    number = box = postcode = None
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if _POSTCODE.match(token) and number is not None:
            postcode = token
        elif number is None and _HOUSE_NUMBER.match(token) and street:
            number = token.upper()
        elif number is not None and _BOX.match(token) and i + 1 < len(tokens):
            box = tokens[i + 1]
            i += 1
        elif number is None:
            street.append(token)
        i += 1
    return " ".join(street), number, box, postcode


def _street_matches(street: str) -> QuerySet[Address]:
    wanted = Unaccent(Lower(Value(street)))
    return Address.objects.annotate(
        s_nl=Unaccent(Lower(F("street_nl"))), s_fr=Unaccent(Lower(F("street_fr")))
    ).filter(Q(s_nl=wanted) | Q(s_fr=wanted))


def subject_from_address(text: str) -> Subject:
    street, number, box, postcode = parse_address(text)
    if not street:
        raise LocateError("Type a street name and a house number, e.g. 'Kerkstraat 10, 9999 Demodorp'.")
    if number is None:
        raise LocateError(f"Add the house number to '{street}', e.g. '{street} 10'.", field="address")
    candidates = _street_matches(street).select_related("parcel", "municipality")
    if postcode:
        candidates = candidates.filter(postcode=postcode)
    same_number = candidates.filter(house_number__iexact=number)
    if box:
        same_number = same_number.filter(box__iexact=box)
    found = list(same_number.order_by("box")[:2])
    if found:
        return _subject_from_address(found[0], _attach([found[0].parcel] if found[0].parcel else []))
    if candidates.exists():
        numbers = sorted(set(candidates.values_list("house_number", flat=True)[:500]), key=_number_key)
        near = sorted(numbers, key=lambda n: abs(_number_key(n)[0] - _number_key(number)[0]))[:5]
        raise LocateError(
            f"'{street}' has no house number {number}"
            + (f" in {postcode}" if postcode else "")
            + ". Nearby numbers on that street: "
            + ", ".join(sorted(near, key=_number_key))
            + ".",
            field="address",
            suggestions=[f"{street} {n}" for n in sorted(near, key=_number_key)],
        )
    raise LocateError(
        f"No street called '{street}' is known here"
        + (f" in {postcode}" if postcode else "")
        + ". Check the spelling or try the name in the other language.",
        field="address",
    )


def _number_key(number: str) -> tuple[int, str]:
    match = re.match(r"(\d+)(.*)", number)
    return (int(match.group(1)), match.group(2)) if match else (0, number)


def subject_locate(
    *,
    address: str | None = None,
    capakey: str | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
    address_id: int | None = None,
) -> Subject:
    """Resolve exactly one way of naming the property."""
    if address_id is not None:
        return subject_from_address_id(address_id)
    if capakey:
        return subject_from_capakey(capakey)
    if latitude is not None or longitude is not None:
        if latitude is None or longitude is None:
            raise LocateError(
                "Give both latitude and longitude.", field="latitude" if latitude is None else "longitude"
            )
        return subject_from_coordinates(latitude=latitude, longitude=longitude)
    if address:
        if _CAPAKEY_HINT.match(address):
            try:
                return subject_from_capakey(address)
            except LocateError:
                pass
        return subject_from_address(address)
    raise LocateError("Give an address, a CaPaKey or coordinates.")


def subjects_locate_many(queries: list[dict[str, object]]) -> list[Subject | LocateError]:
    """Resolve many queries; CaPaKeys and address ids in a few queries in all, the rest one by one."""
    out: list[Subject | LocateError | None] = [None] * len(queries)
    by_key: dict[str, list[int]] = {}
    by_address: dict[int, list[int]] = {}
    for i, q in enumerate(queries):
        if q.get("address_id") is not None:
            by_address.setdefault(int(q["address_id"]), []).append(i)  # type: ignore[call-overload]
        elif q.get("capakey"):
            try:
                by_key.setdefault(normalise_capakey(str(q["capakey"])), []).append(i)
            except InvalidCapaKey as exc:
                out[i] = LocateError(str(exc), field="capakey")
    if by_key:
        parcels = {p.capakey: p for p in _parcels().filter(capakey__in_array=list(by_key))}
        facts = _attach(list(parcels.values()))
        for key, positions in by_key.items():
            parcel = parcels.get(key)
            for i in positions:
                if parcel is None:
                    out[i] = LocateError(
                        f"No parcel {key} is known here. Check the key, or search by address.",
                        field="capakey",
                    )
                else:
                    out[i] = _subject_from_parcel(parcel, key, facts[parcel.pk])
    if by_address:
        addresses = {
            a.pk: a
            for a in Address.objects.filter(pk__in_array=list(by_address)).select_related(
                "parcel", "municipality"
            )
        }
        address_facts = _attach([a.parcel for a in addresses.values() if a.parcel])
        for address_id, positions in by_address.items():
            for i in positions:
                found = addresses.get(address_id)
                out[i] = (
                    _subject_from_address(found, address_facts)
                    if found
                    else LocateError(f"Address {address_id} does not exist.", field="address_id")
                )
    for i, q in enumerate(queries):
        if out[i] is None:
            try:
                out[i] = subject_locate(**q)  # type: ignore[arg-type]
            except LocateError as exc:
                out[i] = exc
    return [o for o in out if o is not None]
