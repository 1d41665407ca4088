"""What the result page shows, computed from a stored valuation (its ``result`` as it was computed):
the facts with their sources, the waterfall of the explanation, the distribution bars, the map layers.
Plain data for the templates; labels in the notary's language."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from features import registry
from valuation.engine import feature_label, geometry_to_wgs84
from valuation.models import Valuation

TOP_DRIVERS = 8

# Facts that are not model features (or are shown under another name) and their labels.
_FACT_LABELS = {
    "building_footprint_m2": lambda: _("Building footprint (m²)"),
    "property_type": lambda: _("Property type"),
    "condition": lambda: _("Condition"),
}
_VALUE_WORDS = {
    "house": lambda: _("house"),
    "apartment": lambda: _("apartment"),
    "other": lambda: _("other"),
    "open": lambda: _("open (detached)"),
    "half_open": lambda: _("half-open (semi-detached)"),
    "closed": lambda: _("closed (terraced)"),
    "unknown": lambda: _("unknown"),
    "to_renovate": lambda: _("to renovate"),
    "average": lambda: _("average"),
    "good": lambda: _("good"),
    "as_new": lambda: _("as new"),
}


def label_of(name: str, language: str) -> str:
    if name in _FACT_LABELS:
        return str(_FACT_LABELS[name]())
    try:
        return feature_label(name, language)
    except KeyError:
        return name.replace("_", " ")


def explanation_of(name: str, language: str) -> str:
    try:
        return registry.get(name).explanation(language)
    except KeyError:
        return ""


_SOURCE_WORDS = {
    "cadastral parcel": lambda: _("cadastral parcel"),
    "heights": lambda: _("building heights (DSM - DTM)"),
    "address": lambda: _("address (box number)"),
    "default": lambda: _("default"),
    "estimated: footprint x storeys x 0.8": lambda: _("estimated: footprint x storeys x 0.8"),
}


_NOTES = {
    "This address is not linked to a cadastral parcel; parcel facts are unknown.": lambda: _(
        "This address is not linked to a cadastral parcel; parcel facts are unknown."
    ),
}


def notes(result: dict[str, Any]) -> list[str]:
    """The notes about the property (why facts are missing), in the notary's language."""
    return [str(_NOTES[n]()) if n in _NOTES else n for n in result.get("subject", {}).get("notes", [])]


def source_words(source: str) -> str:
    """Where a fact comes from, in the notary's language."""
    if source in _SOURCE_WORDS:
        return str(_SOURCE_WORDS[source]())
    building = re.fullmatch(r"building \((.+)\)", source)
    if building:
        return _("building (%(source)s)") % {"source": building.group(1)}
    return source


def value_words(value: Any, unit: str = "") -> Any:
    """A value as the page shows it: words for codes, numbers grouped per language, with a unit."""
    from valuation.templatetags.notary import number

    if isinstance(value, str) and value in _VALUE_WORDS:
        return str(_VALUE_WORDS[value]())
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        decimals = 0 if float(value).is_integer() or abs(value) >= 100 else 1
        text = number(value, decimals)
        return f"{text}\u00a0{unit}" if unit else text
    return value


@dataclass
class FactRow:
    name: str
    label: str
    value: Any
    source: str
    by_notary: bool


def fact_rows(result: dict[str, Any], language: str) -> list[FactRow]:
    rows = []
    for name, fact in result.get("facts", {}).items():
        source = str(fact.get("source", ""))
        rows.append(
            FactRow(
                name=name,
                label=label_of(name, language),
                value=value_words(fact.get("value"), _fact_unit(name)),
                source=_("you (the notary)") if source == "notary" else source_words(source),
                by_notary=source == "notary",
            )
        )
    return sorted(rows, key=lambda r: (not r.by_notary, r.label))


def _fact_unit(name: str) -> str:
    if name.endswith("_m2"):
        return "m²"
    try:
        return _unit(registry.get(name).unit)
    except KeyError:
        return ""


@dataclass
class FeatureRow:
    label: str
    value: Any
    unit: str
    source: str
    group: str


def open_data_rows(result: dict[str, Any], language: str) -> list[FeatureRow]:
    """The open-data features the model read for this property (those with a value)."""
    rows = []
    for item in result.get("explanation", {}).get("contributions", []):
        try:
            feature = registry.get(item["feature"])
        except KeyError:
            continue
        if feature.group not in registry.OPEN_DATA_GROUPS or item.get("value") in (None, ""):
            continue
        rows.append(
            FeatureRow(
                label=feature.label(language),
                value=value_words(item["value"], _unit(feature.unit)),
                unit=feature.unit,
                source=feature.source,
                group=feature.group,
            )
        )
    return sorted(rows, key=lambda r: (r.group, r.label))


