from django.contrib.gis import admin

from valuation.models import ModelVersion, PriceIndexVersion, Sale, Valuation


@admin.register(Sale)
class SaleAdmin(admin.GISModelAdmin):
    list_display = ["external_id", "source", "sale_date", "price_eur", "property_type", "living_area_m2"]
    list_filter = ["source", "property_type"]
    search_fields = ["external_id", "address"]
    date_hierarchy = "sale_date"
    raw_id_fields = ["parcel"]


@admin.register(PriceIndexVersion)
class PriceIndexVersionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "created_at", "frequency", "vintage", "sales_count"]
    readonly_fields = [f.name for f in PriceIndexVersion._meta.fields]


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["version", "status", "created_at", "activated_at", "train_count", "progress_stage"]
    list_filter = ["status"]
    readonly_fields = [f.name for f in ModelVersion._meta.fields]


@admin.register(Valuation)
class ValuationAdmin(admin.GISModelAdmin):
    list_display = ["pk", "created_at", "channel", "query", "price_eur", "model_version", "created_by"]
    list_filter = ["channel", "model_version"]
    search_fields = ["query", "parcel__capakey"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Valuation._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False
