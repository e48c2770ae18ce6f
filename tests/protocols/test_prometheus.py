"""POST /api/v1/prometheus/write: remote write 1.0 translation, endpoint, and a real Prometheus."""

from __future__ import annotations

import shutil
import signal
import struct
import subprocess
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cramjam
import pytest
from django.test import override_settings

from analytics.models import Series
from analytics.protocols import ProtocolError, prometheus
from analytics.protocols.proto.remote_write_pb2 import MetricMetadata, WriteRequest
from tests.polling import wait_for
from tests.protocols.conftest import (
    free_port,
    now_ns,
    point_count,
    read_series,
    series_ids,
    series_of,
    stored_points,
)

URL = "/api/v1/prometheus/write"
STALE_NAN = struct.unpack("<d", struct.pack("<Q", prometheus.STALE_NAN_BITS))[0]


def now_ms() -> int:
    return now_ns() // 1_000_000


def write_request(*series: tuple[dict[str, str], list[tuple[float, int]]], metadata=()) -> WriteRequest:
    request = WriteRequest()
    for labels, samples in series:
        ts = request.timeseries.add()
        for name, value in sorted(labels.items()):
            ts.labels.add(name=name, value=value)
        for value, timestamp in samples:
            ts.samples.add(value=value, timestamp=timestamp)
    request.metadata.extend(metadata)
    return request


def snappy(request: WriteRequest) -> bytes:
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def as_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


TARGET = {"job": "node", "instance": "10.0.0.5:9100"}


# --- translation, no database ----------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "cluster", "node"),
    [
        ({"fleetwatch_cluster": "c1", "cluster": "k", "fleetwatch_node": "n1", **TARGET}, "c1", "n1"),
        ({"cluster": "k", **TARGET}, "k", "10.0.0.5:9100"),
        ({"job": "node"}, "default", "node"),
        ({"fleetwatch_node": "", "instance": "a/b", "job": "j"}, "default", "a_b"),
        ({}, "default", None),
    ],
)
def test_labels_pick_cluster_and_node_in_order(labels, cluster, node):
    t = now_ms()
    translation = prometheus.translate(write_request(({"__name__": "up", **labels}, [(1.0, t)])))
    assert list(translation.series) == [(cluster, node, "up")]


def test_other_labels_become_a_sorted_name_suffix_so_node_exporter_series_stay_distinct():
    t = now_ms()
    request = write_request(
        ({"__name__": "node_cpu_seconds_total", "mode": "idle", "cpu": "0", **TARGET}, [(100.0, t), (101.0, t + 1000)]),
        ({"__name__": "node_cpu_seconds_total", "mode": "user", "cpu": "0", **TARGET}, [(5.0, t)]),
        ({"__name__": "node_filesystem_avail_bytes", "mountpoint": "/", "device": "/dev/sda1", "fstype": "ext4",
          "__meta_x": "dropped", "empty": "", **TARGET}, [(1e9, t)]),
        ({"__name__": "up", **TARGET}, [(1.0, t + 500)]),
    )
    assert prometheus.translate(request).payload() == {"series": [
        {"cluster": "default", "node": "10.0.0.5:9100", "metric": "node_cpu_seconds_total.cpu:0.mode:idle",
         "points": [[t / 1000, 100.0], [t / 1000 + 1, 101.0]]},
        {"cluster": "default", "node": "10.0.0.5:9100", "metric": "node_cpu_seconds_total.cpu:0.mode:user", "points": [[t / 1000, 5.0]]},
        {"cluster": "default", "node": "10.0.0.5:9100",
         "metric": "node_filesystem_avail_bytes.device:_dev_sda1.fstype:ext4.mountpoint:_", "points": [[t / 1000, 1e9]]},
        {"cluster": "default", "node": "10.0.0.5:9100", "metric": "up", "points": [[(t + 500) / 1000, 1.0]]},
    ]}


