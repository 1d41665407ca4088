"""CaPaKey: the national cadastral parcel key of the FPS Finance (CadGIS).

The canonical form has 17 characters, ``DDDDDSRRRR/BBEPPP``:

- ``DDDDD`` cadastral division, 5 digits (e.g. ``44024``);
- ``S`` section, one letter;
- ``RRRR`` radical, 4 digits;
- ``/`` separator;
- ``BB`` bis number, 2 digits;
- ``E`` exponent letter, ``_`` when the parcel has none;
- ``PPP`` exponent number, 3 digits.

Examples: ``44024A0034/00B002``, ``11111A0001/00_000`` (CadGIS data specification 2018, in
../shared/data/belgium/reference). People type keys in lower case, with spaces, dashes or dots, without
the slash, without the ``_`` or with unpadded numbers around a slash: :func:`normalise_capakey`
accepts those spellings and returns the canonical form, or raises :class:`InvalidCapaKey` saying
what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SEPARATORS = re.compile(r"[\s.\-]+")
# With the slash the numbers around it may be unpadded: "44024a34/0b2".
_WITH_SLASH = re.compile(r"^(\d{5})([A-Z])(\d{1,4})/(\d{1,2})([A-Z_]?)(\d{1,3})$")
# Without the slash every part must be at full width, otherwise the split would be a guess.
_WITHOUT_SLASH = re.compile(r"^(\d{5})([A-Z])(\d{4})(\d{2})([A-Z_]?)(\d{3})$")
CANONICAL = re.compile(r"^\d{5}[A-Z]\d{4}/\d{2}[A-Z_]\d{3}$")


class InvalidCapaKey(ValueError):
    """The text cannot be read as a CaPaKey; the message says why, in a sentence for a person."""


@dataclass(frozen=True, slots=True)
class CapaKey:
    division: str
    section: str
    radical: str
    bis: str
    exponent_letter: str
    exponent_number: str

    def __str__(self) -> str:
        return (
            f"{self.division}{self.section}{self.radical}/"
            f"{self.bis}{self.exponent_letter}{self.exponent_number}"
        )

    @property
    def division_code(self) -> str:
        """The cadastral division (5 digits); its first digits are usually the NIS code's."""
        return self.division


def parse_capakey(text: str) -> CapaKey:
    """Read a CaPaKey as people type it; raise :class:`InvalidCapaKey` when it cannot be one."""
    if not isinstance(text, str):
        raise InvalidCapaKey("A CaPaKey is text such as 44024A0034/00B002.")
    compact = _SEPARATORS.sub("", text.strip().upper())
    if not compact:
        raise InvalidCapaKey("The CaPaKey is empty; it looks like 44024A0034/00B002.")
    match = _WITH_SLASH.match(compact) if "/" in compact else _WITHOUT_SLASH.match(compact)
    if match is None:
        raise InvalidCapaKey(_explain(compact))
    division, section, radical, bis, letter, number = match.groups()
    return CapaKey(
        division=division,
        section=section,
        radical=radical.zfill(4),
        bis=bis.zfill(2),
        exponent_letter=letter or "_",
        exponent_number=number.zfill(3),
    )


def normalise_capakey(text: str) -> str:
    """Return the canonical 17-character CaPaKey for any accepted spelling of it."""
    return str(parse_capakey(text))


def is_canonical_capakey(text: str) -> bool:
    return bool(CANONICAL.match(text))


def _explain(compact: str) -> str:
    example = "it looks like 44024A0034/00B002 (division, section letter, radical/bis, exponent)"
    if not compact[:5].isdigit() or len(compact) < 5:
        return f"{compact!r} is not a CaPaKey: it must start with the 5-digit cadastral division; {example}."
    if len(compact) < 6 or not compact[5].isalpha():
        return f"{compact!r} is not a CaPaKey: the 6th character must be the section letter; {example}."
    if compact.count("/") > 1:
        return f"{compact!r} is not a CaPaKey: it has more than one slash; {example}."
    if "/" not in compact:
        return (
            f"{compact!r} is not a CaPaKey: without a slash it needs every part at full width "
            f"(radical 4 digits, bis 2, exponent letter or _, exponent 3 digits); {example}."
        )
    return f"{compact!r} is not a CaPaKey; {example}."
