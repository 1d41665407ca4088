from django.urls import path

# Ids are taken as text and checked by the views, so that a malformed id gets the API's JSON 404, not
# the site's HTML page.
from valuation.api import views

urlpatterns = [
    path("valuations", views.ValuationsView.as_view(), name="api-valuations"),
    path("valuations/batch", views.BatchView.as_view(), name="api-batch"),
    path("valuations/batch/<str:pk>", views.BatchDetailView.as_view(), name="api-batch-detail"),
    path("valuations/<str:pk>", views.ValuationDetailView.as_view(), name="api-valuation"),
    path("valuations/<str:pk>/feedback", views.FeedbackView.as_view(), name="api-feedback"),
    path("addresses", views.AddressesView.as_view(), name="api-addresses"),
    path("sales", views.SalesView.as_view(), name="api-sales"),
]
