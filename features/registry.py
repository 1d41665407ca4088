"""The feature registry: the single source of truth for every model feature.

Training, prediction, the explanation view, the API and the docs all read this list, so training and
serving cannot drift apart. Each feature has a name (the column), a group, a unit, labels and a
one-line explanation in Dutch, French and English, where its value comes from and how it is computed.

Groups:
- ``property``: facts of the house, from the deed (training) or the notary (valuation), or estimated
  from the building when the notary gives none;
- ``location``: where the house is;
- ``neighbourhood``: computed only from sales dated strictly before the valuation date;
- ``cadastral``, ``height``, ``accessibility``, ``socio_economic``: computed per parcel from the open-data
  layers by ``features.compute`` into ``features.models.ParcelFeatures`` (one column per feature, same
  names); a parcel missing a layer gets unknown values. ``features.store`` reads them for the model.
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


def _open_data_features() -> tuple[Feature, ...]:
    """The features computed per parcel from the open-data layers (``features.compute``, one row per parcel
    in ``ParcelFeatures``). A parcel missing a layer gets unknown values."""
    cadgis = "CadGIS / GRB parcels"
    buildings = "CadGIS / GRB buildings"
    out = [
        # --- cadastral ---------------------------------------------------------------------------
        _f(
            "parcel_area_m2",
            "cadastral",
            "m²",
            (
                "Oppervlakte kadastraal perceel",
                "Superficie de la parcelle cadastrale",
                "Cadastral parcel area",
            ),
            (
                "De oppervlakte van het perceel volgens het kadastrale plan.",
                "La superficie de la parcelle selon le plan cadastral.",
                "The area of the parcel on the cadastral plan.",
            ),
            source=cadgis,
            computed="ST_Area of the parcel outline in EPSG:31370",
        ),
        _f(
            "street_width_m",
            "cadastral",
            "m",
            ("Straatbreedte", "Largeur de la rue", "Street width"),
            (
                "De breedte van het openbaar domein voor het perceel, tot het perceel aan de overkant.",
                "La largeur du domaine public devant la parcelle, jusqu'à la parcelle d'en face.",
                "The width of the public domain in front of the parcel, to the parcel across the street.",
            ),
            source=f"{cadgis}; BeSt addresses; OSM roads",
            computed="distance from the parcel front to the first other parcel straight out from it (up to "
            "50 m); else twice the distance from the front to the road centreline within 25 m; the front is "
            "the outline edge nearest the address point (or nearest road)",
        ),
        _f(
            "parcel_ratio",
            "cadastral",
            "",
            ("Verhouding lengte/breedte perceel", "Rapport longueur/largeur de la parcelle", "Parcel ratio"),
            (
                "Hoe langgerekt het perceel is: 1 voor een vierkant, 5 voor een strook vijf keer zo diep "
                "als breed.",
                "L'allongement de la parcelle : 1 pour un carré, 5 pour une bande cinq fois plus profonde "
                "que large.",
                "How elongated the parcel is: 1 for a square, 5 for a strip five times as deep as wide.",
            ),
            source=cadgis,
            computed="length / width of the parcel's minimum rotated rectangle (ST_OrientedEnvelope)",
        ),
        _f(
            "parcel_orientation_deg",
            "cadastral",
            "°",
            ("Oriëntatie perceel", "Orientation de la parcelle", "Parcel orientation"),
            (
                "De richting van de lange as van het perceel (0° noord-zuid, 90° oost-west).",
                "La direction du grand axe de la parcelle (0° nord-sud, 90° est-ouest).",
                "The direction of the parcel's long axis (0° north-south, 90° east-west).",
            ),
            source=cadgis,
            computed="compass bearing of the long side of the minimum rotated rectangle, folded to 0-180°",
        ),
        _f(
            "building_area_m2",
            "cadastral",
            "m²",
            ("Bebouwde oppervlakte", "Superficie bâtie", "Building footprint"),
            (
                "De grondoppervlakte van het grootste gebouw op het perceel.",
                "L'emprise au sol du plus grand bâtiment de la parcelle.",
                "The ground footprint of the largest building on the parcel.",
            ),
            source=buildings,
            computed="ST_Area of the largest building footprint on the parcel",
        ),
        _f(
            "building_type",
            "cadastral",
            "",
            ("Bebouwingstype", "Type de construction", "Building type"),
            (
                "Open, halfopen of gesloten bebouwing: aantal gemene muren met buren (0, 1, 2 of meer).",
                "Construction ouverte, demi-ouverte ou fermée : murs mitoyens avec les voisins "
                "(0, 1, 2 ou plus).",
                "Detached, semi-detached or terraced: walls shared with neighbours (0, 1, 2 or more).",
            ),
            source=buildings,
            computed="the building's type from the source; where unknown, from the walls its footprint "
            "shares (over 1 m within 5 cm) with other buildings: none open, one half-open, more closed",
            kind="categorical",
            categories=("open", "half_open", "closed"),
        ),
        _f(
            "facade_width_m",
            "cadastral",
            "m",
            ("Gevelbreedte", "Largeur de façade", "Facade width"),
            (
                "De breedte van het gebouw gezien vanaf de straat.",
                "La largeur du bâtiment vue depuis la rue.",
                "The width of the building as seen from the street.",
            ),
            source=f"{buildings}; {cadgis}",
            computed="extent of the footprint along its street-facing edge (the edge whose outward normal "
            "best faces the parcel front, weighted by length)",
        ),
        _f(
            "facade_orientation_deg",
            "cadastral",
            "°",
            ("Oriëntatie voorgevel", "Orientation de la façade", "Facade orientation"),
            (
                "De windrichting waarnaar de voorgevel kijkt (0° noord, 90° oost, 180° zuid, 270° west).",
                "La direction vers laquelle regarde la façade avant (0° nord, 90° est, 180° sud, "
                "270° ouest).",
                "The compass direction the front facade faces (0° north, 90° east, 180° south, 270° west).",
            ),
            source=f"{buildings}; {cadgis}",
            computed="outward normal of the street-facing footprint edge, 0-360° (not folded: a south and a "
            "north facade differ in light and in the garden behind)",
        ),
        # --- height ------------------------------------------------------------------------------
        _f(
            "building_height_m",
            "height",
            "m",
            ("Gebouwhoogte", "Hauteur du bâtiment", "Building height"),
            (
                "De hoogte van het gebouw boven het maaiveld.",
                "La hauteur du bâtiment au-dessus du sol.",
                "The height of the building above the ground.",
            ),
            source="height models (DSM - DTM) / 3D GRB",
            computed="height of the largest building on the parcel",
        ),
        _f(
            "building_volume_m3",
            "height",
            "m³",
            ("Bouwvolume", "Volume bâti", "Building volume"),
            (
                "Het volume van het gebouw: grondoppervlakte maal hoogte.",
                "Le volume du bâtiment : emprise au sol fois hauteur.",
                "The volume of the building: footprint times height.",
            ),
            source="height models / 3D GRB; buildings",
            computed="the building's volume from the heights; else footprint area x height",
        ),
        _f(
            "storeys",
            "height",
            "",
            ("Aantal bouwlagen", "Nombre de niveaux", "Storeys"),
            (
                "Het aantal bouwlagen boven de grond.",
                "Le nombre de niveaux hors sol.",
                "The number of storeys above ground.",
            ),
            source="height models / 3D GRB",
            computed="storeys of the largest building on the parcel",
        ),
    ]
    # name, Dutch place, French (label, "to the nearest ..."), English place, source, what is searched
    distances = [
        (
            "dist_major_city_m",
            "grote stad",
            ("Distance à une grande ville", "jusqu'à la grande ville la plus proche"),
            "major city",
            "OSM place=city",
            "nearest city centre (place=city)",
        ),
        (
            "dist_centre_m",
            "stads- of dorpskern",
            ("Distance au centre", "jusqu'au centre de ville ou de village le plus proche"),
            "town or city centre",
            "OSM place=city/town",
            "nearest city or town centre (place=city or town)",
        ),
        (
            "dist_highway_entry_m",
            "oprit van de autosnelweg",
            ("Distance à l'autoroute", "jusqu'à l'accès d'autoroute le plus proche"),
            "motorway entry",
            "OSM highway=motorway_junction",
            "nearest motorway junction",
        ),
        (
            "dist_primary_road_m",
            "hoofdweg",
            ("Distance à une route principale", "jusqu'à la route principale la plus proche"),
            "primary road",
            "OSM highway=primary/trunk",
            "nearest primary or trunk road centreline",
        ),
        (
            "dist_railway_line_m",
            "spoorlijn",
            ("Distance au chemin de fer", "jusqu'à la ligne de chemin de fer la plus proche"),
            "railway line",
            "OSM railway=rail / iRail segments",
            "nearest railway line",
        ),
        (
            "dist_station_m",
            "treinstation",
            ("Distance à la gare", "jusqu'à la gare la plus proche"),
            "railway station",
            "iRail stations / OSM",
            "nearest railway station",
        ),
        (
            "dist_bus_stop_m",
            "bushalte",
            ("Distance à un arrêt de bus", "jusqu'à l'arrêt de bus le plus proche"),
            "bus stop",
            "OSM highway=bus_stop",
            "nearest bus stop",
        ),
    ]
    for name, nl, (fr_label, fr_nearest), en, source, what in distances:
        out.append(
            _f(
                name,
                "accessibility",
                "m",
                (f"Afstand tot {nl}", fr_label, f"Distance to {en}"),
                (
                    f"Hemelsbreed, van het perceel tot de dichtstbijzijnde {nl}.",
                    f"À vol d'oiseau, de la parcelle {fr_nearest}.",
                    f"As the crow flies, from the parcel to the nearest {en}.",
                ),
                source=source,
                computed=f"straight-line distance from the parcel's point on surface to the {what} "
                "(k-nearest-neighbour search on a spatial index)",
            )
        )
    statbel = "Statbel"
    out += [
        _f(
            "municipality_population",
            "socio_economic",
            "",
            ("Inwoners gemeente", "Population de la commune", "Municipality population"),
            (
                "Het aantal inwoners van de gemeente op 1 januari.",
                "Le nombre d'habitants de la commune au 1er janvier.",
                "The number of residents of the municipality on 1 January.",
            ),
            source=f"{statbel} population by municipality",
            computed="latest year known, municipality of the parcel",
        ),
        _f(
            "municipality_density_km2",
            "socio_economic",
            "/km²",
            ("Bevolkingsdichtheid", "Densité de population", "Population density"),
            (
                "Inwoners per km² in de gemeente.",
                "Habitants par km² dans la commune.",
                "Residents per km² in the municipality.",
            ),
            source=f"{statbel} population; municipality boundary",
            computed="population / area (the statistic's area, else the boundary's), latest year",
        ),
        _f(
            "municipality_tax_rate_pct",
            "socio_economic",
            "%",
            ("Gemeentebelasting", "Taxe communale", "Municipal tax rate"),
            (
                "De aanvullende gemeentebelasting op de personenbelasting.",
                "La taxe communale additionnelle à l'impôt des personnes physiques.",
                "The municipal surcharge on personal income tax.",
            ),
            source=f"{statbel} fiscal income",
            computed="municipal taxes / total taxes, latest year known",
        ),
        _f(
            "municipality_prosperity_index",
            "socio_economic",
            "",
            ("Welvaartsindex", "Indice de richesse", "Prosperity index"),
            (
                "Het gemiddelde inkomen per inwoner tegenover het Belgische (100 = nationaal gemiddelde).",
                "Le revenu moyen par habitant par rapport à la Belgique (100 = moyenne nationale).",
                "Average income per resident relative to Belgium (100 = national average).",
            ),
            source=f"{statbel} fiscal income",
            computed="latest year known, municipality of the parcel",
        ),
        _f(
            "municipality_income_avg_eur",
            "socio_economic",
            "EUR",
            ("Gemiddeld inkomen gemeente", "Revenu moyen de la commune", "Municipality average income"),
            (
                "Het gemiddelde netto belastbaar inkomen per aangifte in de gemeente.",
                "Le revenu net imposable moyen par déclaration dans la commune.",
                "The average net taxable income per tax return in the municipality.",
            ),
            source=f"{statbel} fiscal income",
            computed="latest year known, municipality of the parcel",
        ),
        _f(
            "sector_income_avg_eur",
            "socio_economic",
            "EUR",
            ("Gemiddeld inkomen wijk", "Revenu moyen du quartier", "Neighbourhood average income"),
            (
                "Het gemiddelde netto belastbaar inkomen per aangifte in de statistische sector.",
                "Le revenu net imposable moyen par déclaration dans le secteur statistique.",
                "The average net taxable income per tax return in the statistical sector.",
            ),
            source=f"{statbel} fiscal income by statistical sector",
            computed="latest year known, statistical sector of the parcel; unknown where Statbel hides it",
        ),
    ]
    quantiles = [
        ("p10", ("10e percentiel", "10e centile", "10th percentile"), "10 %"),
        ("p25", ("25e percentiel", "25e centile", "25th percentile"), "25 %"),
        ("median", ("mediaan", "médiane", "median"), "50 %"),
        ("p75", ("75e percentiel", "75e centile", "75th percentile"), "75 %"),
        ("p90", ("90e percentiel", "90e centile", "90th percentile"), "90 %"),
    ]
    for key, (nl, fr, en), share in quantiles:
        out.append(
            _f(
                f"sector_income_{key}_eur",
                "socio_economic",
                "EUR",
                (f"Inkomen wijk, {nl}", f"Revenu du quartier, {fr}", f"Neighbourhood income, {en}"),
                (
                    f"{share} van de aangiften in de statistische sector ligt onder dit inkomen.",
                    f"{share} des déclarations du secteur statistique sont sous ce revenu.",
                    f"{share} of the tax returns in the statistical sector are below this income.",
                ),
                source=f"{statbel} fiscal income by statistical sector",
                computed=f"{en} of net taxable income per return, latest year known; unknown where hidden",
            )
        )
    return tuple(out)


#: The open-data features: numeric and categorical, as the valuation model takes them (features.store).
OPEN_DATA_GROUPS: tuple[str, ...] = ("cadastral", "height", "accessibility", "socio_economic")


FEATURES = FEATURES + _neighbourhood_features() + _open_data_features()

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
