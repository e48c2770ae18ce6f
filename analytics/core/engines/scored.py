"""What an engine's scoring returns: per-point arrays, and the results plus state of a run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analytics.core.contracts import AnomalyResult


@dataclass
class ScoredSeries:
    """Per-point output of an engine over one series, all arrays the series' length.

    ``scores`` are causal (point t uses points up to t only, plus a state fitted on
    earlier data) and calibrated to [0, 1]; ``expected`` and ``scale`` are the
    engine's causal expectation and robust sigma, which explanations quote; ``alarms``
    are the points flagged after post-processing (suppressed repeats removed);
    ``confirmed`` the points that passed the threshold and the k-of-n rule before
    suppression (detect() folds those repeats into the open episode).
    ``seasonal_component`` is the pure seasonal-profile part of ``expected`` (zeros or
    None without seasonality). ``components`` optionally holds per-component deviations
    in sigmas (engine specific, for diagnostics). ``evidence`` is the scores before
    suppression and gating (an episode's score is its highest evidence, so an episode
    continuing from an earlier call, whose points are suppressed, keeps its score).
    ``magnitude`` is the size of each point's deviation in sigmas of the series (engine
    specific; None: the engine gives none): an episode's score weighs its evidence by its
    largest magnitude (:func:`analytics.core.engines.calibration.episode_score`).
    """

    scores: np.ndarray
    expected: np.ndarray
    scale: np.ndarray
    alarms: np.ndarray
    seasonal_expected: np.ndarray | None = None
    components: dict[str, np.ndarray] = field(default_factory=dict)
    seasonal_component: np.ndarray | None = None
    confirmed: np.ndarray | None = None
    evidence: np.ndarray | None = None
    magnitude: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.scores)


@dataclass
class EngineOutput:
    """What :meth:`AnomalyDetectionEngine.analyse` returns: results, state to keep, scores."""

    results: list[AnomalyResult]
    state: Any
    scored: ScoredSeries
    start_index: int  # first analysed point
