"""The feature registry: the single source of truth for every model feature.

Training, prediction, the explanation view, the API and the docs all read this list, so training and
serving cannot drift apart. Each feature has a name (the column), a group, a unit, labels and a
one-line explanation in Dutch, French and English, where its value comes from and how it is computed.

Groups:
- ``property``: facts of the house, from the deed (training) or the notary (valuation), or estimated
  from the building when the notary gives none;
- ``location``: where the house is;
- ``neighbourhood``: computed only from sales dated strictly before the valuation date;
- ``cadastral``, ``height``, ``accessibility``, ``socio_economic``: computed from the open-data layers
  (the open-data issue adds them here; a parcel missing a layer gets unknown values).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

Language = Literal["nl", "fr", "en"]
LANGUAGES: tuple[Language, ...] = ("nl", "fr", "en")
Kind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class Feature:
    name: str
    group: str
    unit: str
    labels: dict[str, str]
    explanations: dict[str, str]
    source: str
    computed: str
    kind: Kind = "numeric"
    notary_input: bool = False
    categories: tuple[str, ...] = field(default_factory=tuple)

    def label(self, language: str = "nl") -> str:
        return self.labels.get(language) or self.labels["en"]

    def explanation(self, language: str = "nl") -> str:
        return self.explanations.get(language) or self.explanations["en"]


def _f(
    name: str,
    group: str,
    unit: str,
    labels: tuple[str, str, str],
    explanations: tuple[str, str, str],
    *,
    source: str,
    computed: str,
    kind: Kind = "numeric",
    notary_input: bool = False,
    categories: tuple[str, ...] = (),
) -> Feature:
    return Feature(
        name=name,
        group=group,
        unit=unit,
        labels=dict(zip(LANGUAGES, labels, strict=True)),
        explanations=dict(zip(LANGUAGES, explanations, strict=True)),
        source=source,
        computed=computed,
        kind=kind,
        notary_input=notary_input,
        categories=categories,
    )


FEATURES: tuple[Feature, ...] = (
    # --- property ------------------------------------------------------------------------------
    _f(
        "property_type",
        "property",
        "",
        ("Type woning", "Type de bien", "Property type"),
        (
            "Huis, appartement of ander goed.",
            "Maison, appartement ou autre bien.",
            "House, apartment or other.",
        ),
        source="deed / notary",
        computed="as given",
        kind="categorical",
        notary_input=True,
        categories=("house", "apartment", "other"),
    ),
    _f(
        "living_area_m2",
        "property",
        "m²",
        ("Bewoonbare oppervlakte", "Surface habitable", "Living area"),
        (
            "De bewoonbare oppervlakte van de woning.",
            "La surface habitable du bien.",
            "The living area of the home.",
        ),
        source="deed / notary; else estimated from the building",
        computed="as given; without it, building footprint x storeys x 0.8",
        notary_input=True,
    ),
    _f(
        "land_area_m2",
        "property",
        "m²",
        ("Perceeloppervlakte", "Superficie du terrain", "Land area"),
        ("De oppervlakte van het perceel.", "La superficie de la parcelle.", "The area of the parcel."),
        source="deed / notary; else the cadastral parcel",
        computed="as given; else the parcel's area",
        notary_input=True,
    ),
    _f(
        "rooms",
        "property",
        "",
        ("Aantal kamers", "Nombre de pièces", "Rooms"),
        ("Het aantal kamers.", "Le nombre de pièces.", "The number of rooms."),
        source="deed / notary",
        computed="as given",
        notary_input=True,
    ),
    _f(
        "bedrooms",
        "property",
        "",
        ("Aantal slaapkamers", "Nombre de chambres", "Bedrooms"),
        ("Het aantal slaapkamers.", "Le nombre de chambres.", "The number of bedrooms."),
        source="deed / notary",
        computed="as given",
        notary_input=True,
    ),
    _f(
        "year_built",
        "property",
        "",
        ("Bouwjaar", "Année de construction", "Year built"),
        (
            "Het jaar waarin de woning gebouwd werd.",
            "L'année de construction du bien.",
            "The year the home was built.",
        ),
        source="deed / notary",
        computed="as given",
        notary_input=True,
    ),
    _f(
        "epc_kwh_m2",
        "property",
        "kWh/m²",
        ("EPC-score", "Score PEB", "EPC score"),
        (
            "Het primair energieverbruik per m² per jaar (EPC).",
            "La consommation d'énergie primaire par m² et par an (PEB).",
            "Primary energy use per m² a year (EPC).",
        ),
        source="deed / notary",
        computed="as given",
        notary_input=True,
    ),
    # --- location ------------------------------------------------------------------------------
    _f(
        "x",
        "location",
        "m",
        ("Ligging oost-west", "Situation est-ouest", "Position east-west"),
        (
            "Waar de woning ligt (Lambert 72, oost-west).",
            "Où se trouve le bien (Lambert 72, est-ouest).",
            "Where the home lies (Lambert 72, east-west).",
        ),
        source="address / parcel",
        computed="X of the point in EPSG:31370",
    ),
    _f(
        "y",
        "location",
        "m",
        ("Ligging noord-zuid", "Situation nord-sud", "Position north-south"),
        (
            "Waar de woning ligt (Lambert 72, noord-zuid).",
            "Où se trouve le bien (Lambert 72, nord-sud).",
            "Where the home lies (Lambert 72, north-south).",
        ),
        source="address / parcel",
        computed="Y of the point in EPSG:31370",
    ),
)


#: Radii of the neighbourhood features; 10 m is in effect "the same building or address".
NEIGHBOURHOOD_RADII_M: tuple[int, ...] = (10, 50, 100, 250, 500, 1000)
COMPARABLES_K = 20


def _neighbourhood_features() -> tuple[Feature, ...]:
    out = []
    for r in NEIGHBOURHOOD_RADII_M:
        where = {"nl": f"binnen {r} m", "fr": f"dans un rayon de {r} m", "en": f"within {r} m"}
        out.append(
            _f(
                f"nbh_ppm2_median_{r}m",
                "neighbourhood",
                "EUR/m²",
                (f"Prijs per m² {where['nl']}", f"Prix au m² {where['fr']}", f"Price per m² {where['en']}"),
                (
                    f"Mediaan van de geïndexeerde verkoopprijzen per m² {where['nl']}, "
                    "vóór de waarderingsdatum.",
                    f"Médiane des prix de vente indexés au m² {where['fr']}, avant la date d'évaluation.",
                    f"Median indexed sale price per m² {where['en']}, before the valuation date.",
                ),
                source="sales",
                computed=f"median indexed price/m² of same-type sales within {r} m dated before the "
                "valuation date",
            )
        )
        out.append(
            _f(
                f"nbh_count_{r}m",
                "neighbourhood",
                "",
                (f"Verkopen {where['nl']}", f"Ventes {where['fr']}", f"Sales {where['en']}"),
                (
                    f"Aantal verkopen van hetzelfde type {where['nl']} vóór de waarderingsdatum.",
                    f"Nombre de ventes du même type {where['fr']} avant la date d'évaluation.",
                    f"Number of same-type sales {where['en']} before the valuation date.",
                ),
                source="sales",
                computed=f"count of same-type sales within {r} m dated before the valuation date",
            )
        )
    k = COMPARABLES_K
    out += [
        _f(
            f"cmp{k}_ppm2_median",
            "neighbourhood",
            "EUR/m²",
            (
                f"Prijs per m² van de {k} dichtste verkopen",
                f"Prix au m² des {k} ventes les plus proches",
                f"Price per m² of the {k} nearest sales",
            ),
            (
                f"Mediaan van de geïndexeerde prijs per m² van de {k} dichtstbijzijnde eerdere verkopen.",
                f"Médiane du prix indexé au m² des {k} ventes antérieures les plus proches.",
                f"Median indexed price per m² of the {k} nearest earlier sales.",
            ),
            source="sales",
            computed=f"median indexed price/m² of the {k} nearest earlier same-type sales",
        ),
        _f(
            f"cmp{k}_distance_m",
            "neighbourhood",
            "m",
            (
                f"Afstand tot de {k} dichtste verkopen",
                f"Distance des {k} ventes les plus proches",
                f"Reach of the {k} nearest sales",
            ),
            (
                f"Hoe ver de {k}e dichtstbijzijnde eerdere verkoop ligt: klein in een drukke markt.",
                f"Distance de la {k}e vente antérieure la plus proche : faible dans un marché actif.",
                f"Distance to the {k}th nearest earlier sale: small in a busy market.",
            ),
            source="sales",
            computed=f"distance to the farthest of the {k} nearest earlier same-type sales",
        ),
        _f(
            "comparables_eur",
            "neighbourhood",
            "EUR",
            (
                "Waarde volgens vergelijkbare verkopen",
                "Valeur selon les ventes comparables",
                "Value from comparable sales",
            ),
            (
                "Bewoonbare oppervlakte maal de mediaanprijs per m² van de dichtste vergelijkbare verkopen.",
                "Surface habitable multipliée par le prix médian au m² des ventes comparables les plus "
                "proches.",
                "Living area times the median price per m² of the nearest comparable sales.",
            ),
            source="sales",
            computed=f"living_area_m2 x cmp{k}_ppm2_median (stand-ins where missing)",
        ),
    ]
    return tuple(out)


FEATURES = FEATURES + _neighbourhood_features()

_BY_NAME = {feature.name: feature for feature in FEATURES}
if len(_BY_NAME) != len(FEATURES):  # pragma: no cover - a programming error caught at import
    raise RuntimeError("duplicate feature names in the registry")

#: Shown with the explanation for the part of the price that is the market's move to the valuation date.
TIME_ADJUSTMENT_LABELS = {
    "nl": "Marktevolutie tot de waarderingsdatum",
    "fr": "Évolution du marché jusqu'à la date d'évaluation",
    "en": "Market change to the valuation date",
}
BASE_VALUE_LABELS = {
    "nl": "Gemiddelde woning",
    "fr": "Bien moyen",
    "en": "Average home",
}


def get(name: str) -> Feature:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown feature {name!r}; the registry has {sorted(_BY_NAME)}") from None


def features(groups: Iterable[str] | None = None) -> list[Feature]:
    wanted = set(groups) if groups is not None else None
    return [f for f in FEATURES if wanted is None or f.group in wanted]


def names(groups: Iterable[str] | None = None) -> list[str]:
    return [f.name for f in features(groups)]


def categorical_names(selected: Iterable[str]) -> list[str]:
    return [name for name in selected if get(name).kind == "categorical"]


def notary_inputs() -> list[Feature]:
    return [f for f in FEATURES if f.notary_input]
