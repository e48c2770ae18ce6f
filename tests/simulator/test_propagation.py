"""Propagating incidents (FleetSpec.propagation, opt-in) and the origin accuracy command."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest
from django.core.management import execute_from_command_line

from analytics.simulator.export import write_truth
from analytics.simulator.fleet import generate
from analytics.simulator.spec import FleetSpec, spec_dict

SPEC = FleetSpec(clusters_per_tenant=3, nodes_per_cluster=5, days=6, seed=31, propagation=True, incident_rate=1.0)


@pytest.fixture(scope="module")
def fleet():
    return generate(SPEC)


def test_propagation_is_off_by_default_and_left_out_of_the_recorded_spec():
    assert FleetSpec().propagation is False
    assert "propagation" not in spec_dict(FleetSpec())
    assert spec_dict(SPEC)["propagation"] is True
    assert generate(FleetSpec(days=4)).propagations == []
    with pytest.raises(ValueError, match="propagation: must be true or false"):
        FleetSpec(propagation="yes")


def test_an_incident_starts_on_its_origin_and_the_others_follow_5_to_30_minutes_later(fleet):
    assert len(fleet.propagations) >= 5
    for p in fleet.propagations:
        origin, *followers = p.order
        assert followers and p.origin == origin.key
        assert len({(a.tenant, a.cluster) for a in p.order}) == 1
        assert len({a.key for a in p.order}) == len(p.order)
        for a in followers:
            assert timedelta(minutes=5) <= a.start - origin.start <= timedelta(minutes=30)
            assert a.end - a.start == origin.end - origin.start
        assert {a.incident for a in p.order} == {p.incident}


def test_the_origin_is_often_not_the_largest_deviation(fleet):
    largest = [max(p.order, key=fleet.severity) is p.order[0] for p in fleet.propagations]
    assert 0 < sum(largest) < len(largest) / 2


def test_the_truth_matches_the_values(fleet):
    p = fleet.propagations[0]
    for a in p.order:
        values = fleet.values(a.key, a.start_index - 5, a.end_index + 1)
        clean = fleet.values(a.key, a.start_index - 5, a.end_index + 1, clean=True)
        assert np.array_equal(values[:5], clean[:5])  # nothing before its own start
        assert not np.array_equal(values[5:], clean[5:])


def test_the_written_truth_names_the_origin_and_the_order(fleet, tmp_path):
    write_truth(fleet, tmp_path / "truth.json")
    truth = json.loads((tmp_path / "truth.json").read_text())
    first = truth["propagations"][0]
    assert first["origin"] == str(fleet.propagations[0].origin)
    assert [o["lag_seconds"] for o in first["order"]] == sorted(o["lag_seconds"] for o in first["order"])
    assert first["order"][0]["lag_seconds"] == 0
    write_truth(generate(replace(SPEC, propagation=False)), tmp_path / "plain.json")
    assert "propagations" not in json.loads((tmp_path / "plain.json").read_text())


def test_the_rca_command_reports_top1_and_top3(capsys):
    execute_from_command_line(["manage.py", "evaluate", "--simulated", "--rca", "--seeds", "3", "--clusters", "2",
                               "--nodes", "4", "--days", "4", "--json"])
    report = json.loads(capsys.readouterr().out)
    pooled = report["pooled"]
    assert report["seeds"] == [3] and pooled["incidents"] >= 3
    assert 0 <= pooled["top1"] <= pooled["top3"] <= 1
    assert pooled == report["per_seed"]["3"]
    assert sum(k["incidents"] for k in report["per_kind"].values()) == pooled["incidents"]
    execute_from_command_line(["manage.py", "evaluate", "--simulated", "--rca", "--seeds", "3", "--clusters", "1",
                               "--nodes", "3", "--days", "3"])
    assert "top-1" in capsys.readouterr().out
