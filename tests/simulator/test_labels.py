"""Seasonal breaks, level shifts, ramps and spikes from the simulator get their type.

The default engine's ``detect()`` runs over every series of two simulated fleets that
holds an injected anomaly, and each anomaly takes the label of the detected episode
that overlaps it most (the rule of ``evaluate --simulated``, analytics/core/evaluation/
events.py). The seeds, 21 and 22, were used neither to choose the classifier's
thresholds (those were 1-20) nor for the acceptance figures (101-105).

The floors sit a little below what these seeds give (docs/evaluation.md, Simulated
fleet); the classifier before this work gave seasonal breaks 0 % and spikes 74 % here.
The issue's target, 90 % for every type, is not met for seasonal breaks, level shifts
and ramps: the engine reports a day whose shape changed as fragments of a few hours,
which often look like a level change.
"""

from __future__ import annotations

import pytest

from analytics.core.engines.defaults import DEFAULT_ENGINE, DEFAULT_PARAMS
from analytics.core.engines.registry import engine_registry
from analytics.core.evaluation.events import EventQuality, score_events
from analytics.simulator.evaluation import FleetShape, detect, ground_truth, series_id
from analytics.simulator.fleet import generate

SEEDS = (21, 22)
SHAPE = FleetShape(clusters=2, nodes=5, min_per_kind=10)
FLOORS = {"spike": 0.9, "dip": 0.6, "seasonal_break": 0.65, "level_shift": 0.6, "trend": 0.65}


@pytest.fixture(scope="module")
def quality() -> EventQuality:
    engine = engine_registry.create(DEFAULT_ENGINE, **DEFAULT_PARAMS)
    events, days, detections = [], {}, []
    for seed in SEEDS:
        spec = SHAPE.spec(seed)
        fleet = generate(spec)
        hit = [key for key in fleet.keys() if fleet.anomalies_for(key)]  # series without one only add time
        seed_events, seed_days = ground_truth(spec)
        events += seed_events
        days |= {series_id(seed, key): seed_days[series_id(seed, key)] for key in hit}
        detections += [d for key in hit for d in detect(engine, fleet, key)]
    return score_events(events, detections, days)


@pytest.mark.parametrize("kind", list(FLOORS))
def test_each_injected_kind_is_labelled_with_its_type(quality, kind):
    row = quality.confusion_by_kind[kind]
    assert sum(row.values()) - row["normal"] >= 10, row  # enough of them detected to judge
    assert quality.accuracy(kind=kind) >= FLOORS[kind], f"{kind}: {row}"
