from django.urls import path

from valuation.api import views

urlpatterns = [
    path("valuations", views.ValuationsView.as_view(), name="api-valuations"),
    path("valuations/batch", views.BatchView.as_view(), name="api-batch"),
    path("valuations/batch/<int:pk>", views.BatchDetailView.as_view(), name="api-batch-detail"),
    path("valuations/<int:pk>", views.ValuationDetailView.as_view(), name="api-valuation"),
    path("valuations/<int:pk>/feedback", views.FeedbackView.as_view(), name="api-feedback"),
    path("addresses", views.AddressesView.as_view(), name="api-addresses"),
    path("sales", views.SalesView.as_view(), name="api-sales"),
]
