"""One row of open-data features per parcel, computed by :mod:`features.compute` (set-based SQL in PostGIS).

Every feature column is nullable: a parcel missing a layer (no building, no statistics, no station in
reach) gets unknown values, never a made-up zero. Column names are the feature names of the registry
(:mod:`features.registry`), which says for each one its unit, labels and how it is computed.
"""

from __future__ import annotations

from django.db import models

from opendata.models import BuildingType, Parcel

# open, half-open, closed; a building of unknown type gives an unknown (NULL) building_type.
KNOWN_BUILDING_TYPES = [
    (value, label) for value, label in BuildingType.choices if value != BuildingType.UNKNOWN
]


class ParcelFeatures(models.Model):
    parcel = models.OneToOneField(
        Parcel,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="features",
        help_text="The parcel; the row goes with it (ON DELETE CASCADE in the database too).",
    )
    computed_at = models.DateTimeField(help_text="When this row was last computed.")

    # cadastral
    parcel_area_m2 = models.FloatField(null=True, blank=True)
    street_width_m = models.FloatField(null=True, blank=True)
    parcel_ratio = models.FloatField(null=True, blank=True)
    parcel_orientation_deg = models.FloatField(null=True, blank=True)
    building_area_m2 = models.FloatField(null=True, blank=True)
    # NULL, not "": the model and the frames tell an unknown type from a known one by it.
    building_type = models.CharField(  # noqa: DJ001
        max_length=10, null=True, blank=True, choices=KNOWN_BUILDING_TYPES
    )
    facade_width_m = models.FloatField(null=True, blank=True)
    facade_orientation_deg = models.FloatField(null=True, blank=True)
    # height
    building_height_m = models.FloatField(null=True, blank=True)
    building_volume_m3 = models.FloatField(null=True, blank=True)
    storeys = models.PositiveSmallIntegerField(null=True, blank=True)
    # accessibility
    dist_major_city_m = models.FloatField(null=True, blank=True)
    dist_centre_m = models.FloatField(null=True, blank=True)
    dist_highway_entry_m = models.FloatField(null=True, blank=True)
    dist_primary_road_m = models.FloatField(null=True, blank=True)
    dist_railway_line_m = models.FloatField(null=True, blank=True)
    dist_station_m = models.FloatField(null=True, blank=True)
    dist_bus_stop_m = models.FloatField(null=True, blank=True)
    # socio-economic
    municipality_population = models.PositiveIntegerField(null=True, blank=True)
    municipality_density_km2 = models.FloatField(null=True, blank=True)
    municipality_tax_rate_pct = models.FloatField(null=True, blank=True)
    municipality_prosperity_index = models.FloatField(null=True, blank=True)
    municipality_income_avg_eur = models.FloatField(null=True, blank=True)
    sector_income_avg_eur = models.FloatField(null=True, blank=True)
    sector_income_p10_eur = models.FloatField(null=True, blank=True)
    sector_income_p25_eur = models.FloatField(null=True, blank=True)
    sector_income_median_eur = models.FloatField(null=True, blank=True)
    sector_income_p75_eur = models.FloatField(null=True, blank=True)
    sector_income_p90_eur = models.FloatField(null=True, blank=True)

    class Meta:
        verbose_name = "parcel features"
        verbose_name_plural = "parcel features"

    def __str__(self) -> str:
        return f"features of parcel {self.parcel_id}"


#: The feature columns of :class:`ParcelFeatures`, in table order (everything but the key and timestamp).
FEATURE_COLUMNS: tuple[str, ...] = tuple(
    f.name for f in ParcelFeatures._meta.concrete_fields if f.name not in ("parcel", "computed_at")
)
