"""Geometries in the admin on our own Leaflet, with no CDN and no inline script.

Django's default GIS admin widget loads OpenLayers from a CDN and starts it with an inline script: it
shows nothing offline and breaks under our Content-Security-Policy (no 'unsafe-inline'). Geometries come
from open data and are not edited by hand, so the admin shows them on a map, with the WKT read-only.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.gis import admin
from django.contrib.gis.forms.widgets import BaseGeometryWidget


class LeafletGeometryWidget(BaseGeometryWidget):
    template_name = "admin/gis/leaflet.html"
    map_srid = 4326

    class Media:
        css = {"all": ["vendor/leaflet-1.9.4/leaflet.css", "admin-map/admin-map.css"]}
        js = ["vendor/leaflet-1.9.4/leaflet.js", "admin-map/admin-map.js"]

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        geometry = self.deserialize(context["serialized"]) if context["serialized"] else None
        context["geojson"] = geometry.json if geometry else ""
        context["tile_url"] = settings.MAP_TILE_URL
        context["tile_attribution"] = settings.MAP_TILE_ATTRIBUTION
        return context


class MapAdmin(admin.GISModelAdmin):
    """GISModelAdmin with the Leaflet widget; every admin with geometries derives from it."""

    gis_widget = LeafletGeometryWidget  # type: ignore[assignment]  # django-stubs types it as an instance
