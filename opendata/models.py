"""The open-data layers as stored in PostGIS.

Geometries are stored in Belgian Lambert 72 (EPSG:31370, metres); WGS84 is spoken only at the API and
map edges. Every row says which source it came from; ``SourceRefreshRun`` records every load.
"""

from __future__ import annotations

from django.contrib.gis.db import models
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db.models.functions import Now

from opendata.capakey import InvalidCapaKey, normalise_capakey

STORAGE_SRID = 31370

nis5_validator = RegexValidator(r"^\d{5}$", "A NIS (REFNIS) municipality code has exactly 5 digits.")
sector_code_validator = RegexValidator(
    r"^\d{5}[A-Z0-9]{3}[A-Z0-9-]$",
    "A statistical sector code has 9 characters: the 5-digit NIS code, then 4 letters or digits, e.g. "
    "44021A00-, 11002F6MJ or 11001ZZZZ (the last character may be -).",
)


def validate_capakey(value: str) -> None:
    try:
        canonical = normalise_capakey(value)
    except InvalidCapaKey as exc:
        raise ValidationError(str(exc)) from exc
    if canonical != value:
        raise ValidationError(f"Store CaPaKeys in their canonical form: {canonical}.")


class Municipality(models.Model):
    nis_code = models.CharField(
        max_length=5,
        unique=True,
        validators=[nis5_validator],
        help_text="5-digit NIS/REFNIS code, e.g. 44021.",
    )
    name_nl = models.CharField(max_length=100, blank=True, help_text="Official name in Dutch.")
    name_fr = models.CharField(max_length=100, blank=True, help_text="Official name in French.")
    name_de = models.CharField(
        max_length=100, blank=True, help_text="Official name in German, where it has one."
    )
    geometry = models.MultiPolygonField(srid=STORAGE_SRID, null=True, blank=True, help_text="Boundary.")
    valid_from = models.DateField(
        help_text="First day this code and boundary are in force (2025-01-01 after the mergers)."
    )
    valid_to = models.DateField(null=True, blank=True, help_text="Last day in force; empty while current.")
    source = models.CharField(
        max_length=50, help_text="Connector that loaded the row (e.g. municipalities, demo)."
    )

    class Meta:
        ordering = ["nis_code"]
        verbose_name_plural = "municipalities"

    def __str__(self) -> str:
        return f"{self.nis_code} {self.name_nl or self.name_fr}"

    def name(self, language: str = "nl") -> str:
        return getattr(self, f"name_{language}", "") or self.name_nl or self.name_fr or self.name_de


class MunicipalityCrosswalk(models.Model):
    """Maps every pre-2025 NIS code (the 581 municipalities) to the current municipality (565).

    Several Statbel series still publish on the old codes; join them through this table. Codes of
    municipalities that did not merge map to themselves.
    """

    old_nis_code = models.CharField(
        max_length=5, unique=True, validators=[nis5_validator], help_text="NIS code before 1 January 2025."
    )
    old_name = models.CharField(max_length=100, blank=True, help_text="Name before the merger.")
    municipality = models.ForeignKey(
        Municipality,
        on_delete=models.PROTECT,
        related_name="former_codes",
        help_text="The municipality that holds this territory now.",
    )
    valid_from = models.DateField(help_text="Date the mapping takes effect (2025-01-01).")
    source = models.CharField(max_length=50)

    class Meta:
        ordering = ["old_nis_code"]

    def __str__(self) -> str:
        return f"{self.old_nis_code} -> {self.municipality.nis_code}"


