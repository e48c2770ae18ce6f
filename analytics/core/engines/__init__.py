"""Detection engines. Importing this package registers the built-in engines.

>>> from analytics.core.engines import engine_registry
>>> engine_registry.create("adtk", threshold=0.6).score(series)[0].scores
"""

from analytics.core.engines.adtk_v1.engine import AdtkV1Engine
from analytics.core.engines.adtk_v2.engine import AdtkEngine
from analytics.core.engines.base import AnomalyDetectionEngine
from analytics.core.engines.parameters import COMMON_PARAMETERS, Parameter
from analytics.core.engines.registry import EngineRegistry, engine_registry, register_engine
from analytics.core.engines.scored import EngineOutput, ScoredSeries
from analytics.core.engines.vector_engine import VectorEngine

__all__ = [
    "COMMON_PARAMETERS",
    "AdtkEngine",
    "AdtkV1Engine",
    "AnomalyDetectionEngine",
    "EngineOutput",
    "EngineRegistry",
    "Parameter",
    "ScoredSeries",
    "VectorEngine",
    "engine_registry",
    "register_engine",
]