def test_staleness_markers_and_other_non_finite_samples_are_skipped():
    t = now_ms()
    assert prometheus.is_stale_marker(STALE_NAN) and not prometheus.is_stale_marker(float("nan"))
    request = write_request(
        ({"__name__": "up", **TARGET}, [(1.0, t), (STALE_NAN, t + 1000)]),
        ({"__name__": "gone", **TARGET}, [(STALE_NAN, t)]),
        ({"__name__": "q", "quantile": "0.5", **TARGET}, [(float("nan"), t), (float("inf"), t + 1), (-float("inf"), t + 2)]),
    )
    translation = prometheus.translate(request)
    assert translation.skipped == 5
    assert translation.payload()["series"] == [{"cluster": "default", "node": "10.0.0.5:9100", "metric": "up", "points": [[t / 1000, 1.0]]}]


@pytest.mark.parametrize(
    ("body", "encoding", "field", "status"),
    [
        (b"plain protobuf, not snappy", "snappy", "body", 400),
        (bytes(cramjam.snappy.compress(b"\x0a\x00")), "snappy", "body", 400),  # framed format, not block
        (bytes(cramjam.snappy.compress_raw(b"\xff\xff\xff")), "snappy", "body", 400),  # snappy fine, protobuf not
        (bytes(cramjam.snappy.compress_raw(b"\0" * 5000)), "snappy", "body", 413),
        (b"", "snappy", "body", 400),
        (b"x", "", "Content-Encoding", 400),
        (b"x", "gzip", "Content-Encoding", 400),
    ],
)
def test_undecodable_bodies_raise_protocol_errors(body, encoding, field, status):
    with pytest.raises(ProtocolError) as error:
        prometheus.decode(body, encoding, limit=4096)
    assert error.value.rejected.status == status
    assert error.value.rejected.problems[0].field == field


# --- the endpoint, through the test client ---------------------------------------


def post(client, body: bytes, *, encoding: str | None = "snappy", content_type: str = "application/x-protobuf", **headers):
    if encoding is not None:
        headers["HTTP_CONTENT_ENCODING"] = encoding
    headers.setdefault("HTTP_X_PROMETHEUS_REMOTE_WRITE_VERSION", "0.1.0")
    return client.generic("POST", URL, body, content_type=content_type, **headers)


@pytest.mark.django_db
def test_a_write_request_is_stored_for_the_callers_tenant(api_a, api_b, tenant_a, tenant_b):
    t = now_ms() - 60_000
    request = write_request(
        ({"__name__": "node_load1", "fleetwatch_cluster": "prod", **TARGET}, [(0.5, t), (0.7, t + 15_000)]),
        ({"__name__": "node_cpu_seconds_total", "cpu": "1", "mode": "idle", "fleetwatch_cluster": "prod", **TARGET}, [(42.0, t)]),
    )
    response = post(api_a, snappy(request))
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 3, "new_series": 2, "skipped": 0}
    assert stored_points(tenant_a) == {
        ("prod", "10.0.0.5:9100", "node_load1", as_dt(t), 0.5),
        ("prod", "10.0.0.5:9100", "node_load1", as_dt(t + 15_000), 0.7),
        ("prod", "10.0.0.5:9100", "node_cpu_seconds_total.cpu:1.mode:idle", as_dt(t), 42.0),
    }
    assert point_count(tenant_b) == 0
    ids = series_ids(tenant_a, "prod", "10.0.0.5:9100", "node_load1")
    window = (as_dt(t - 1000), as_dt(t + 60_000))
    assert read_series(tenant_a, ids, "node_load1", *window) == [(as_dt(t), 0.5), (as_dt(t + 15_000), 0.7)]
    with pytest.raises(Series.DoesNotExist):
        read_series(tenant_b, ids, "node_load1", *window)


@pytest.mark.django_db
def test_resending_stores_no_duplicates_and_overwrites(api_a, tenant_a):
    t = now_ms() - 60_000
    body = snappy(write_request(({"__name__": "up", **TARGET}, [(1.0, t), (1.0, t + 1000)])))
    for _ in range(3):
        assert post(api_a, body).status_code == 200
    assert point_count(tenant_a) == 2
    assert post(api_a, snappy(write_request(({"__name__": "up", **TARGET}, [(0.0, t)])))).json()["new_series"] == 0
    assert ("default", "10.0.0.5:9100", "up", as_dt(t), 0.0) in stored_points(tenant_a)


