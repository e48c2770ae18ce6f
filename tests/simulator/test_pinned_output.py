"""The simulator's output is pinned: the same spec gives the same bytes as before.

The digests below were computed with the single-module simulator (analytics/simulator.py
at commit a0a5486) before it became a package; any change to what a seed produces
(values, ground truth, NAB files, ingestion bodies) fails here. A deliberate change of
the model must say so and re-pin them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from analytics.simulator.export import write_nab
from analytics.simulator.fleet import generate
from analytics.simulator.sender import batches
from analytics.simulator.spec import FleetSpec


def data_digest(spec: FleetSpec) -> str:
    """Keys, timestamps and values of every series, then the ground truth."""
    fleet = generate(spec)
    h = hashlib.sha256()
    for series in fleet.iter_series():
        h.update(str(series.key).encode())
        h.update(series.timestamps.tobytes())
        h.update(series.values.tobytes())
    h.update(json.dumps([a.as_dict() for a in fleet.ground_truth], sort_keys=True).encode())
    return h.hexdigest()


@pytest.mark.parametrize(("spec", "digest"), [
    (FleetSpec(), "4c25852ed162ba44230dfcd29b2a27b38fb856d294b5a520c8ea9d9a26a19390"),
    (FleetSpec(clusters_per_tenant=2, nodes_per_cluster=4, days=7, seed=7),
     "2512d6c1605644d4f1a150927b1ebd97cc3533a4fc974005f8d00e08c1270b22"),
    (FleetSpec(clusters_per_tenant=3, nodes_per_cluster=4, days=7, seed=101),
     "0fe32cdfa44d8979ed9eccdf4eb34f71db0f598c823f317651d083b48d649fc4"),
    (FleetSpec(tenants=2, clusters_per_tenant=1, nodes_per_cluster=2, days=4, seed=3, step_seconds=300,
               anomaly_rate=0.5, incident_rate=0.5),
     "bbfb6bcccdd0961f927ea660a1172474aff621b518573a1b023d70d51a6bb915"),
], ids=["default", "seed7", "seed101", "two-tenants-5min"])
def test_a_seed_gives_the_data_it_gave_before(spec, digest):
    assert data_digest(spec) == digest


def test_nab_files_and_ingestion_bodies_are_what_they_were(tmp_path):
    fleet = generate(FleetSpec(tenants=2, clusters_per_tenant=1, nodes_per_cluster=2, days=3, seed=5, anomaly_rate=0.4))
    write_nab(fleet, tmp_path)
    h = hashlib.sha256()
    for path in sorted(Path(tmp_path).rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(tmp_path)).encode())
            h.update(path.read_bytes())
    for body in batches(fleet, 0, 3000, batch_points=4000):
        h.update(json.dumps(body, sort_keys=True).encode())
    assert h.hexdigest() == "674c81abe6b4845610be887177be745fbed54de98ab6a9c7bb04c05a35d3c0bf"
