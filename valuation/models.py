"""Sales and, in later modules, the price index, model registry, valuations and feedback."""

from __future__ import annotations

from django.contrib.gis.db import models
from django.core.validators import MaxValueValidator, MinValueValidator

from opendata.models import STORAGE_SRID, Parcel


class PropertyType(models.TextChoices):
    HOUSE = "house", "house"
    APARTMENT = "apartment", "apartment"
    OTHER = "other", "other"


class Sale(models.Model):
    """One sale from a deed, as delivered by a source (a notarial partner, the demo region, a file)."""

    source = models.CharField(max_length=50, help_text="Who delivered the sale (partner name, demo, dvf...).")
    external_id = models.CharField(max_length=64, help_text="The sale's id at the source; unique per source.")
    sale_date = models.DateField(help_text="Date of the deed.")
    price_eur = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        validators=[MinValueValidator(1)],
        help_text="Price in the deed, EUR.",
    )
    property_type = models.CharField(max_length=10, choices=PropertyType.choices, default=PropertyType.HOUSE)
    living_area_m2 = models.FloatField(null=True, blank=True, validators=[MinValueValidator(1)])
    land_area_m2 = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0)])
    rooms = models.PositiveSmallIntegerField(null=True, blank=True)
    bedrooms = models.PositiveSmallIntegerField(null=True, blank=True)
    year_built = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1000), MaxValueValidator(2100)]
    )
    epc_kwh_m2 = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="EPC primary energy, kWh/m² a year.",
    )
    point = models.PointField(srid=STORAGE_SRID, help_text="Location of the property.")
    parcel = models.ForeignKey(
        Parcel,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sales",
        help_text="Parcel containing the point, where parcels are loaded.",
    )
    address = models.CharField(
        max_length=300, blank=True, help_text="Address as delivered; empty when unknown."
    )
    imported_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="sale_source_external_id_unique"),
            models.CheckConstraint(condition=models.Q(price_eur__gt=0), name="sale_price_positive"),
        ]
        indexes = [models.Index(fields=["sale_date"]), models.Index(fields=["property_type", "sale_date"])]

    def __str__(self) -> str:
        return f"{self.source}:{self.external_id} {self.sale_date} EUR {self.price_eur}"
