"""What the API takes and gives (also the OpenAPI schema's source)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework_gis.fields import GeometryField

from valuation.models import Verdict
from valuation.services import CONDITIONS


class FactsSerializer(serializers.Serializer):
    """Facts the caller knows; each overrides what the open data says."""

    property_type = serializers.ChoiceField(choices=["house", "apartment", "other"], required=False)
    living_area_m2 = serializers.FloatField(required=False, min_value=10, max_value=5000)
    land_area_m2 = serializers.FloatField(required=False, min_value=0, max_value=1_000_000)
    rooms = serializers.IntegerField(required=False, min_value=1, max_value=100)
    bedrooms = serializers.IntegerField(required=False, min_value=0, max_value=50)
    year_built = serializers.IntegerField(required=False, min_value=1000, max_value=2100)
    epc_kwh_m2 = serializers.FloatField(required=False, min_value=0, max_value=2000)
    condition = serializers.ChoiceField(choices=list(CONDITIONS), required=False)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Not a fact the API takes."] for name in unknown})
        return super().to_internal_value(data)


class ValuationRequestSerializer(serializers.Serializer):
    """Name the property one way: ``address_id`` (from /addresses), ``capakey``, ``address`` as text,
    or ``latitude`` and ``longitude`` (WGS84)."""

    address = serializers.CharField(required=False, max_length=200, allow_blank=False)
    capakey = serializers.CharField(required=False, max_length=40)
    address_id = serializers.IntegerField(required=False, min_value=1)
    latitude = serializers.FloatField(required=False, min_value=-90, max_value=90)
    longitude = serializers.FloatField(required=False, min_value=-180, max_value=180)
    facts = FactsSerializer(required=False)
    valuation_date = serializers.DateField(required=False, help_text="Default: today. Not in the future.")

    def validate_valuation_date(self, value: Any) -> Any:
        if value and value > timezone.localdate():
            raise serializers.ValidationError("The valuation date cannot be in the future.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        ways = [name for name in ("address", "capakey", "address_id") if attrs.get(name) not in (None, "")]
        if "latitude" in attrs or "longitude" in attrs:
            if "latitude" not in attrs or "longitude" not in attrs:
                missing = "latitude" if "latitude" not in attrs else "longitude"
                raise serializers.ValidationError({missing: ["Give both latitude and longitude."]})
            ways.append("coordinates")
        if not ways:
            raise serializers.ValidationError(
                {"address": ["Name the property: address, capakey, address_id, or latitude and longitude."]}
            )
        if len(ways) > 1:
            raise serializers.ValidationError(
                {ways[1]: [f"Name the property one way only (also {ways[0]})."]}
            )
        return attrs


class FeedbackRequestSerializer(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=Verdict.values)
    estimate_eur = serializers.IntegerField(required=False, min_value=1_000, max_value=100_000_000)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=4000)


class FeedbackSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    valuation = serializers.IntegerField()
    verdict = serializers.CharField()
    estimate_eur = serializers.IntegerField(allow_null=True)
    comment = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()


class ContributionSerializer(serializers.Serializer):
    feature = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # a field, popped by the metaclass
    value = serializers.JSONField(allow_null=True)
    contribution_eur = serializers.IntegerField()


@extend_schema_field(
    {
        "type": "object",
        "properties": {
            "type": {"type": "string", "enum": ["Point"]},
            "coordinates": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
        },
        "required": ["type", "coordinates"],
        "example": {"type": "Point", "coordinates": [4.4639599, 50.8124145]},
    }
)
class PointField(GeometryField):
    """A GeoJSON Point in WGS84 (rest_framework_gis), described as such in the schema."""


class ValuationSerializer(serializers.Serializer):
    """A stored valuation, exactly as it was computed."""

    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    valuation_date = serializers.DateField()
    price_eur = serializers.IntegerField()
    low_eur = serializers.IntegerField()
    high_eur = serializers.IntegerField()
    coverage = serializers.FloatField()
    location = PointField(precision=7, help_text="GeoJSON Point (WGS84) of the property.")
    subject = serializers.JSONField()
    facts = serializers.JSONField()
    base_eur = serializers.IntegerField()
    contributions = ContributionSerializer(many=True)
    distribution = serializers.JSONField()
    comparables = serializers.JSONField(
        help_text="Each with longitude, latitude, distance and indexed price."
    )
    model_version = serializers.CharField()
    price_index = serializers.CharField(allow_null=True)
    vintages = serializers.JSONField()


class AddressSerializer(serializers.Serializer):
    label = serializers.CharField()  # type: ignore[assignment]  # a field, popped by the metaclass
    kind = serializers.ChoiceField(choices=["address", "street", "parcel"])
    address_id = serializers.IntegerField(allow_null=True)
    capakey = serializers.CharField(allow_null=True)
    fill = serializers.CharField()
    note = serializers.CharField()


class SalesDeliverySerializer(serializers.Serializer):
    """Sales in the canonical fields of the CSV import (see the README), each with the partner's own
    ``sale_id``; delivering a sale again with the same id updates it or changes nothing."""

    sales = serializers.ListField(
        child=serializers.DictField(), min_length=1, max_length=10_000, help_text="1 to 10,000 sales."
    )


class SalesDeliveryResultSerializer(serializers.Serializer):
    read = serializers.IntegerField()
    inserted = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    rejected = serializers.ListField(child=serializers.DictField(), help_text="index, sale_id, reasons")


class BatchRequestSerializer(serializers.Serializer):
    items = serializers.ListField(
        child=serializers.DictField(), min_length=1, max_length=10_000, help_text="Valuation requests."
    )


class BatchSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["queued", "running", "done", "failed"])
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    status_url = serializers.CharField()
    results = serializers.ListField(
        child=serializers.DictField(),
        help_text="When done, per item: index and valuation_id, price_eur, low_eur, high_eur; or index "
        "and error.",
    )
