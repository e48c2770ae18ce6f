"""Root-cause hints (analytics.core.rca): onsets, co-movement groups, origin ranking, the sentence."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from analytics.core.contracts import Direction, MetricSeries
from analytics.core.formatting import format_lag
from analytics.core.rca.analysis import analyse_window
from analytics.core.rca.movers import Move, RankMove, rank_moves
from analytics.core.rca.text import driver_phrase, move_sentence, node_list

BASELINE = timedelta(hours=2)
START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
END = START + timedelta(hours=6)
STEP = 60


def make_series(cluster: str, node: str, metric: str, seed: int, changes=(), level: float = 100.0,
                step: int = STEP) -> MetricSeries:
    """A positive metric with a slow daily-like swing and noise; ``changes``: (minutes after
    START, factor, lasting minutes) multiply the value from then on (for that long)."""
    rng = np.random.default_rng(seed)
    times = pd.date_range(START - BASELINE, END, freq=f"{step}s", inclusive="left", tz="UTC")
    minutes = (times - START).total_seconds().to_numpy() / 60
    values = level * (1 + 0.2 * np.sin(2 * np.pi * (minutes / 1440 + rng.uniform())))
    values *= np.exp(0.03 * rng.standard_normal(len(times)))
    for at, factor, lasting in changes:
        values = np.where((minutes >= at) & (minutes < at + lasting), values * factor, values)
    return MetricSeries("t", cluster, node, metric, times, values)


def fleet(cluster: str, nodes: int, changes: dict[tuple[str, str], tuple], seed: int = 0) -> list[MetricSeries]:
    out = []
    for n in range(1, nodes + 1):
        for m, metric in enumerate(("disk_io", "latency_ms", "network_out")):
            node = f"node-{n:02d}"
            out.append(make_series(cluster, node, metric, seed * 1000 + n * 10 + m, changes.get((node, metric), ())))
    return out


LEADER = ("node-02", "disk_io")
FOLLOWERS = {("node-02", "latency_ms"): 7, ("node-01", "network_out"): 12, ("node-03", "network_out"): 19}


def leader_and_followers(seed: int = 0, leader_factor: float = 1.8) -> list[MetricSeries]:
    """The leader at 90 min (its change smaller than every follower's), then three followers."""
    changes = {LEADER: ((90, leader_factor, 180),)}
    changes |= {key: ((90 + lag, 3.0, 180),) for key, lag in FOLLOWERS.items()}
    return fleet("cluster-1", 4, changes, seed)


@pytest.mark.parametrize("seed", range(5))
def test_the_leader_is_ranked_first_and_the_lags_are_recovered_within_one_step(seed):
    hint = analyse_window(leader_and_followers(seed), START, END)
    assert hint.origin is not None and (hint.origin.moved.key[2], hint.origin.moved.metric) == LEADER
    assert hint.candidates[0] is hint.origin and hint.origin.rank == 1
    assert hint.origin.lead_seconds == pytest.approx(7 * 60, abs=STEP)
    assert hint.origin.moved.onset == pytest.approx(START + timedelta(minutes=90), abs=timedelta(seconds=STEP))
    group = hint.group_of(hint.origin.moved.key)
    assert group is hint.groups[0]
    lags = {(m.moved.key[2], m.moved.metric): m.lag_seconds for m in group.members}
    assert set(lags) == {LEADER, *FOLLOWERS}  # the eight quiet series are not in it
    for key, lag in FOLLOWERS.items():
        assert abs(lags[key] - lag * 60) <= STEP, (key, lags[key])
    # the leader's deviation is the smallest of the four: the order decided, not the size
    peaks = {(m.moved.key[2], m.moved.metric): m.moved.peak_sigma for m in group.members}
    assert peaks[LEADER] < min(peaks[k] for k in FOLLOWERS)
    assert 0 < hint.confidence <= 1
    assert hint.text == ("node-02 disk_io rose 7 min before latency_ms on node-02 and network_out on node-01, -03; "
                         "likely origin: node-02 disk_io.")


def test_an_onset_does_not_move_when_later_data_arrives():
    series = leader_and_followers()
    short = analyse_window([s.slice(None, START + timedelta(minutes=100)) for s in series], START, END)
    long = analyse_window(series, START, END)
    onsets = {m.key: m.onset for m in long.moved}
    for moved in short.moved:
        assert onsets[moved.key] == moved.onset


def test_unrelated_simultaneous_anomalies_in_two_clusters_are_not_grouped():
    a = fleet("cluster-a", 3, {("node-01", "disk_io"): ((60, 3.0, 120),), ("node-02", "latency_ms"): ((68, 3.0, 120),)})
    b = fleet("cluster-b", 3, {("node-01", "disk_io"): ((60, 3.0, 120),), ("node-03", "network_out"): ((68, 3.0, 120),)},
              seed=1)
    hint = analyse_window(a + b, START, END)
    clusters = [{m.moved.cluster for m in g.members} for g in hint.groups]
    assert all(len(c) == 1 for c in clusters)
    assert sorted(len(g.members) for g in hint.groups if len(g.members) > 1) == [2, 2]
    # the same changes in one cluster are one group
    merged = analyse_window(a + [replace(s, cluster_id="cluster-a", node_id=f"b-{s.node_id}") for s in b], START, END)
    assert len(merged.groups[0].members) == 4


def test_a_focus_puts_its_group_first():
    a = fleet("cluster-a", 3, {("node-01", "disk_io"): ((60, 3.0, 120),), ("node-02", "latency_ms"): ((68, 3.0, 120),),
                               ("node-03", "disk_io"): ((75, 3.0, 120),)})
    b = fleet("cluster-b", 3, {("node-01", "disk_io"): ((60, 3.0, 120),), ("node-03", "network_out"): ((68, 3.0, 120),)},
              seed=1)
    focus = ("t", "cluster-b", "node-03", "network_out")
    assert analyse_window(a + b, START, END).groups[0].first.cluster == "cluster-a"  # the largest
    hint = analyse_window(a + b, START, END, focus=focus)
    assert hint.groups[0].first.cluster == "cluster-b" and focus in hint.groups[0].keys()
    assert hint.origin is not None and hint.origin.moved.key == ("t", "cluster-b", "node-01", "disk_io")


def test_changes_hours_apart_in_one_cluster_are_not_grouped():
    series = fleet("cluster-1", 3, {("node-01", "disk_io"): ((30, 3.0, 60),), ("node-02", "latency_ms"): ((240, 3.0, 60),)})
    hint = analyse_window(series, START, END)
    assert [len(g.members) for g in hint.groups] == [1, 1]
    assert hint.origin is None and "nothing moved with it; no clear origin" in hint.text


def test_a_tie_says_no_clear_origin():
    series = fleet("cluster-1", 3, {("node-01", "disk_io"): ((60, 3.0, 120),), ("node-02", "latency_ms"): ((61, 3.0, 120),),
                                    ("node-03", "network_out"): ((75, 3.0, 120),)})
    hint = analyse_window(series, START, END)
    assert hint.origin is None and hint.confidence == 0
    assert len(hint.groups[0].members) == 3
    assert hint.text.endswith("moved within 1 min of each other, 1 more series after them; no clear origin.")
    assert hint.candidates[0].moved.key[2] == "node-01"  # still ranked, just not claimed


def test_a_quiet_window_names_nothing():
    hint = analyse_window(fleet("cluster-1", 2, {}), START, END)
    assert hint.moved == () and hint.origin is None and hint.candidates == ()
    assert hint.text == "No series moved clearly in this window; no origin to name."
    assert hint.analysed == hint.series == 6


def test_a_drop_is_found_as_a_fall():
    series = fleet("cluster-1", 2, {("node-01", "latency_ms"): ((45, 0.4, 3),), ("node-02", "disk_io"): ((50, 3.0, 60),)})
    hint = analyse_window(series, START, END)
    moved = {(m.key[2], m.metric): m for m in hint.moved}
    assert moved[("node-01", "latency_ms")].direction is Direction.DOWN
    assert moved[("node-02", "disk_io")].direction is Direction.UP


def test_series_without_a_baseline_are_counted_not_analysed():
    series = leader_and_followers()
    late = series[0].slice(START, None)
    hint = analyse_window([late, *series[1:]], START, END)
    assert hint.series == len(series) and hint.analysed == len(series) - 1


def test_five_minute_data_and_the_dict_form():
    series = [make_series("c", "node-01", "disk_io", 1, ((60, 3.0, 120),), step=300),
              make_series("c", "node-02", "disk_io", 2, ((80, 3.0, 120),), step=300)]
    hint = analyse_window(series, START, END)
    assert hint.step_seconds == 300
    assert hint.origin is not None and hint.origin.lead_seconds == pytest.approx(20 * 60, abs=300)
    data = hint.to_dict()
    assert data["origin"]["node"] == "node-01" and data["groups"][0]["size"] == 2
    assert data["groups"][0]["members"][1]["lag_seconds"] == pytest.approx(1200, abs=300)


def test_bad_input_is_refused_naming_the_field():
    series = leader_and_followers()
    with pytest.raises(ValueError, match="start: must be a timezone-aware"):
        analyse_window(series, START.replace(tzinfo=None), END)
    with pytest.raises(ValueError, match="end: must be after start"):
        analyse_window(series, END, START)
    with pytest.raises(ValueError, match="series: need at least one series with two points"):
        analyse_window([], START, END)


def test_wording_helpers():
    assert node_list(["node-01", "node-02", "node-11"]) == "node-01, -02, -11"
    assert node_list(["web-a-1", "db-1"]) == "web-a-1, db-1"
    assert node_list([f"node-{i:02d}" for i in range(1, 8)]) == "node-01, -02, -03, -04 (+3)"
    assert [format_lag(s) for s in (40, 60, 720, 3600, 3900)] == ["40 s", "1 min", "12 min", "1 h", "1 h 5 min"]


def test_rank_moves_between_two_top_lists():
    moves = rank_moves(["a", "b", "c", "d"], ["d", "a", "b", "e"])
    assert [(m.subject, m.move, m.rank, m.previous_rank, m.places) for m in moves] == [
        ("d", Move.UP, 1, 4, 3), ("a", Move.DOWN, 2, 1, -1), ("b", Move.DOWN, 3, 2, -1),
        ("e", Move.ENTERED, 4, None, 0), ("c", Move.LEFT, None, 3, 0),
    ]
    assert rank_moves(["a", "b"], ["a", "b"]) == []
    with pytest.raises(ValueError, match="rankings: a subject appears twice"):
        rank_moves(["a", "a"], ["a"])


def test_move_sentences():
    up = RankMove("node-04", Move.UP, 2, 8)
    assert move_sentence("node-04", up, 10, driver_phrase("network_in", 30.2, 0.9)) == "node-04 up 6 places: network_in +30σ"
    down = RankMove("n", Move.DOWN, 3, 2)
    assert move_sentence("n", down, 10, driver_phrase("cpu_usage", -4.26, 0.5)) == "n down 1 place: cpu_usage -4.3σ"
    assert move_sentence("n", RankMove("n", Move.LEFT, None, 3), 5, driver_phrase("cpu", None, 0.7)) == \
        "n left the top 5 (was 3): cpu score 0.70"
    assert move_sentence("n", RankMove("n", Move.ENTERED, 5, None), 5, "") == "n entered the top 5 at 5"
