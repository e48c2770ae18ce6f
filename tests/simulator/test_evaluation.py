"""Fleet-level quality on simulated fleets: the top-up option, the driver, the command (no database)."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest
from django.core.management import execute_from_command_line

from analytics.simulator.evaluation import FleetShape, evaluate_simulated, ground_truth, parse_seeds
from analytics.simulator.fleet import generate
from analytics.simulator.spec import KIND_WEIGHTS, FleetSpec

TINY = FleetShape(clusters=2, nodes=1, days=4, min_per_kind=2)


# --------------------------------------------------------------------------- the top-up option

def test_top_up_reaches_the_minimum_of_every_kind_and_only_adds():
    spec = FleetSpec(clusters_per_tenant=2, nodes_per_cluster=3, days=6, seed=21)
    plain, topped = generate(spec), generate(replace(spec, min_anomalies_per_kind=8))
    counts = Counter(a.kind for a in topped.ground_truth)
    assert set(counts) == set(KIND_WEIGHTS) and min(counts.values()) >= 8
    assert set(plain.ground_truth) <= set(topped.ground_truth)  # the drawn schedule stays as it was
    before = Counter(a.kind for a in plain.ground_truth)
    assert all(counts[k] == max(before[k], 8) for k in KIND_WEIGHTS)  # no more than needed
    for key in topped.keys():  # never overlapping, and after the clean history
        spans = sorted((a.start_index, a.end_index) for a in topped.anomalies_for(key))
        assert all(prev[1] < nxt[0] for prev, nxt in zip(spans, spans[1:], strict=False))
        assert all(s >= 2 * 1440 for s, _ in spans)


def test_top_up_refuses_a_fleet_without_room():
    tiny = generate(FleetSpec(clusters_per_tenant=1, nodes_per_cluster=1, metrics=("cpu_usage",), days=3,
                              min_anomalies_per_kind=5))
    with pytest.raises(ValueError, match="min_anomalies_per_kind: no room left for another"):
        tiny.ground_truth  # noqa: B018


def test_severity_is_the_largest_latent_change_in_sigmas():
    fleet = generate(FleetSpec(clusters_per_tenant=2, nodes_per_cluster=3, days=6, seed=21, min_anomalies_per_kind=5))
    by_kind: dict[str, list[float]] = {}
    for a in fleet.ground_truth:
        by_kind.setdefault(a.kind, []).append(fleet.severity(a))
        if a.metric in ("disk_io", "latency_ms"):  # log-transformed: the latent change is log(value / clean value)
            span = slice(a.start_index, a.end_index + 1)
            change = np.log(fleet.values(a.key)[span] / fleet.values(a.key, clean=True)[span])
            assert fleet.severity(a) == pytest.approx(np.abs(change).max() / fleet._params(a.key).sigma, rel=2e-3)
    assert all(4 <= s <= 7 for s in by_kind["spike"] + by_kind["dip"])  # the drawn sizes
    assert all(2 <= s <= 3.5 for s in by_kind["level_shift"])
    assert all(3 <= s <= 5 for s in by_kind["trend"])
    assert all(0.5 < s < 5 for s in by_kind["seasonal_break"])


# --------------------------------------------------------------------------- the driver and the command

def test_ground_truth_events_follow_the_fleet():
    spec = TINY.spec(3)
    events, days = ground_truth(spec)
    fleet = generate(spec)
    assert len(events) == len(fleet.ground_truth) and len(days) == len(fleet)
    assert set(days.values()) == {2.0}  # 4 days minus the 2 days of history
    step = timedelta(seconds=spec.step_seconds)
    for e, a in zip(events, fleet.ground_truth, strict=True):
        assert (e.type, e.kind, e.start, e.end) == (a.type, a.kind, a.start, a.end + step)
        # the match window ends with the NAB window: max(1 h, half the duration) after the last sample
        margin = max(3600, math.ceil(0.5 * (a.end - a.start).total_seconds() / 60) * 60)
        assert (e.match_end - e.end).total_seconds() == margin


def test_parallel_and_serial_runs_agree():
    one = evaluate_simulated([3, 4], "vector", shape=TINY, jobs=1)
    two = evaluate_simulated([3, 4], "vector", shape=TINY, jobs=2)
    assert one.pooled.to_dict() == two.pooled.to_dict()
    assert one.pooled.events == sum(q.events for q in one.per_seed.values())
    assert one.pooled.detections == sum(q.detections for q in one.per_seed.values())


def evaluate_command(*args: str) -> None:
    """``manage.py evaluate ...`` as typed (its options go to the evaluation CLIs unchanged)."""
    execute_from_command_line(["manage.py", "evaluate", *args])


def test_command_runs_end_to_end_on_a_tiny_fleet(capsys):
    tiny = ["--seeds", "5", "--clusters", "2", "--nodes", "1", "--days", "4", "--min-per-kind", "2", "--jobs", "1"]
    evaluate_command("--simulated", *tiny, "--json")
    report = json.loads(capsys.readouterr().out)
    assert report["engine"] == "adtk" and report["seeds"] == [5]
    pooled = report["pooled"]
    assert pooled == report["per_seed"]["5"]
    kinds = {k: sum(row.values()) for k, row in pooled["confusion_by_kind"].items()}
    assert set(kinds) == set(KIND_WEIGHTS) and min(kinds.values()) >= 2
    assert pooled["events"] == sum(kinds.values()) == len(generate(TINY.spec(5)).ground_truth)
    assert 0 <= pooled["precision"] <= 1 and 0 <= pooled["recall"] <= 1
    assert pooled["detections"] >= pooled["true_detections"] > 0

    evaluate_command("--simulated", *tiny)
    text = capsys.readouterr().out
    assert "event precision" in text and "type confusion" in text and "seasonal_break" in text


@pytest.mark.parametrize(("args", "message"), [
    (["--seeds", "9-3"], "seeds: expected"),
    (["--params", "[1]"], "params: must be a JSON object"),
    (["--engine", "nope"], "engine: unknown engine 'nope'"),
])
def test_command_rejects_bad_options(capsys, args, message):
    with pytest.raises(SystemExit) as exit_:
        evaluate_command("--simulated", *args)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_parse_seeds():
    assert parse_seeds("101-105") == [101, 102, 103, 104, 105]
    assert parse_seeds("1,2,7-9,2") == [1, 2, 7, 8, 9]
    for bad in ("", "a", "5-3", "-1"):
        with pytest.raises(ValueError, match="seeds"):
            parse_seeds(bad)
