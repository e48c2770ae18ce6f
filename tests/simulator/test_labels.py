"""Seasonal breaks, level shifts, ramps and spikes from the simulator get their type.

The default engine's ``detect()`` runs over every series of two simulated fleets that
holds an injected anomaly, and each anomaly takes the label of the detected episode
that overlaps it most (the rule of ``evaluate --simulated``, analytics/core/evaluation/
events.py). The seeds, 21 and 22, were used neither to choose the classifier's
thresholds (those were 1-20) nor for the acceptance figures (101-105).

The floors sit a little below what these seeds give with the default engine (the
two-view engine, analytics/core/engines/adtk_v2), which alarms far less on normal
one-minute data than the previous one and finds fewer of the subtle kinds: here 8 of 20
dips and 7 of 20 seasonal breaks. With the moved-day clue and the fragment rule
(analytics/core/classification.py, analytics/core/explain.py) and the third round's
engine (spike warm-up, level noise cap, rarity tail minimum, two-day rarity window),
these seeds gave spikes 23/23, dips 8/8, level shifts 15/17, ramps 16/18 and seasonal
breaks 4/7 (before that round: level shifts 14/14, seasonal 4/6); with the fifth round's
moved-day rules (a window with no outstanding point, whole periods, the day before) ramps
17/18 and seasonal breaks 5/7, the rest unchanged. On the tuning seeds 1-5, with many more
events, the same engine gives level shifts 0.966 and seasonal breaks 0.903
(docs/evaluation.md); with 7 and 17 labelled events here one label moves the accuracy by
0.14 and 0.06, so these floors catch a broken classifier, not a point of accuracy.
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
FLOORS = {"spike": 0.9, "dip": 0.9, "seasonal_break": 0.55, "level_shift": 0.85, "trend": 0.85}
DETECTED = {"spike": 20, "dip": 8, "seasonal_break": 5, "level_shift": 12, "trend": 16}  # of 20+ injected


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
    assert sum(row.values()) - row["normal"] >= DETECTED[kind], row  # found, and enough of them to judge
    assert quality.accuracy(kind=kind) >= FLOORS[kind], f"{kind}: {row}"
