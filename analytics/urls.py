from django.urls import path

from analytics.views import MetricsIngestView

urlpatterns = [
    path("metrics", MetricsIngestView.as_view(), name="ingest-metrics"),
]
