from django.contrib.gis import admin

from valuation.models import Sale


@admin.register(Sale)
class SaleAdmin(admin.GISModelAdmin):
    list_display = ["external_id", "source", "sale_date", "price_eur", "property_type", "living_area_m2"]
    list_filter = ["source", "property_type"]
    search_fields = ["external_id", "address"]
    date_hierarchy = "sale_date"
    raw_id_fields = ["parcel"]