class StatisticalSector(models.Model):
    code = models.CharField(
        max_length=9,
        unique=True,
        validators=[sector_code_validator],
        help_text="9-character Statbel code (44021A00-).",
    )
    municipality = models.ForeignKey(
        Municipality, on_delete=models.PROTECT, related_name="sectors", help_text="Joined on cd_munty_refnis."
    )
    name_nl = models.CharField(max_length=150, blank=True)
    name_fr = models.CharField(max_length=150, blank=True)
    geometry = models.MultiPolygonField(srid=STORAGE_SRID, null=True, blank=True)
    vintage = models.PositiveSmallIntegerField(help_text="Year of the sector boundaries (1 January).")
    source = models.CharField(max_length=50)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class Parcel(models.Model):
    capakey = models.CharField(
        max_length=17,
        unique=True,
        db_collation="C",  # byte order: one btree serves equality and prefix searches (migration 0008)
        validators=[validate_capakey],
        help_text="Canonical CaPaKey, 17 characters: 44024A0034/00B002.",
    )
    geometry = models.MultiPolygonField(srid=STORAGE_SRID, help_text="Parcel outline.")
    area_m2 = models.FloatField(help_text="Area of the outline in square metres (computed in EPSG:31370).")
    municipality = models.ForeignKey(
        Municipality, on_delete=models.SET_NULL, null=True, blank=True, related_name="parcels"
    )
    sector = models.ForeignKey(
        StatisticalSector, on_delete=models.SET_NULL, null=True, blank=True, related_name="parcels"
    )
    parcel_type = models.CharField(
        max_length=2, blank=True, help_text="CadGIS Type: PR private, PP public domain; empty when unknown."
    )
    source = models.CharField(max_length=50, help_text="Connector that loaded it (cadgis, grb, demo...).")
    source_updated = models.DateField(
        null=True, blank=True, help_text="Last update date given by the source."
    )
    source_id = models.CharField(
        max_length=64,
        blank=True,
        db_default="",
        help_text="Identifier in the source (CadGIS OBJECTID/RecId, GRB OIDN); empty when it has none.",
    )
    loaded_at = models.DateTimeField(
        auto_now=True, db_default=Now(), help_text="When the row was last written."
    )

    class Meta:
        indexes = [models.Index(fields=["source"])]

    def __str__(self) -> str:
        return self.capakey

    def clean(self) -> None:
        try:
            self.capakey = normalise_capakey(self.capakey)
        except InvalidCapaKey as exc:
            raise ValidationError({"capakey": str(exc)}) from exc


class BuildingType(models.TextChoices):
    OPEN = "open", "open (detached)"
    HALF_OPEN = "half_open", "half-open (semi-detached)"
    CLOSED = "closed", "closed (terraced)"
    UNKNOWN = "unknown", "unknown"


class Building(models.Model):
    footprint = models.MultiPolygonField(srid=STORAGE_SRID, help_text="Ground footprint.")
    building_type = models.CharField(
        max_length=10,
        choices=BuildingType.choices,
        default=BuildingType.UNKNOWN,
        help_text="From the walls shared with neighbouring buildings: none open, one half-open, two+ closed.",
    )
    height_m = models.FloatField(
        null=True, blank=True, help_text="Height above ground in metres (DSM - DTM)."
    )
    storeys = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Number of storeys above ground."
    )
    volume_m3 = models.FloatField(
        null=True, blank=True, help_text="Footprint area times height, in cubic metres (from the heights)."
    )
    height_source = models.CharField(
        max_length=100,
        blank=True,
        db_default="",
        help_text="How the height was measured, e.g. 'DSM-DTM median, dsm.tif'; empty when unknown.",
    )
    kind = models.CharField(
        max_length=50,
        blank=True,
        db_default="",
        help_text="Building kind as the source says it (CadGIS Type CL/ON/OO/UN, GRB LBLTYPE).",
    )
    parcel = models.ForeignKey(
        Parcel,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="buildings",
        help_text="Parcel holding most of the footprint.",
    )
    source = models.CharField(max_length=50)
    source_id = models.CharField(max_length=64, help_text="Identifier in the source (e.g. GRB OIDN).")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "source_id"], name="building_source_id_unique")
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.source_id}"


