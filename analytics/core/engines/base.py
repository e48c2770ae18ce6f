"""The engine interface every detector implements (ADTK-based or not)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from analytics.core.contracts import AnomalyExplanation, AnomalyResult, MetricSeries


@dataclass(frozen=True)
class Parameter:
    """One declared engine parameter: its type, default and bounds."""

    type: type
    default: Any
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None

    def coerce(self, name: str, value: Any) -> Any:
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.type) or (self.type is not bool and isinstance(value, bool)):
            raise ValueError(f"{name}: must be {self.type.__name__}, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{name}: must be one of {list(self.choices)}, got {value!r}")
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"{name}: must be >= {self.minimum}, got {value!r}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"{name}: must be <= {self.maximum}, got {value!r}")
        return value


@dataclass
class ScoredSeries:
    """Per-point output of an engine over one series, all arrays the series' length.

    ``scores`` are causal (point t uses points up to t only) and calibrated to [0, 1];
    ``expected`` and ``scale`` are the engine's causal expectation and robust sigma,
    which explanations quote; ``alarms`` are the points flagged after post-processing.
    """

    scores: np.ndarray
    expected: np.ndarray
    scale: np.ndarray
    alarms: np.ndarray
    seasonal_expected: np.ndarray | None = None


class AnomalyDetectionEngine(ABC):
    """Subclasses declare ``name`` and ``parameters`` and implement ``score``."""

    name: ClassVar[str]
    parameters: ClassVar[Mapping[str, Parameter]] = {}

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.parameters))
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown parameter for engine {self.name!r}")
        self.params: dict[str, Any] = {
            name: spec.coerce(name, params[name]) if name in params else spec.default
            for name, spec in self.parameters.items()
        }

    @property
    @abstractmethod
    def history_points(self) -> int:
        """How many points before the first new point the engine needs as context."""

    @abstractmethod
    def score(self, series: MetricSeries, state: Any = None) -> tuple[ScoredSeries, Any]:
        """Score every point of ``series`` causally; return the scores and the fitted
        state to reuse on the next incremental call (None if the engine keeps none)."""

    @abstractmethod
    def detect(self, series: MetricSeries, *, since: Any = None, state: Any = None) -> list[AnomalyResult]:
        """Results covering the analysed range (points at or after ``since``)."""

    @abstractmethod
    def explain(self, result: AnomalyResult, series: MetricSeries) -> AnomalyExplanation:
        """The structured explanation of one result."""


@dataclass
class EngineConfig:
    """A choice of engine and parameters: data, stored per tenant and metric."""

    engine: str
    params: dict[str, Any] = field(default_factory=dict)
