from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from config import views
from config.metrics import metrics
from valuation import views as valuation_views

urlpatterns = [
    path("", valuation_views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    path("login/", valuation_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("search/", valuation_views.search, name="search"),
    path("search/suggestions", valuation_views.suggestions, name="suggestions"),
    path("valuations/", valuation_views.valuation_list, name="valuation-list"),
    path("valuations/new", valuation_views.valuate, name="valuate"),
    path("valuations/<int:pk>/", valuation_views.valuation_detail, name="valuation-detail"),
    path("valuations/<int:pk>/revise", valuation_views.valuation_revise, name="valuation-revise"),
    path("valuations/<int:pk>/feedback", valuation_views.valuation_feedback, name="valuation-feedback"),
    path("api/v1/", include("valuation.api.urls")),
    path(
        "api/schema/",
        SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]),
        name="schema",
    ),
    path(
        "api/docs/",
        # ReDoc adds <style> elements at run time and parses the schema in a blob: worker.
        csp_update({"style-src": [UNSAFE_INLINE], "worker-src": ["blob:"]})(
            SpectacularRedocView.as_view(url_name="schema", authentication_classes=[], permission_classes=[])
        ),
        name="api-docs",
    ),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]
