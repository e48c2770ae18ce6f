"""The engine interface every detector implements (ADTK-based or not).

An engine implements :meth:`AnomalyDetectionEngine.score` (causal per-point scores in
[0, 1], calibrated so that 0.5 is the alarm level, see :mod:`.calibration`) and
:attr:`AnomalyDetectionEngine.history_points`. The rest is shared: parameters
(:mod:`.parameters`), alarm post-processing (:mod:`.alarms`), and turning scored points
into results (:mod:`.episodes`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from analytics.core.contracts import AnomalyExplanation, AnomalyResult, MetricSeries
from analytics.core.engines.alarms import AlarmCarry, AlarmRules, postprocess
from analytics.core.engines.episodes import EpisodeRules, episode_results, explain_episode
from analytics.core.engines.parameters import COMMON_PARAMETERS, Parameter, parse_duration
from analytics.core.engines.scored import EngineOutput, ScoredSeries

NOMINAL_STEP_SECONDS = 60.0
"""The product's sampling step: engines quote ``history_points`` at this step."""


class AnomalyDetectionEngine(ABC):
    """Subclasses declare ``name`` and ``parameters`` and implement ``score`` and
    ``history_points``. ``parameters`` should include :data:`COMMON_PARAMETERS`."""

    name: ClassVar[str]
    parameters: ClassVar[Mapping[str, Parameter]] = COMMON_PARAMETERS

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.parameters))
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown parameter for engine {self.name!r}")
        self.params: dict[str, Any] = {
            name: spec.coerce(name, params[name]) if name in params else spec.default
            for name, spec in self.parameters.items()
        }
        self._durations: dict[str, pd.Timedelta] = {}
        self.validate_params()

    def validate_params(self) -> None:  # noqa: B027 - a hook: engines override it, the default checks nothing
        """Cross-parameter checks; raise ``ValueError`` naming the parameter."""

    def duration(self, name: str) -> pd.Timedelta:
        if name not in self._durations:
            self._durations[name] = parse_duration(self.params[name])
        return self._durations[name]

    # --- what engines implement -------------------------------------------------------

    @property
    @abstractmethod
    def history_points(self) -> int:
        """How many points before the first new point the engine needs as context
        (at the engine's nominal sampling step)."""

    @abstractmethod
    def score(self, series: MetricSeries, state: Any = None) -> tuple[ScoredSeries, Any]:
        """Score every point of ``series`` causally; return the scores and the fitted
        state to reuse on the next incremental call (None if the engine keeps none)."""

    def refresh_state(self, series: MetricSeries, state: Any, since_index: int) -> Any:
        """Hook for engines with fitted state: return the state to use when scoring
        points ``since_index..`` (e.g. refit a stale state on earlier points). The
        default keeps the state."""
        return state

    def dump_state(self, state: Any) -> Any:
        """The state as JSON-able data for storage (None: nothing to keep)."""
        if state is None:
            return None
        to_dict = getattr(state, "to_dict", None)
        return to_dict() if callable(to_dict) else None

    def load_state(self, data: Any) -> Any:
        """Inverse of :meth:`dump_state`; engines with state override it. Data that no
        longer loads (e.g. an old version) gives None, so the engine simply refits."""
        return None

    def history_points_for_fit(self) -> int:
        """Context points a call WITHOUT a fitted state needs before the first new point
        (at the nominal step): what the engine fits or warms up on. ``history_points``
        is what an incremental call with a state needs; they are equal for engines whose
        state carries nothing the context could not rebuild (the default)."""
        return self.history_points

    # --- shared machinery ---------------------------------------------------------------

    def alarm_rules(self) -> AlarmRules:
        return AlarmRules(
            threshold=float(self.params["threshold"]),
            min_alarm_points=int(self.params["min_alarm_points"]),
            confirm_window_ns=int(self.duration("confirm_window").value),
            suppress_ns=int(self.duration("suppress").value),
            gate_scores=bool(self.params["gate_scores"]),
        )

    def postprocess(
        self, scores: np.ndarray, timestamps_ns: np.ndarray, *, suppress_points: int = 0,
        carry: AlarmCarry | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, AlarmCarry]:
        """:func:`.alarms.postprocess` with this engine's common parameters."""
        return postprocess(scores, timestamps_ns, self.alarm_rules(), suppress_points=suppress_points, carry=carry)

    def analyse(self, series: MetricSeries, *, since: datetime | None = None, state: Any = None) -> EngineOutput:
        """Score, window, classify and explain; return results plus the state to keep."""
        start = 0 if since is None else int(series.timestamps.searchsorted(pd.Timestamp(since), side="left"))
        state = self.refresh_state(series, state, start)
        scored, state = self.score(series, state)
        rules = EpisodeRules(
            window=self.duration("window"),
            bridge_ns=max(int(self.duration("suppress").value), int(self.duration("merge_gap").value)),
            threshold=float(self.params["threshold"]),
        )
        results = episode_results(self.name, series, scored, start, rules)
        return EngineOutput(results=results, state=state, scored=scored, start_index=start)

    def detect(self, series: MetricSeries, *, since: datetime | None = None, state: Any = None) -> list[AnomalyResult]:
        """Results partitioning the analysed range (points at or after ``since``): one
        per anomaly episode and one NORMAL result per stretch between episodes. Sorted,
        contiguous (each result ends where the next starts; the first starts at the
        epoch-aligned window holding the first analysed point). Use :meth:`analyse` to
        also get the fitted state back."""
        return self.analyse(series, since=since, state=state).results

    def explain(self, result: AnomalyResult, series: MetricSeries, *, state: Any = None) -> AnomalyExplanation:
        """The structured explanation of one result, rebuilt from the series (pass the
        state the result was detected with to reproduce it exactly)."""
        scored, _ = self.score(series, state)
        ts = series.timestamps
        start = int(ts.searchsorted(pd.Timestamp(result.window_start), side="left"))
        end = int(ts.searchsorted(pd.Timestamp(result.window_end), side="left"))
        if end <= start:
            raise ValueError("result: its window holds no point of the series")
        return explain_episode(series, start, end, scored)
