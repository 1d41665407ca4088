from typing import Any

from django.contrib.gis import admin

from opendata import models
from opendata.admin_map import MapAdmin


@admin.register(models.Municipality)
class MunicipalityAdmin(MapAdmin):
    list_display = ["nis_code", "name_nl", "name_fr", "valid_from", "source"]
    search_fields = ["nis_code", "name_nl", "name_fr", "name_de"]


@admin.register(models.MunicipalityCrosswalk)
class MunicipalityCrosswalkAdmin(admin.ModelAdmin):
    list_display = ["old_nis_code", "old_name", "municipality", "valid_from"]
    search_fields = ["old_nis_code", "old_name"]
    raw_id_fields = ["municipality"]


@admin.register(models.StatisticalSector)
class StatisticalSectorAdmin(MapAdmin):
    list_display = ["code", "name_nl", "municipality", "vintage"]
    search_fields = ["code", "name_nl", "name_fr"]
    raw_id_fields = ["municipality"]


@admin.register(models.Parcel)
class ParcelAdmin(MapAdmin):
    list_display = ["capakey", "area_m2", "municipality", "source"]
    search_fields = ["capakey"]
    list_filter = ["source"]
    raw_id_fields = ["municipality", "sector"]


@admin.register(models.Building)
class BuildingAdmin(MapAdmin):
    list_display = ["source_id", "building_type", "height_m", "storeys", "parcel", "source"]
    list_filter = ["building_type", "source"]
    raw_id_fields = ["parcel"]


@admin.register(models.Address)
class AddressAdmin(MapAdmin):
    list_display = ["__str__", "postcode", "parcel", "source"]
    search_fields = ["street_nl", "street_fr", "postcode", "house_number"]
    raw_id_fields = ["parcel", "municipality"]


@admin.register(models.LocationPoint)
class LocationPointAdmin(MapAdmin):
    list_display = ["kind", "name", "source"]
    list_filter = ["kind", "source"]
    search_fields = ["name"]


@admin.register(models.LocationLine)
class LocationLineAdmin(MapAdmin):
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
    """Each source's runs (status, counts, rejected rows, error, vintage); "refresh now" queues a new
    run of the selected runs' sources (the schedules themselves: Periodic tasks, django-celery-beat)."""

    list_display = [
        "source",
        "started_at",
        "status",
        "rows_read",
        "rows_loaded",
        "rows_rejected",
        "vintage",
        "next_run",
    ]
    list_filter = ["source", "status"]
    readonly_fields = [f.name for f in models.SourceRefreshRun._meta.fields]
    actions = ["refresh_now"]

    def has_add_permission(self, request: object) -> bool:
        return False

    @admin.display(description="next scheduled run")
    def next_run(self, run: models.SourceRefreshRun) -> str:
        from django_celery_beat.models import PeriodicTask

        task = PeriodicTask.objects.filter(name=f"Refresh {run.source}").first()
        if task is None or not task.enabled:
            return "not scheduled"
        schedule = task.schedule
        last = task.last_run_at or task.date_changed
        remaining = schedule.remaining_estimate(last)
        return f"in {remaining}".split(".")[0] if remaining.total_seconds() > 0 else "due now"

    @admin.action(description="Refresh the selected sources now (queued for the worker)")
    def refresh_now(self, request: Any, queryset: Any) -> None:
        from opendata.tasks import refresh_source

        names = sorted(set(queryset.values_list("source", flat=True)))
        for name in names:
            refresh_source.delay(name)  # routed to the ingest queue (CELERY_TASK_ROUTES)
        self.message_user(request, f"Queued: {', '.join(names)}. Their runs appear here as they go.")