class Address(models.Model):
    street_nl = models.CharField(max_length=150, blank=True)
    street_fr = models.CharField(max_length=150, blank=True)
    street_de = models.CharField(max_length=150, blank=True)
    house_number = models.CharField(max_length=20, help_text="As written, e.g. 10, 10A, 12-14.")
    box = models.CharField(max_length=20, blank=True, help_text="Box (bus / boîte), empty if none.")
    postcode = models.CharField(
        max_length=4, validators=[RegexValidator(r"^\d{4}$", "A postcode has 4 digits.")]
    )
    municipality = models.ForeignKey(Municipality, on_delete=models.PROTECT, related_name="addresses")
    point = models.PointField(srid=STORAGE_SRID)
    parcel = models.ForeignKey(
        Parcel,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="addresses",
        help_text="Parcel the address point lies on.",
    )
    source = models.CharField(max_length=50)
    source_id = models.CharField(max_length=64, help_text="Identifier in the source (BeSt address_id).")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "source_id"], name="address_source_id_unique")
        ]
        indexes = [models.Index(fields=["postcode", "house_number"])]
        verbose_name_plural = "addresses"

    def __str__(self) -> str:
        return self.label()

    def street(self, language: str = "nl") -> str:
        return getattr(self, f"street_{language}", "") or self.street_nl or self.street_fr or self.street_de

    def label(self, language: str = "nl") -> str:
        box = (
            f" bus {self.box}" if self.box and language == "nl" else (f" bte {self.box}" if self.box else "")
        )
        town = self.municipality.name(language) if self.municipality_id else ""
        return f"{self.street(language)} {self.house_number}{box}, {self.postcode} {town}".strip()


class LocationPointKind(models.TextChoices):
    RAILWAY_STATION = "railway_station", "railway station"
    BUS_STOP = "bus_stop", "bus stop"
    HIGHWAY_ENTRY = "highway_entry", "highway entry (motorway junction)"
    CITY_CENTRE = "city_centre", "city centre"
    TOWN_CENTRE = "town_centre", "town centre"


class LocationLineKind(models.TextChoices):
    PRIMARY_ROAD = "primary_road", "primary road"
    TRUNK_ROAD = "trunk_road", "trunk road"
    MOTORWAY = "motorway", "motorway"
    RAILWAY = "railway", "railway line"
    STREET = "street", "street centreline (secondary, tertiary, residential...)"


class LocationPoint(models.Model):
    kind = models.CharField(max_length=20, choices=LocationPointKind.choices)
    name = models.CharField(max_length=200, blank=True)
    point = models.PointField(srid=STORAGE_SRID)
    source = models.CharField(max_length=50)
    source_id = models.CharField(max_length=64, help_text="e.g. OSM node id or NMBS station id.")
    attributes = models.JSONField(
        default=dict, blank=True, help_text="Extra facts (population, names in other languages)."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "kind", "source_id"], name="location_point_source_id_unique"
            )
        ]
        indexes = [models.Index(fields=["kind"])]

    def __str__(self) -> str:
        return f"{self.kind}: {self.name}"


class LocationLine(models.Model):
    kind = models.CharField(max_length=20, choices=LocationLineKind.choices)
    name = models.CharField(max_length=200, blank=True)
    geometry = models.MultiLineStringField(srid=STORAGE_SRID)
    source = models.CharField(max_length=50)
    source_id = models.CharField(max_length=64, help_text="e.g. OSM way id or the two NMBS station ids.")
    attributes = models.JSONField(
        default=dict,
        blank=True,
        null=True,
        help_text="Extra facts from the source (road class, ref, lanes, width, railway usage).",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "kind", "source_id"], name="location_line_source_id_unique"
            )
        ]
        indexes = [models.Index(fields=["kind"])]

    def __str__(self) -> str:
        return f"{self.kind}: {self.name}"