@pytest.mark.django_db
def test_staleness_markers_are_skipped_not_rejected(api_a, tenant_a):
    t = now_ms() - 60_000
    request = write_request(
        ({"__name__": "up", **TARGET}, [(1.0, t), (STALE_NAN, t + 1000)]),
        ({"__name__": "gone", **TARGET}, [(STALE_NAN, t)]),
    )
    response = post(api_a, snappy(request))
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 1, "new_series": 1, "skipped": 2}
    only_stale = post(api_a, snappy(write_request(({"__name__": "gone", **TARGET}, [(STALE_NAN, t + 2000)]))))
    assert only_stale.status_code == 200 and only_stale.json()["accepted"] == 0
    assert stored_points(tenant_a) == {("default", "10.0.0.5:9100", "up", as_dt(t), 1.0)}


@pytest.mark.django_db
def test_a_metadata_only_request_is_ok_and_stores_nothing(api_a, tenant_a):
    metadata = [MetricMetadata(type=MetricMetadata.COUNTER, metric_family_name="node_cpu_seconds_total", help="CPU time")]
    response = post(api_a, snappy(write_request(metadata=metadata)))
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 0, "new_series": 0, "skipped": 0}
    assert point_count(tenant_a) == 0 and series_of(tenant_a) == {}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("labels", "samples", "field", "reason"),
    [
        ({"__name__": ":recording:rule", **TARGET}, None, "timeseries[1].metric", "starting with a letter or digit"),
        ({"instance": "x"}, None, "timeseries[1].metric", "only letters"),  # no __name__
        ({"__name__": "m"}, None, "timeseries[1].node", "required"),
        ({"__name__": "m", **TARGET}, [(1.0, 1_000)], "timeseries[1].samples[0].timestamp", "older than the hot retention"),
        ({"__name__": "m", **TARGET}, [(1.0, 10**13)], "timeseries[1].samples[0].timestamp", "too far in the future"),
    ],
)
def test_an_invalid_sample_rejects_the_whole_request_naming_the_field(api_a, tenant_a, labels, samples, field, reason):
    t = now_ms() - 60_000
    request = write_request(({"__name__": "fine", **TARGET}, [(1.0, t)]), (labels, samples or [(2.0, t)]))
    response = post(api_a, snappy(request))
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert any(d["field"] == field and reason in d["reason"] for d in error["details"]), error
    assert point_count(tenant_a) == 0


@pytest.mark.django_db
def test_characters_outside_the_charset_are_replaced(api_a, tenant_a):
    t = now_ms() - 60_000
    request = write_request(({"__name__": "bad name/é", "fleetwatch_node": "host 1", "job": "j"}, [(2.0, t)]))
    assert post(api_a, snappy(request)).status_code == 200
    assert stored_points(tenant_a) == {("default", "host_1", "bad_name__", as_dt(t), 2.0)}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "kwargs", "status", "code"),
    [
        (b"this is not snappy", {}, 400, "invalid_batch"),
        (bytes(cramjam.snappy.compress_raw(b"\xff\xff")), {}, 400, "invalid_batch"),
        (snappy(write_request()), {"encoding": None}, 400, "invalid_batch"),
        (snappy(write_request()), {"content_type": "application/json"}, 415, "unsupported_media_type"),
    ],
)
def test_malformed_requests_are_rejected_in_our_error_format(api_a, tenant_a, body, kwargs, status, code):
    response = post(api_a, body, **kwargs)
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert point_count(tenant_a) == 0


@pytest.mark.django_db
def test_wrong_key_is_a_401(tenant_a):
    from tests.conftest import api_client_for

    response = post(api_client_for("fw_wrong.key"), snappy(write_request(({"__name__": "up", **TARGET}, [(1.0, now_ms())]))))
    assert response.status_code == 401
    assert point_count(tenant_a) == 0


@pytest.mark.django_db
def test_size_limits_are_a_413(api_a, tenant_a):
    t = now_ms() - 60_000
    request = write_request(*[({"__name__": f"m{i}", **TARGET}, [(1.0, t)]) for i in range(20)])
    body = snappy(request)
    with override_settings(FLEETWATCH_MAX_BODY_BYTES=len(body) - 1):
        assert post(api_a, body).status_code == 413
    with override_settings(FLEETWATCH_MAX_BODY_BYTES=len(request.SerializeToString()) - 1):
        assert post(api_a, body).status_code == 413  # the decompressed size counts too
    with override_settings(FLEETWATCH_MAX_BATCH_POINTS=19):
        assert post(api_a, body).status_code == 413
    assert point_count(tenant_a) == 0


