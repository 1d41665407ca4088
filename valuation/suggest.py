"""Suggestions for the search box, as the notary types.

An address: the street in Dutch or French (accents and case ignored, small typos tolerated through
pg_trgm on ``notary_fold(street)``, see opendata migration 0009), then the house number and box, and
after a comma a postcode or a municipality. Or a CaPaKey, as people type it (``44024A0034``,
``44024 a 34``): parcels whose key starts so. Every query is parameterised.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import asdict, dataclass
from typing import Any

from django.db import connection
from django.utils.translation import gettext as _

from opendata.capakey import InvalidCapaKey, normalise_capakey
from opendata.models import Address, Parcel
from valuation.locate import parse_address

LIMIT = 8
_CAPAKEY_START = re.compile(r"^\s*\d{5}\s*[A-Za-z]?\s*\d*")
_CAPAKEY_TYPED = re.compile(r"^\d{5}")


@dataclass
class Suggestion:
    label: str
    kind: str  # "address", "street" or "parcel"
    address_id: int | None = None
    capakey: str | None = None
    fill: str = ""  # what to put in the box when picked (a street: its name and a space)
    note: str = ""


def suggest(text: str, language: str = "nl") -> list[dict[str, Any]]:
    """Up to :data:`LIMIT` suggestions for ``text`` (empty below two characters)."""
    # Control characters (a NUL byte, which PostgreSQL refuses in text) are never part of an address.
    text = " ".join("".join(c for c in text if c.isprintable() or c.isspace()).split())[:200]
    if len(text) < 2:
        return []
    if _CAPAKEY_TYPED.match(text):
        return [asdict(s) for s in _parcels(text)]
    head, _, place = text.partition(",")
    street, number, box, postcode = parse_address(head)
    place = place.strip()
    if not postcode and re.fullmatch(r"\d{4}", place.split(" ")[0] if place else ""):
        postcode, place = place.split(" ")[0], " ".join(place.split(" ")[1:])
    if len(street) < 2:
        return []
    streets = _streets(street, postcode, place)
    if number is None:
        return [
            asdict(
                Suggestion(label=f"{name}, {code} {town}".strip(), kind="street", fill=f"{name} ", note="")
            )
            for name, code, town, _score in streets
        ]
    return [asdict(s) for s in _addresses(streets, number, box, language)]


def _streets(street: str, postcode: str | None, place: str) -> list[tuple[str, str, str, float]]:
    """(street name as written, postcode, municipality, score) of the best matching streets."""
    sql = """
        WITH q AS (SELECT notary_fold(%(street)s) AS s, notary_fold(%(place)s) AS place)
        SELECT name, postcode, town, max(score) AS score FROM (
            SELECT a.street_nl AS name, a.postcode, coalesce(m.name_nl, m.name_fr, '') AS town,
                   (notary_fold(a.street_nl) LIKE q.s || '%%')::int
                   + similarity(notary_fold(a.street_nl), q.s) AS score, m.name_nl, m.name_fr
            FROM opendata_address a JOIN opendata_municipality m ON m.id = a.municipality_id, q
            WHERE a.street_nl <> ''
              AND (notary_fold(a.street_nl) LIKE q.s || '%%' OR notary_fold(a.street_nl) %% q.s)
            UNION ALL
            SELECT a.street_fr, a.postcode, coalesce(m.name_fr, m.name_nl, ''),
                   (notary_fold(a.street_fr) LIKE q.s || '%%')::int
                   + similarity(notary_fold(a.street_fr), q.s), m.name_nl, m.name_fr
            FROM opendata_address a JOIN opendata_municipality m ON m.id = a.municipality_id, q
            WHERE a.street_fr <> ''
              AND (notary_fold(a.street_fr) LIKE q.s || '%%' OR notary_fold(a.street_fr) %% q.s)
        ) found, q
        WHERE (%(postcode)s::text IS NULL OR postcode = %(postcode)s)
          AND (q.place = '' OR notary_fold(coalesce(name_nl, '')) LIKE q.place || '%%'
               OR notary_fold(coalesce(name_fr, '')) LIKE q.place || '%%')
        GROUP BY name, postcode, town
        ORDER BY score DESC, name, postcode
        LIMIT %(limit)s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, {"street": street, "place": place, "postcode": postcode, "limit": LIMIT})
        return [(name, code, town, float(score)) for name, code, town, score in cursor.fetchall()]


def _addresses(
    streets: list[tuple[str, str, str, float]], number: str, box: str | None, language: str
) -> list[Suggestion]:
    """The addresses with that house number (or starting so) on the best streets, best street first."""
    out: list[Suggestion] = []
    for name, code, _town, _score in streets[:3]:
        found = (
            Address.objects.select_related("municipality")
            .filter(postcode=code, house_number__istartswith=number)
            .filter(**({"box__istartswith": box} if box else {}))
        )
        found = found.filter(street_nl=name) | found.filter(street_fr=name)
        ranked = sorted(found[:50], key=lambda a: (a.house_number.upper() != number.upper(), _key(a)))
        for address in ranked:
            out.append(
                Suggestion(
                    label=address.label(language),
                    kind="address",
                    address_id=address.pk,
                    capakey=None,
                    note="" if address.parcel_id else _("no parcel: enter the living area"),
                )
            )
            if len(out) >= LIMIT:
                return out
    return out


def _key(address: Address) -> tuple[int, str, str]:
    match = re.match(r"(\d+)(.*)", address.house_number)
    number = int(match.group(1)) if match else 0
    return number, match.group(2) if match else address.house_number, address.box


def _parcels(text: str) -> list[Suggestion]:
    """Parcels whose CaPaKey starts as typed: case and spaces forgiven; a radical typed after a space
    (``99001 a 34``) is the four-digit one (``99001A0034``); a whole key in any usual spelling."""
    prefix = re.sub(r"\s+", "", text).upper()
    spaced = re.fullmatch(r"\s*(\d{5})\s*([A-Za-z])\s+(\d{1,4})\s*", text)
    if spaced:
        prefix = f"{spaced.group(1)}{spaced.group(2).upper()}{int(spaced.group(3)):04d}"
    elif "/" in text:
        with contextlib.suppress(InvalidCapaKey):  # else the prefix as typed
            prefix = normalise_capakey(text)
    parcels = Parcel.objects.filter(capakey__startswith=prefix).order_by("capakey").only("capakey")[:LIMIT]
    return [Suggestion(label=p.capakey, kind="parcel", capakey=p.capakey) for p in parcels]
