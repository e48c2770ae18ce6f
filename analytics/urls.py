from django.urls import path

from analytics.protocols.views import OtlpMetricsView, PrometheusWriteView
from analytics.views import MetricsIngestView

urlpatterns = [
    path("metrics", MetricsIngestView.as_view(), name="ingest-metrics"),
    path("otlp/v1/metrics", OtlpMetricsView.as_view(), name="ingest-otlp-metrics"),
    path("prometheus/write", PrometheusWriteView.as_view(), name="ingest-prometheus-write"),
]
