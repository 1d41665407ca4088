import pytest
from django.core.exceptions import ValidationError

from opendata.capakey import InvalidCapaKey, is_canonical_capakey, normalise_capakey, parse_capakey
from opendata.models import validate_capakey


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("44024A0034/00B002", "44024A0034/00B002"),
        ("11111A0001/00_000", "11111A0001/00_000"),
        ("44024a0034/00b002", "44024A0034/00B002"),
        ("  44024 A 0034 / 00 B 002 ", "44024A0034/00B002"),
        ("44024-A-0034/00-B-002", "44024A0034/00B002"),
        ("44024A003400B002", "44024A0034/00B002"),
        ("44024a003400b002", "44024A0034/00B002"),
        ("11111A000100000", "11111A0001/00_000"),
        ("11111A0001/00000", "11111A0001/00_000"),
        ("44024A34/0B2", "44024A0034/00B002"),
    ],
)
def test_accepts_the_spellings_people_type(typed: str, canonical: str) -> None:
    assert normalise_capakey(typed) == canonical
    assert is_canonical_capakey(canonical)


def test_parts_are_named() -> None:
    key = parse_capakey("44024A0034/00B002")
    assert (key.division, key.section, key.radical, key.bis, key.exponent_letter, key.exponent_number) == (
        "44024",
        "A",
        "0034",
        "00",
        "B",
        "002",
    )


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("", "empty"),
        ("4402A0034/00B002", "5-digit cadastral division"),
        ("440241034/00B002", "section letter"),
        ("44024A34B2", "without a slash"),
        ("44024A0034/00B002/1", "more than one slash"),
        ("44024A00345/00B002", "not a CaPaKey"),
        ("44024A0034/00BB002", "not a CaPaKey"),
        ("44024A34/2", "not a CaPaKey"),
    ],
)
def test_refuses_what_is_not_a_capakey_saying_why(typed: str, reason: str) -> None:
    with pytest.raises(InvalidCapaKey, match=reason):
        normalise_capakey(typed)


def test_model_validator_wants_the_canonical_form() -> None:
    validate_capakey("44024A0034/00B002")
    with pytest.raises(ValidationError, match="canonical form: 44024A0034/00B002"):
        validate_capakey("44024a0034/00b002")
