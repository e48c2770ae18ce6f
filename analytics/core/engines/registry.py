"""EngineRegistry: engines register by name; configurations look them up."""

from __future__ import annotations

from typing import Any

from analytics.core.engines.base import AnomalyDetectionEngine


class EngineRegistry:
    def __init__(self) -> None:
        self._engines: dict[str, type[AnomalyDetectionEngine]] = {}

    def register(self, engine_class: type[AnomalyDetectionEngine]) -> type[AnomalyDetectionEngine]:
        name = engine_class.name
        if name in self._engines and self._engines[name] is not engine_class:
            raise ValueError(f"engine: {name!r} is already registered")
        self._engines[name] = engine_class
        return engine_class

    def get(self, name: str) -> type[AnomalyDetectionEngine]:
        try:
            return self._engines[name]
        except KeyError:
            raise ValueError(f"engine: unknown engine {name!r}; known: {sorted(self._engines)}") from None

    def create(self, name: str, **params: Any) -> AnomalyDetectionEngine:
        return self.get(name)(**params)

    def names(self) -> list[str]:
        return sorted(self._engines)


engine_registry = EngineRegistry()


def register_engine(engine_class: type[AnomalyDetectionEngine]) -> type[AnomalyDetectionEngine]:
    """Class decorator: ``@register_engine`` adds the engine to the default registry."""
    return engine_registry.register(engine_class)

