"""Numbers as each language writes them: money, areas, percentages."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.translation import get_language

register = template.Library()

NBSP, NNBSP = "\u00a0", "\u202f"


def _grouped(value: float, decimals: int = 0) -> str:
    """Digits grouped the way the active language groups them (nl 397.000, fr 397 000, en 397,000)."""
    language = (get_language() or "nl")[:2]
    text = f"{value:,.{decimals}f}"  # 397,000.5
    if language == "fr":
        return text.replace(",", NNBSP).replace(".", ",")
    if language == "nl":
        return text.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return text


@register.filter
def money(value: Any) -> str:
    """EUR as each language writes it: nl '€ 397.000', fr '397 000 €', en '€397,000'."""
    if value is None or value == "":
        return "\u2013"
    amount = round(float(value))
    language = (get_language() or "nl")[:2]
    sign = "\u2212" if amount < 0 else ""
    digits = _grouped(abs(amount))
    if language == "fr":
        return f"{sign}{digits}{NBSP}€"
    if language == "nl":
        return f"{sign}€{NBSP}{digits}"
    return f"{sign}€{digits}"


@register.filter
def signed_money(value: Any) -> str:
    amount = round(float(value or 0))
    return ("+" if amount > 0 else "") + money(amount)


@register.filter
def number(value: Any, decimals: int = 0) -> str:
    if value is None or value == "":
        return "\u2013"
    try:
        return _grouped(float(value), int(decimals))
    except (TypeError, ValueError):
        return str(value)


@register.filter
def percent(value: Any, decimals: int = 0) -> str:
    """0.8 -> '80%' ('80 %' in French)."""
    if value is None:
        return "\u2013"
    text = _grouped(100 * float(value), int(decimals))
    return f"{text}{NNBSP}%" if (get_language() or "")[:2] == "fr" else f"{text}%"


@register.filter
def words(value: Any) -> Any:
    """A code (house, open, good, ...) in the notary's language."""
    from valuation.presenters import value_words

    return value_words(value) if isinstance(value, str) else value