def _unit(unit: str) -> str:
    """Units worth showing next to a value (counts and ratios go without)."""
    return unit if unit in {"m", "m²", "m³", "EUR", "EUR/m²", "kWh/m²", "%", "/km²", "°"} else ""


@dataclass
class Step:
    label: str
    explanation: str
    amount: int
    start: int
    end: int
    left: float  # percent of the chart width
    width: float
    kind: str  # "base", "up", "down", "price"
    value: Any = None


def waterfall(result: dict[str, Any], language: str, top: int = TOP_DRIVERS) -> list[Step]:
    """From the base value to the price: the ``top`` largest contributions, then the rest together."""
    explanation = result.get("explanation", {})
    base = int(explanation.get("base_eur", 0))
    items = sorted(explanation.get("contributions", []), key=lambda c: -abs(c["contribution_eur"]))
    shown, rest = items[:top], items[top:]
    steps: list[tuple[str, str, int, Any]] = [
        (
            label_of(c["feature"], language),
            explanation_of(c["feature"], language),
            c["contribution_eur"],
            c.get("value"),
        )
        for c in shown
        if c["contribution_eur"]
    ]
    others = sum(c["contribution_eur"] for c in rest)
    if rest and others:
        steps.append(
            (
                ngettext("%(count)d other feature", "%(count)d other features together", len(rest))
                % {"count": len(rest)},
                _("The smaller contributions of the remaining features."),
                others,
                None,
            )
        )
    running = [base]
    for _label, _text, amount, _value in steps:
        running.append(running[-1] + amount)
    # The axis starts a little below the lowest running total (not at zero): the contributions, a few
    # percent of the price each, stay visible; the base and the price bars start at the axis.
    price = int(result.get("price_eur", running[-1]))
    lowest, high = min([*running, price]), max([*running, price])
    low = max(0.0, lowest - 0.25 * max(high - lowest, 0.05 * high))
    span = max(high - low, 1)

    def geometry(a: int, b: int) -> tuple[float, float]:
        left = 100.0 * (min(a, b) - low) / span
        return round(left, 2), round(max(100.0 * abs(b - a) / span, 0.4), 2)

    out = [
        Step(
            str(registry.BASE_VALUE_LABELS.get(language, registry.BASE_VALUE_LABELS["en"])),
            _("The model's price for a typical property, before what sets this one apart."),
            base,
            0,
            base,
            *geometry(0, base),
            kind="base",
        )
    ]
    for (label, text, amount, value), start, end in zip(steps, running[:-1], running[1:], strict=True):
        out.append(
            Step(
                label,
                text,
                amount,
                start,
                end,
                *geometry(start, end),
                kind="up" if amount > 0 else "down",
                value=value_words(value),
            )
        )
    out.append(Step(_("Indicative price"), "", price, 0, price, *geometry(int(low), price), kind="price"))
    return out


@dataclass
class Band:
    label: str
    count: int
    percent: float
    width: float
    contains_price: bool


def distribution(result: dict[str, Any]) -> tuple[list[Band], int]:
    from valuation.templatetags.notary import money

    dist = result.get("distribution", {})
    bands = dist.get("bands", [])
    most = max([b["count"] for b in bands] + [1])
    out = []
    for b in bands:
        low, high = b.get("low_eur"), b.get("high_eur")
        if low in (None, 0):
            label = f"< {money(high)}"
        elif high is None:
            label = f"> {money(low)}"
        else:
            label = f"{money(low)} \u2013 {money(high)}"
        out.append(
            Band(label, b["count"], b["percent"], round(100.0 * b["count"] / most, 1), b["contains_price"])
        )
    return out, int(dist.get("count", 0))


def map_layers(valuation: Valuation) -> dict[str, Any]:
    """GeoJSON (WGS84) of the property, its parcel and buildings, and the numbered comparables."""
    result = valuation.result
    features: list[dict[str, Any]] = []
    subject = result.get("subject", {})
    if subject.get("longitude") is not None:
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [subject["longitude"], subject["latitude"]]},
                "properties": {"kind": "property", "label": subject.get("label", "")},
            }
        )
    parcel = valuation.parcel
    if parcel is not None:
        outline = geometry_to_wgs84(parcel.geometry)
        features.append(
            {
                "type": "Feature",
                "geometry": json.loads(outline.geojson),
                "properties": {"kind": "parcel", "label": parcel.capakey},
            }
        )
        for building in parcel.buildings.all():
            footprint = geometry_to_wgs84(building.footprint)
            features.append(
                {
                    "type": "Feature",
                    "geometry": json.loads(footprint.geojson),
                    "properties": {"kind": "building"},
                }
            )
    for c in result.get("comparables", []):
        if c.get("longitude") is None:
            continue
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [c["longitude"], c["latitude"]]},
                "properties": {
                    "kind": "sale",
                    "rank": c["rank"],
                    "label": c.get("address") or c.get("sale_date"),
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}
