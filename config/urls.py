from django.contrib import admin
from django.urls import path

from config import views
from valuation import views as valuation_views

urlpatterns = [
    path("", valuation_views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