class _Statistic(models.Model):
    year = models.PositiveSmallIntegerField(help_text="Reference year of the figures.")
    population = models.PositiveIntegerField(null=True, blank=True, help_text="Residents on 1 January.")
    area_km2 = models.FloatField(null=True, blank=True)
    tax_returns = models.PositiveIntegerField(
        null=True, blank=True, help_text="Number of tax returns (MS_NBR_NON_ZERO_INC)."
    )
    total_net_taxable_income_eur = models.FloatField(null=True, blank=True)
    average_income_eur = models.FloatField(
        null=True, blank=True, help_text="Average net taxable income per return; unknown when suppressed."
    )
    median_income_eur = models.FloatField(
        null=True, blank=True, help_text="Median net taxable income per return."
    )
    source = models.CharField(max_length=50, help_text="The connector that last wrote figures to the row.")
    vintage = models.CharField(
        max_length=40, help_text="Edition of the source file, e.g. 2024 or 2025-01-01."
    )
    provenance = models.JSONField(
        null=True,
        blank=True,
        help_text="Which source and vintage gave each group of figures, e.g. "
        "{'population': {'source': 'statbel-population', 'vintage': '2020'}, 'income': {...}}.",
    )

    class Meta:
        abstract = True


class MunicipalityStatistic(_Statistic):
    municipality = models.ForeignKey(Municipality, on_delete=models.CASCADE, related_name="statistics")
    municipal_tax_rate_pct = models.FloatField(
        null=True,
        blank=True,
        help_text="Municipal surcharge on income tax, % (MS_TOT_MUNICIP_TAXES / MS_TOT_TAXES).",
    )
    prosperity_index = models.FloatField(
        null=True, blank=True, help_text="Average income per resident relative to Belgium (100 = national)."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["municipality", "year"], name="municipality_statistic_year_unique"
            )
        ]


class SectorStatistic(_Statistic):
    sector = models.ForeignKey(StatisticalSector, on_delete=models.CASCADE, related_name="statistics")
    income_p10_eur = models.FloatField(
        null=True, blank=True, help_text="10th percentile of net taxable income."
    )
    income_p25_eur = models.FloatField(null=True, blank=True)
    income_p75_eur = models.FloatField(null=True, blank=True)
    income_p90_eur = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sector", "year"], name="sector_statistic_year_unique")
        ]


class RunStatus(models.TextChoices):
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    SKIPPED = "skipped", "skipped (source unchanged)"
    FAILED = "failed", "failed"


class SourceRefreshRun(models.Model):
    """One attempt to refresh one source: what was read, what was loaded, what was refused and why."""

    source = models.CharField(max_length=50, help_text="Connector name, e.g. cadgis, osm, statbel-income.")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.RUNNING)
    location = models.CharField(max_length=500, blank=True, help_text="URL or file path read.")
    vintage = models.CharField(
        max_length=40, blank=True, help_text="Edition of the data as the source states it."
    )
    rows_read = models.PositiveIntegerField(default=0)
    rows_loaded = models.PositiveIntegerField(default=0)
    rows_rejected = models.PositiveIntegerField(default=0)
    rejections = models.JSONField(
        default=list, blank=True, help_text="The first rejected rows: [{'row': n, 'reason': '...'}]."
    )
    checksum = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the input read.")
    http_etag = models.CharField(
        max_length=200, blank=True, help_text="ETag of the download, sent back as If-None-Match next time."
    )
    http_last_modified = models.CharField(
        max_length=64, blank=True, help_text="Last-Modified of the download, sent as If-Modified-Since."
    )
    progress_done = models.PositiveIntegerField(default=0, help_text="Units of work done so far.")
    progress_total = models.PositiveIntegerField(
        null=True, blank=True, help_text="Units of work in all, if known."
    )
    counts = models.JSONField(
        default=dict, blank=True, help_text="Rows loaded per table, e.g. {'parcels': 3961}."
    )
    error = models.TextField(blank=True, help_text="Why the run failed, for a person.")

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["source", "-started_at"])]

    def __str__(self) -> str:
        return f"{self.source} {self.started_at:%Y-%m-%d %H:%M} {self.status}"

    @property
    def duration_s(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()
