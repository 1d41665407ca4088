from django.contrib.gis import admin

from opendata import models


@admin.register(models.Municipality)
class MunicipalityAdmin(admin.GISModelAdmin):
    list_display = ["nis_code", "name_nl", "name_fr", "valid_from", "source"]
    search_fields = ["nis_code", "name_nl", "name_fr", "name_de"]


@admin.register(models.MunicipalityCrosswalk)
class MunicipalityCrosswalkAdmin(admin.ModelAdmin):
    list_display = ["old_nis_code", "old_name", "municipality", "valid_from"]
    search_fields = ["old_nis_code", "old_name"]
    raw_id_fields = ["municipality"]


@admin.register(models.StatisticalSector)
class StatisticalSectorAdmin(admin.GISModelAdmin):
    list_display = ["code", "name_nl", "municipality", "vintage"]
    search_fields = ["code", "name_nl", "name_fr"]
    raw_id_fields = ["municipality"]


@admin.register(models.Parcel)
class ParcelAdmin(admin.GISModelAdmin):
    list_display = ["capakey", "area_m2", "municipality", "source"]
    search_fields = ["capakey"]
    list_filter = ["source"]
    raw_id_fields = ["municipality", "sector"]


@admin.register(models.Building)
class BuildingAdmin(admin.GISModelAdmin):
    list_display = ["source_id", "building_type", "height_m", "storeys", "parcel", "source"]
    list_filter = ["building_type", "source"]
    raw_id_fields = ["parcel"]


@admin.register(models.Address)
class AddressAdmin(admin.GISModelAdmin):
    list_display = ["__str__", "postcode", "parcel", "source"]
    search_fields = ["street_nl", "street_fr", "postcode", "house_number"]
    raw_id_fields = ["parcel", "municipality"]


@admin.register(models.LocationPoint)
class LocationPointAdmin(admin.GISModelAdmin):
    list_display = ["kind", "name", "source"]
    list_filter = ["kind", "source"]
    search_fields = ["name"]


@admin.register(models.LocationLine)
class LocationLineAdmin(admin.GISModelAdmin):
    list_display = ["kind", "name", "source"]
    list_filter = ["kind", "source"]
    search_fields = ["name"]


@admin.register(models.MunicipalityStatistic)
class MunicipalityStatisticAdmin(admin.ModelAdmin):
    list_display = [
        "municipality",
        "year",
        "population",
        "average_income_eur",
        "municipal_tax_rate_pct",
        "source",
    ]
    list_filter = ["year", "source"]
    raw_id_fields = ["municipality"]


@admin.register(models.SectorStatistic)
class SectorStatisticAdmin(admin.ModelAdmin):
    list_display = ["sector", "year", "population", "average_income_eur", "median_income_eur", "source"]
    list_filter = ["year", "source"]
    raw_id_fields = ["sector"]


@admin.register(models.SourceRefreshRun)
class SourceRefreshRunAdmin(admin.ModelAdmin):
    list_display = ["source", "started_at", "status", "rows_read", "rows_loaded", "rows_rejected", "vintage"]
    list_filter = ["source", "status"]
    readonly_fields = [f.name for f in models.SourceRefreshRun._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False
