"""The fleet simulator: deterministic, realistic, labelled; NAB writer; senders.

Generator tests need no database; one test sends a history through the real endpoint.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from analytics.simulator.export import nab_margin_seconds, write_nab, write_truth
from analytics.simulator.fleet import generate
from analytics.simulator.sender import HttpSender, IngestError, batch_size, batches, send_history, send_live
from analytics.simulator.spec import DAY, KIND_TYPE, MIN_GAP_SECONDS, FleetSpec

SPEC = FleetSpec(clusters_per_tenant=2, nodes_per_cluster=4, days=7, seed=7)
# larger and anomaly-rich, for the rate/type statistics
BIG = FleetSpec(clusters_per_tenant=3, nodes_per_cluster=5, days=14, seed=11, anomaly_rate=0.1, incident_rate=0.2)
STEPS_PER_DAY = DAY // SPEC.step_seconds


@pytest.fixture(scope="module")
def fleet():
    return generate(SPEC)


@pytest.fixture(scope="module")
def big():
    return generate(BIG)


@pytest.fixture(scope="module")
def clean():
    return generate(SPEC.without_anomalies())


def by_node(series_list):
    nodes: dict = {}
    for s in series_list:
        nodes.setdefault(s.key.node_key, {})[s.key.metric] = s.values
    return nodes


# --------------------------------------------------------------------------- determinism

def test_same_seed_same_fleet_different_seed_different_fleet(fleet):
    again = generate(SPEC)
    for a, b in zip(fleet, again, strict=True):
        assert a.key == b.key
        assert np.array_equal(a.timestamps, b.timestamps)
        assert np.array_equal(a.values, b.values)
    assert again.ground_truth == fleet.ground_truth
    other = generate(replace(SPEC, seed=8))
    assert other.ground_truth != fleet.ground_truth
    assert all(not np.array_equal(a.values, b.values) for a, b in zip(fleet, other, strict=True))


def test_a_series_regenerated_alone_equals_the_fleet_copy(fleet):
    copies = {s.key: s for s in fleet}
    for key in [fleet.keys()[0], fleet.keys()[17], fleet.keys()[-1]]:
        alone = generate(SPEC).series(key)  # a fresh fleet, nothing else generated
        assert np.array_equal(alone.values, copies[key].values)
        assert np.array_equal(alone.timestamps, copies[key].timestamps)
    # any time range too (live mode), across noise-block boundaries
    key = fleet.keys()[5]
    for i0, i1 in [(0, 1), (1000, 1030), (1023, 2049), (5000, fleet.n_points)]:
        assert np.array_equal(generate(SPEC).values(key, i0, i1), copies[key].values[i0:i1])
    t0 = int(copies[key].timestamps[3000])
    window = {s.key: s for s in fleet.iter_series(*fleet.index_range(t0, t0 + 600))}
    assert len(window) == len(fleet)
    assert np.array_equal(window[key].values, copies[key].values[3000:3010])
    assert np.array_equal(window[key].timestamps, copies[key].timestamps[3000:3010])


def test_timestamps_are_the_step_grid(fleet):
    ts = fleet.timestamps
    assert len(ts) == 7 * STEPS_PER_DAY
    assert ts[0] == SPEC.start.timestamp()
    assert np.all(np.diff(ts) == SPEC.step_seconds)


# --------------------------------------------------------------------------- realism

def test_daily_seasonality_on_clean_series(clean):
    for s in clean:
        v = s.values
        acf = np.corrcoef(v[:-STEPS_PER_DAY], v[STEPS_PER_DAY:])[0, 1]
        half = np.corrcoef(v[: -STEPS_PER_DAY // 2], v[STEPS_PER_DAY // 2 :])[0, 1]
        assert acf > 0.5, (s.key, acf)
        assert half < acf - 0.5, (s.key, half)  # the 12 h lag is anti-correlated: a daily cycle, not a drift


def test_weekly_seasonality_weekends_are_quieter(clean):
    days = clean.timestamps // DAY
    weekday = (days + 3) % 7  # 0 = Monday
    for s in clean:
        if s.key.metric == "cpu_usage":
            assert s.values[weekday >= 5].mean() < s.values[weekday < 5].mean()


def test_metrics_move_together_within_a_node(clean):
    for node, m in by_node(clean).items():
        assert np.corrcoef(m["cpu_usage"], m["latency_ms"])[0, 1] > 0.85, node
        assert np.corrcoef(m["network_in"], m["network_out"])[0, 1] > 0.9, node


def test_nodes_differ(clean):
    cpu = [m["cpu_usage"] for m in by_node(clean).values()]
    means = [v.mean() for v in cpu]
    peaks = [int(np.argmax(hourly_profile(v, SPEC.step_seconds))) for v in cpu]
    assert len({round(x) for x in means}) == len(means)
    assert max(abs(a - b) for a in means for b in means) > 5
    assert all(9 <= p <= 17 for p in peaks), peaks  # near the 14:00 UTC peak, jittered per node


@pytest.mark.parametrize("name", ["fleet", "big"])
def test_values_are_physically_plausible(name, request):
    for s in request.getfixturevalue(name):
        v = s.values
        assert np.isfinite(v).all()
        assert (v >= 0).all(), s.key
        if s.key.metric == "cpu_usage":
            assert v.max() <= 100, s.key
        if s.key.metric == "memory_used":
            assert v.max() <= 64 * 1024**3
            assert v.min() > 1024**3
        if s.key.metric == "latency_ms":
            assert 0.1 < np.median(v) < 1000


def test_units_and_names_are_ingestible(fleet):
    from analytics.ingest import NAME_RE

    for s in fleet:
        for name in (s.key.cluster, s.key.node, s.key.metric):
            assert NAME_RE.fullmatch(name)
    assert {s.unit for s in fleet} == {"%", "bytes", "ops/s", "bytes/s", "ms"}


# --------------------------------------------------------------------------- anomalies

def test_every_type_is_present_at_the_nominal_rate(big):
    truth = big.ground_truth
    own = [a for a in truth if a.incident is None]
    eligible_days = BIG.days - BIG.clean_days
    expected = BIG.anomaly_rate * eligible_days * len(big)
    assert 0.7 * expected <= len(own) <= 1.3 * expected, (len(own), expected)
    kinds = Counter(a.kind for a in truth)
    assert set(kinds) == set(KIND_TYPE), kinds
    assert {a.type for a in truth} == {"spike", "trend", "seasonal"}
    for a in truth:
        assert a.type == KIND_TYPE[a.kind]


def test_anomalies_start_after_the_clean_history_and_never_overlap(big):
    clean_until = BIG.start + timedelta(days=BIG.clean_days)
    by_series: dict = {}
    for a in big.ground_truth:
        assert a.start >= clean_until
        assert a.start <= a.end and 0 <= a.start_index <= a.end_index < big.n_points
        assert a.start == big.when(a.start_index) and a.end == big.when(a.end_index)
        by_series.setdefault(a.key, []).append(a)
    gap = MIN_GAP_SECONDS // BIG.step_seconds
    for spans in by_series.values():
        spans.sort(key=lambda a: a.start_index)
        for prev, nxt in zip(spans, spans[1:], strict=False):
            assert nxt.start_index > prev.end_index, (prev, nxt)
            if prev.incident is None and nxt.incident is None:
                assert nxt.start_index > prev.end_index + gap


def test_anomalies_are_injected_exactly_where_the_truth_says(big):
    clean = generate(BIG.without_anomalies())
    assert clean.ground_truth == []
    checked = Counter()
    for key in big.keys():
        values, baseline = big.values(key), clean.values(key)
        assert np.array_equal(big.values(key, clean=True), baseline)
        inside = np.zeros(big.n_points, dtype=bool)
        for a in big.anomalies_for(key):
            span = slice(a.start_index, a.end_index + 1)
            inside[span] = True
            diff = values[span] - baseline[span]
            if a.kind == "spike" or (a.kind in ("trend", "level_shift") and a.magnitude > 0):
                assert (diff > 0).all() if a.kind == "spike" else (diff > 0).mean() > 0.9, a
            if a.kind == "dip" or (a.kind in ("trend", "level_shift") and a.magnitude < 0):
                assert (diff < 0).all() if a.kind == "dip" else (diff < 0).mean() > 0.9, a
            if a.kind in ("spike", "dip"):  # far outside the series' usual spread
                assert np.abs(diff).min() > 1.5 * np.std(np.diff(baseline)), a
            if a.kind == "seasonal_break":
                assert (diff != 0).mean() > 0.9
            checked[a.kind] += 1
        assert np.array_equal(values[~inside], baseline[~inside]), key
    assert set(checked) == set(KIND_TYPE)


def hourly_profile(values, step):
    per_hour = 3600 // step
    return values.reshape(-1, 24, per_hour).mean(axis=(0, 2))


def test_seasonal_break_moves_the_daily_peak_and_keeps_the_daily_mean(big):
    breaks = [a for a in big.ground_truth if a.kind == "seasonal_break"]
    assert breaks
    for a in breaks:
        values = big.values(a.key, a.start_index, a.end_index + 1)
        baseline = big.values(a.key, a.start_index, a.end_index + 1, clean=True)
        assert len(values) % STEPS_PER_DAY == 0  # whole days
        assert abs(values.mean() - baseline.mean()) / baseline.mean() < 0.03, a
        # align to UTC midnight, then compare where the daily peak is
        offset = (-a.start_index) % STEPS_PER_DAY
        whole = (len(values) - offset) // STEPS_PER_DAY * STEPS_PER_DAY
        if whole == 0:
            continue
        peak = np.argmax(hourly_profile(values[offset : offset + whole], BIG.step_seconds))
        clean_peak = np.argmax(hourly_profile(baseline[offset : offset + whole], BIG.step_seconds))
        moved = min(abs(peak - clean_peak), 24 - abs(peak - clean_peak))
        assert moved >= 3, (a, peak, clean_peak)


def test_a_cluster_incident_hits_several_nodes_at_once(big):
    incidents: dict = {}
    for a in big.ground_truth:
        if a.incident:
            incidents.setdefault(a.incident, []).append(a)
    assert incidents
    for entries in incidents.values():
        assert len({a.cluster for a in entries}) == 1
        assert len({a.node for a in entries}) >= 3
        assert len({a.kind for a in entries}) == 1
        assert max(a.start for a in entries) <= min(a.end for a in entries)  # one overlapping moment


def test_no_anomalies_when_disabled():
    fleet = generate(replace(SPEC, anomaly_rate=0, incident_rate=0))
    assert fleet.ground_truth == []


def test_spec_validation():
    with pytest.raises(ValueError, match="metrics"):
        FleetSpec(metrics=("cpu", "disk_io"))
    with pytest.raises(ValueError, match="start"):
        FleetSpec(start=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="seed"):
        FleetSpec(seed=-1)
    with pytest.raises(ValueError, match="nodes_per_cluster"):
        FleetSpec(nodes_per_cluster=0)
    assert generate(FleetSpec(metrics=("cpu_usage",), days=1)).keys()[0].metric == "cpu_usage"


# --------------------------------------------------------------------------- NAB writer

NAB_TS = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
NAB_WINDOW_TS = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}")


def test_write_nab_layout_and_labels(tmp_path, fleet):
    root = write_nab(fleet, tmp_path / "nab")
    files = sorted(p.relative_to(root / "data").as_posix() for p in (root / "data").rglob("*.csv"))
    assert files == sorted(f"{k.cluster}/{k.node}__{k.metric}.csv" for k in fleet.keys())
    key = fleet.keys()[3]
    lines = (root / "data" / f"{key.cluster}/{key.node}__{key.metric}.csv").read_text().splitlines()
    assert lines[0] == "timestamp,value"
    assert len(lines) == fleet.n_points + 1
    ts, value = lines[1].split(",")
    assert NAB_TS.fullmatch(ts) and ts == SPEC.start.strftime("%Y-%m-%d %H:%M:%S")
    assert float(value) == pytest.approx(fleet.values(key, 0, 1)[0])

    windows = json.loads((root / "labels" / "combined_windows.json").read_text())
    truth = json.loads((root / "labels" / "ground_truth.json").read_text())
    assert set(windows) == set(files) == set(truth["files"])
    total = 0
    for rel, entries in truth["files"].items():
        parsed = [(datetime.fromisoformat(s), datetime.fromisoformat(e)) for s, e in windows[rel]]
        for s, e in windows[rel]:
            assert NAB_WINDOW_TS.fullmatch(s) and NAB_WINDOW_TS.fullmatch(e)
        assert all(a[1] < b[0] for a, b in zip(parsed, parsed[1:], strict=False))  # ascending, disjoint
        for entry in entries:
            assert entry["type"] in ("spike", "trend", "seasonal")
            start, end = datetime.fromisoformat(entry["start"]), datetime.fromisoformat(entry["end"])
            assert list(entry["window"]) in windows[rel]
            ws, we = datetime.fromisoformat(entry["window"][0]), datetime.fromisoformat(entry["window"][1])
            assert ws <= start <= end <= we and (ws < start or we > end)  # widened
            total += 1
    assert total == len(fleet.ground_truth)

    # exact spans and the documented margin
    a = next(a for a in fleet.ground_truth if a.kind == "spike")
    rel = f"{a.cluster}/{a.node}__{a.metric}.csv"
    entry = next(e for e in truth["files"][rel] if e["start"] == a.start.strftime("%Y-%m-%d %H:%M:%S.%f"))
    assert entry["end"] == a.end.strftime("%Y-%m-%d %H:%M:%S.%f") and entry["kind"] == "spike"
    margin = nab_margin_seconds(a, SPEC.step_seconds)
    assert margin == 3600
    window_start = datetime.fromisoformat(entry["window"][0]).replace(tzinfo=UTC)
    assert window_start <= a.start - timedelta(seconds=margin)


def test_the_evaluation_harness_reads_the_nab_copy(tmp_path):
    harness = pytest.importorskip("analytics.core.evaluation.harness")
    fleet = generate(replace(SPEC, clusters_per_tenant=1, nodes_per_cluster=3, days=4))
    dataset = harness.load_dataset(write_nab(fleet, tmp_path))
    assert len(dataset.files) == len(fleet)
    assert dataset.windows >= 1
    assert dataset.rows == fleet.total_points


def test_multi_tenant_nab_dirs_and_truth_file(tmp_path):
    fleet = generate(replace(SPEC, tenants=2, clusters_per_tenant=1, nodes_per_cluster=3, days=3))
    root = write_nab(fleet, tmp_path / "nab")
    assert sorted(p.name for p in (root / "data").iterdir()) == ["tenant-1__cluster-1", "tenant-2__cluster-1"]
    write_truth(fleet, tmp_path / "truth.json")
    data = json.loads((tmp_path / "truth.json").read_text())
    assert data["spec"]["tenants"] == 2
    assert len(data["anomalies"]) == len(fleet.ground_truth)
    assert set(data["anomalies"][0]) >= {"tenant", "cluster", "node", "metric", "type", "start", "end"}
    assert data["anomalies"][0]["start"].endswith("Z")


# --------------------------------------------------------------------------- sending

def small_live_spec(days=0.25, step=300):
    """A small fleet whose last point is the last step boundary before now."""
    last = int(datetime.now(UTC).timestamp()) // step * step
    start = datetime.fromtimestamp(last - (int(days * DAY // step) - 1) * step, UTC)
    return FleetSpec(clusters_per_tenant=1, nodes_per_cluster=2, metrics=("cpu_usage", "memory_used"),
                     start=start, days=days, step_seconds=step, seed=3)


def test_batches_are_compact_bounded_and_time_major(fleet):
    sent = list(batches(fleet, batch_points=10_000))
    assert sum(batch_size(b) for b in sent) == fleet.total_points
    assert all(batch_size(b) <= 10_000 for b in sent)
    assert all(set(b) == {"series"} for b in sent)
    entry = sent[0]["series"][0]
    assert set(entry) == {"cluster", "node", "metric", "unit", "points"}
    assert isinstance(entry["points"][0][0], int)
    # oldest first: the first day of every series is sent before any later point
    first_day_points = STEPS_PER_DAY * len(fleet)
    seen = 0
    for b in sent:
        for s in b["series"]:
            if seen < first_day_points:
                assert s["points"][-1][0] < fleet.timestamps[STEPS_PER_DAY]
            seen += len(s["points"])
    # one series' points reassemble exactly
    key = fleet.keys()[9]
    pts = [p for b in sent for s in b["series"]
           if (s["cluster"], s["node"], s["metric"]) == (key.cluster, key.node, key.metric) for p in s["points"]]
    assert [p[0] for p in pts] == fleet.timestamps.tolist()
    assert np.allclose([p[1] for p in pts], fleet.values(key))


def test_send_history_needs_one_tenant_and_reports_counts():
    fleet = generate(replace(SPEC, tenants=2, days=1))
    with pytest.raises(ValueError, match="tenant"):
        send_history(fleet, lambda b: {})
    got = []
    report = send_history(fleet, lambda b: got.append(b) or {"accepted": batch_size(b), "new_series": 0},
                          tenant="tenant-2", batch_points=5000)
    assert report.points == report.accepted == fleet.total_points // 2
    assert report.batches == len(got) and all(batch_size(b) <= 5000 for b in got)


def test_send_live_follows_the_simulated_clock():
    fleet = generate(replace(SPEC, days=1, clusters_per_tenant=1, nodes_per_cluster=2))
    start = fleet.spec.start_epoch + 3600
    wall = [1000.0]
    sent_upto = []

    def sender(batch):
        latest = max(p[0] for s in batch["series"] for p in s["points"])
        sim_now = start + (wall[0] - 1000.0) * 60
        assert latest <= sim_now  # never ahead of simulated time
        sent_upto.append(latest)
        return {"accepted": batch_size(batch), "new_series": 0}

    def sleep(seconds):
        wall[0] += seconds

    report = send_live(fleet, sender, sim_start=start, duration=30, speed=60, clock=lambda: wall[0], sleep=sleep,
                       tick_seconds=1.0)
    assert report.accepted == 30 * len(fleet)  # 30 simulated minutes at one point a minute
    assert sent_upto == sorted(sent_upto)


class _Handler(BaseHTTPRequestHandler):
    script: list = []
    seen: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append((self.path, self.headers["Authorization"], json.loads(body)))
        status, answer = self.script.pop(0)
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 429:
            self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    _Handler.protocol_version = "HTTP/1.1"  # keep-alive
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_http_sender_retries_429_and_503_then_raises_on_4xx(http_server):
    _Handler.seen = []
    _Handler.script = [(429, {}), (503, {}), (200, {"accepted": 1, "new_series": 1}),
                       (400, {"error": {"code": "invalid_batch", "message": "point 0: value: must be finite"}})]
    sleeps = []
    sender = HttpSender(f"http://127.0.0.1:{http_server.server_port}", "fw_secret", sleep=sleeps.append)
    batch = {"series": [{"cluster": "c", "node": "n", "metric": "cpu_usage", "points": [[1, 2.0]]}]}
    assert sender(batch) == {"accepted": 1, "new_series": 1}
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0]
    with pytest.raises(IngestError) as exc:
        sender(batch)
    assert exc.value.status == 400 and "must be finite" in exc.value.body
    sender.close()
    assert [s[:2] for s in _Handler.seen] == [("/api/v1/metrics", "Bearer fw_secret")] * 4
    assert _Handler.seen[0][2] == batch


def test_http_sender_gives_up_after_its_retries(http_server):
    _Handler.script = [(503, {})] * 3
    sender = HttpSender(f"http://127.0.0.1:{http_server.server_port}", "k", retries=2, sleep=lambda s: None)
    with pytest.raises(IngestError) as exc:
        sender({"series": []})
    sender.close()
    assert exc.value.status == 503


# --------------------------------------------------------------------------- command

def test_command_writes_files_without_a_server(tmp_path):
    from django.core.management import call_command

    call_command("simulate", "--nab-out", str(tmp_path / "nab"), "--truth-out", str(tmp_path / "t.json"),
                 "--days", "3", "--clusters", "1", "--nodes", "3", "--metrics", "cpu_usage,latency_ms",
                 "--start", "2026-01-05T00:00:00Z", "--seed", "4")
    windows = json.loads((tmp_path / "nab" / "labels" / "combined_windows.json").read_text())
    assert len(windows) == 6
    spec = json.loads((tmp_path / "t.json").read_text())["spec"]
    assert spec["start"] == "2026-01-05T00:00:00Z" and spec["days"] == 3 and spec["seed"] == 4


def test_command_needs_an_api_key_to_send():
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="api-key"):
        call_command("simulate", "--days", "1")
    with pytest.raises(CommandError, match="metrics"):
        call_command("simulate", "--days", "1", "--api-key", "k", "--metrics", "cpu")


# --------------------------------------------------------------------------- the real endpoint

@pytest.mark.django_db(transaction=True)
def test_send_history_through_the_real_endpoint(api_a):
    fleet = generate(small_live_spec())
    answers = []

    def post(batch):
        response = api_a.generic("POST", "/api/v1/metrics", json.dumps(batch), content_type="application/json")
        assert response.status_code == 200, response.content
        answers.append(response.json())
        return response.json()

    report = send_history(fleet, post, batch_points=100)
    assert report.batches == len(answers) >= 3
    assert report.points == fleet.total_points == 72 * 4
    assert report.accepted == fleet.total_points
    assert report.new_series == len(fleet)
    assert sum(a["accepted"] for a in answers) == fleet.total_points
