"""The promised public import: ``from analytics import MetricSeries, AnomalyDetectionEngine, ...``
(the names users already know, resolved lazily from their home modules)."""

from __future__ import annotations

import subprocess
import sys
from importlib import import_module
from pathlib import Path

import pytest

import analytics

HOMES = {
    "analytics.core.contracts": (
        "MetricPoint", "MetricSeries", "AnomalyResult", "AggregatedAnomalyScore", "AnomalyType", "AnomalyExplanation",
        "AggregationStrategy",
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


def test_the_names_users_know_import_from_the_package():
    from analytics import (  # the form the design promises
        AggregatedAnomalyScore,
        AggregationPipeline,
        AnomalyDetectionEngine,
        AnomalyResult,
        MetricSeries,
        get_metric_series,
        store_anomaly_results,
    )

    contracts = import_module("analytics.core.contracts")
    assert (MetricSeries, AnomalyResult, AggregatedAnomalyScore) == (
        contracts.MetricSeries, contracts.AnomalyResult, contracts.AggregatedAnomalyScore)
    assert AnomalyDetectionEngine.__module__ == "analytics.core.engines.base"
    assert AggregationPipeline.__module__ == "analytics.core.aggregation"
    assert (get_metric_series.__module__, store_anomaly_results.__module__) == ("analytics.store.read", "results.store")


@pytest.mark.parametrize("module, name", [(module, name) for module, names in HOMES.items() for name in names])
def test_each_name_is_the_object_of_its_home_module(module, name):
    assert getattr(analytics, name) is getattr(import_module(module), name)
    assert name in analytics.__all__


def test_the_bundled_engines_are_registered_through_the_facade():
    assert {"adtk", "vector"} <= set(analytics.engine_registry.names())


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="NoSuchThing"):
        analytics.NoSuchThing  # noqa: B018
    with pytest.raises(ImportError):
        from analytics import NoSuchThing  # noqa: F401


def test_importing_the_package_loads_no_heavy_library():
    """Lazy: the Django app imports ``analytics`` at start-up without pandas, numpy or ADTK."""
    code = "import sys, analytics; print(sorted(m for m in ('pandas', 'numpy', 'adtk') if m in sys.modules))"
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