# --- a real Prometheus scraping a real node exporter, remote-writing to us --------

PROMETHEUS = shutil.which("prometheus")
NODE_EXPORTER = shutil.which("prometheus-node-exporter")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _serving(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def node_exporter(tmp_path):
    if NODE_EXPORTER is None:
        pytest.fail("prometheus-node-exporter is not installed (apt-get install prometheus-node-exporter)")
    port = free_port()
    log = (tmp_path / "node-exporter.log").open("wb")
    process = subprocess.Popen(
        [NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{port}", "--collector.disable-defaults",
         "--collector.cpu", "--collector.loadavg", "--collector.meminfo"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: process.poll() is not None or _serving(f"http://127.0.0.1:{port}/metrics"), timeout=20, what="node exporter")
        assert process.poll() is None, (tmp_path / "node-exporter.log").read_text()
        yield f"127.0.0.1:{port}"
    finally:
        _stop(process)
        log.close()


def start_prometheus(tmp_path: Path, target: str, write_url: str, api_key: str) -> subprocess.Popen:
    if PROMETHEUS is None:
        pytest.fail("prometheus is not installed (apt-get install prometheus)")
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  external_labels:
    fleetwatch_cluster: it-cluster
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ["{target}"]
        labels:
          fleetwatch_node: it-node-1
remote_write:
  - url: "{write_url}"
    authorization:
      credentials: "{api_key}"
    remote_timeout: 10s
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 100ms
      max_backoff: 1s
    metadata_config:
      send_interval: 2s
""")
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=debug"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    process.log_path = tmp_path / "prometheus.log"  # type: ignore[attr-defined]
    return process


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_real_prometheus_remote_writes_node_exporter_metrics(live_server, node_exporter, tmp_path, tenant_a, tenant_b, key_a):
    process = start_prometheus(tmp_path, node_exporter, f"{live_server.url}{URL}", key_a)
    wanted = {"up", "node_load1", "node_memory_MemTotal_bytes", "node_cpu_seconds_total.cpu:0.mode:idle"}

    def arrived():
        assert process.poll() is None, process.log_path.read_text()[-3000:]
        names = {m for c, n, m in series_of(tenant_a)}
        return wanted <= names

    try:
        wait_for(arrived, timeout=60, what="node exporter samples remote-written by Prometheus")
        # a later flush shows the series keep growing: poll, no fixed sleep
        before = point_count(tenant_a)
        wait_for(lambda: point_count(tenant_a) > before, timeout=30, what="more samples")
    finally:
        _stop(process)
    log = process.log_path.read_text()
    assert "non-recoverable error" not in log and "Failed to send" not in log, log[-3000:]

    series = series_of(tenant_a)
    assert {(c, n) for c, n, _ in series} == {("it-cluster", "it-node-1")}
    points = stored_points(tenant_a)
    up = sorted(ts for c, n, m, ts, v in points if m == "up" and v == 1.0)
    assert len(up) >= 2
    assert all(abs((ts - datetime.now(UTC)).total_seconds()) < 300 for ts in up)
    cpu_series = {m for _, _, m in series if m.startswith("node_cpu_seconds_total.")}
    assert {"node_cpu_seconds_total.cpu:0.mode:idle", "node_cpu_seconds_total.cpu:0.mode:user"} <= cpu_series
    assert all(v >= 0 for c, n, m, ts, v in points if m in cpu_series)
    assert point_count(tenant_b) == 0
    ids = series_ids(tenant_a, "it-cluster", "it-node-1", "node_load1")
    read = read_series(tenant_a, ids, "node_load1", datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) + timedelta(minutes=1))
    assert len(read) >= 1 and all(v >= 0 for _, v in read)
    with pytest.raises(Series.DoesNotExist):
        read_series(tenant_b, ids, "node_load1", datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC))
