from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from features.models import FEATURE_COLUMNS, ParcelFeatures


@admin.register(ParcelFeatures)
class ParcelFeaturesAdmin(admin.ModelAdmin):
    """Read-only: the rows are computed by ``manage.py compute_features`` and after each refresh."""

    list_display = [
        "parcel",
        "computed_at",
        "parcel_area_m2",
        "building_type",
        "street_width_m",
        "dist_station_m",
    ]
    list_filter = ["building_type"]
    search_fields = ["parcel__capakey"]
    raw_id_fields = ["parcel"]
    readonly_fields = ["parcel", "computed_at", *FEATURE_COLUMNS]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
