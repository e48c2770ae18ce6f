"""API URLs of the tenancy app: the tenant's own settings."""

from django.urls import path

from tenants.api import WeightsView

urlpatterns = [
    path("weights", WeightsView.as_view(), name="weights"),
]
