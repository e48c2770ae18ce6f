"""Detection engines. Importing this package registers the built-in engines.

>>> from analytics.core.engines import engine_registry
>>> engine_registry.create("adtk", threshold=0.6).score(series)[0].scores
"""

from analytics.core.engines.base import (
    COMMON_PARAMETERS,
    AnomalyDetectionEngine,
    EngineConfig,
    EngineOutput,
    Parameter,
    ScoredSeries,
)
from analytics.core.engines.registry import EngineRegistry, engine_registry, register_engine

# isort: split
# registration happens on import
from analytics.core.engines import adtk_engine as adtk_engine  # noqa: E402
from analytics.core.engines import vector_engine as vector_engine  # noqa: E402
from analytics.core.engines.adtk_engine import AdtkEngine  # noqa: E402
from analytics.core.engines.vector_engine import VectorEngine  # noqa: E402

__all__ = [
    "COMMON_PARAMETERS",
    "AdtkEngine",
    "AnomalyDetectionEngine",
    "EngineConfig",
    "EngineOutput",
    "EngineRegistry",
    "Parameter",
    "ScoredSeries",
    "VectorEngine",
    "engine_registry",
    "register_engine",
]
