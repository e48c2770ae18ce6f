"""PostgreSQL stopped and started again while a client streams batches to the real
ingestion endpoint (gunicorn, 2 workers, production settings).

The client does not retry: every answer is recorded. While the database is down each
batch must get a clear 503 (JSON naming the cause, Retry-After); one retry of each
failed batch after the restart must succeed; and the stored point count must equal the
points of the accepted answers exactly (nothing lost, nothing duplicated).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pytest

from tests.faults.services import (
    make_tenant,
    post_json,
    product_env,
    start_gunicorn,
    wait_for,
)

pytestmark = pytest.mark.integration

SERIES = 5  # series per batch
POINTS = 20  # points per series per batch: 100 distinct points a batch


@dataclass
class Answer:
    batch: int
    sent: float
    answered: float
    status: int
    body: dict
    headers: dict


def batch_body(i: int, base: int) -> dict:
    """Batch ``i``: its own 100 timestamps, so no two batches share a point."""
    t0 = base + i * POINTS
    return {"series": [{"cluster": "prod", "node": f"node-{n}", "metric": "cpu_usage", "unit": "%",
                        "points": [[t0 + k, float(i + k + n)] for k in range(POINTS)]} for n in range(SERIES)]}


class Client(threading.Thread):
    """Sends batch 0, 1, 2, ... as fast as answers come back, never retrying."""

    def __init__(self, base_url: str, key: str) -> None:
        super().__init__(daemon=True)
        self.base_url, self.key = base_url, key
        self.base = int(time.time()) - 3 * 3600
        self.answers: list[Answer] = []
        self.halt = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.halt.is_set():
            sent = time.monotonic()
            status, body, headers = post_json(self.base_url, "/api/v1/metrics", batch_body(i, self.base), self.key)
            self.answers.append(Answer(i, sent, time.monotonic(), status, body, headers))
            i += 1

    def count(self, status: int, after: float = 0.0) -> int:
        return sum(1 for a in list(self.answers) if a.status == status and a.sent >= after)


@pytest.fixture
def web(fresh_database, tmp_path):
    env = product_env(fresh_database, DJANGO_DEBUG="false", DJANGO_SECRET_KEY="faults-" + "x" * 50,
                      FLEETWATCH_INGEST_RATE="1000000/min", FLEETWATCH_API_RATE="1000000/min")
    tenant_id, key = make_tenant(env, "acme")
    server, base_url = start_gunicorn(env, tmp_path, workers=2)
    yield base_url, key, tenant_id, server, fresh_database.rsplit("/", 1)[1]
    server.stop()


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_ingestion_survives_a_postgresql_restart(private_pg, web, mode):
    base_url, key, tenant_id, server, dbname = web
    client = Client(base_url, key)
    client.start()
    try:
        wait_for(lambda: client.count(200) >= 10, 60, "10 batches accepted before the fault")
        private_pg.stop(mode)
        down_from = time.monotonic()
        wait_for(lambda: client.count(503, after=down_from) >= 5, 30, "5 batches answered 503 while PostgreSQL is down")
        down_until = time.monotonic()
        private_pg.start()
        up_at = time.monotonic()
        wait_for(lambda: client.count(200, after=up_at) >= 10, 60, "10 batches accepted after the restart")
    finally:
        client.halt.set()
        client.join(timeout=60)
    answers = client.answers
    assert server.alive(), server.output()

    # Nothing but success or a clear 503 (no 500, no HTML page, no dropped connection).
    assert {a.status for a in answers} <= {200, 503}, [(a.status, a.body) for a in answers if a.status not in (200, 503)]
    while_down = [a for a in answers if a.sent >= down_from and a.answered <= down_until]
    assert while_down and all(a.status == 503 for a in while_down)
    failed = [a for a in answers if a.status == 503]
    for a in failed:
        assert a.body["error"]["code"] == "database_unavailable", a.body
        assert "database is unavailable" in a.body["error"]["message"]
        assert int(a.headers["Retry-After"]) > 0

    # One retry of each failed batch succeeds now that PostgreSQL is back.
    retried = {}
    for a in failed:
        status, body, _ = post_json(base_url, "/api/v1/metrics", batch_body(a.batch, client.base), key)
        assert status == 200, (a.batch, status, body)
        retried[a.batch] = body["accepted"]

    # Stored points == accepted points, exactly; and == every point the client sent.
    accepted = sum(a.body["accepted"] for a in answers if a.status == 200) + sum(retried.values())
    stored = private_pg.query("SELECT count(*) FROM analytics_point WHERE tenant_id = %s", (tenant_id,), dbname=dbname)[0][0]
    assert accepted == len(answers) * SERIES * POINTS
    assert stored == accepted, (stored, accepted, len(failed))
    print(f"\n[{mode}] batches {len(answers)}, 503 answers {len(failed)} (all retried: 200), "
          f"down {down_until - down_from:.2f} s, points stored {stored} = accepted {accepted}")

