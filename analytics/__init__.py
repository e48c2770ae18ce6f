"""Fleetwatch analytics: ``from analytics import MetricSeries, AnomalyDetectionEngine, ...``.

The names resolve lazily from the Django-free core (analytics.core), so importing the
Django app does not load pandas, numpy or ADTK until something asks for them.
"""

from importlib import import_module

_EXPORTS = {
    "analytics.core.contracts": (
        "MetricPoint", "MetricSeries", "AnomalyResult", "AggregatedAnomalyScore", "AnomalyType",
        "AnomalyExplanation", "AggregationStrategy",
    ),
    "analytics.core.windows": ("SlidingWindowExtractor", "TimeBasedWindowExtractor"),
    "analytics.core.engines.base": ("AnomalyDetectionEngine",),
    "analytics.core.engines.registry": ("EngineRegistry", "engine_registry", "register_engine"),
    "analytics.core.explain": ("ExplanationClassifier", "ExplanationTemplateRegistry"),
    "analytics.core.aggregation": (
        "NodeAnomalyAggregator", "ClusterAnomalyAggregator", "TenantAnomalyAggregator", "AggregationPipeline",
    ),
    "analytics.store.read": ("get_metric_series",),
    "results.store": ("store_anomaly_results",),
}
# (importing anything under analytics.core.engines registers the bundled engines)
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'analytics' has no attribute {name!r}")
    return getattr(import_module(_WHERE[name]), name)
