"""Notification delivery throughput (a script, not a test): 1,000 webhook notifications
(250 incidents x opened, updated, acknowledged, resolved) written to the outbox (one
transaction, timed on its own), then delivered by a real Celery worker (``--concurrency
2``) to a local signed-webhook receiver, in order per incident. Measures the wall time
from the commit (which enqueues the delivery tasks) until every notification is marked
sent. Target: < 30 s.

    .venv/bin/python bench/bench_notifications.py [--incidents 250] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _common as c

TARGET_S = 30.0
EVENTS = ("opened", "updated", "acknowledged", "resolved")


def start_receiver() -> tuple[ThreadingHTTPServer, set[str]]:
    keys: set[str] = set()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the standard library's name
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock:
                keys.add(self.headers["Idempotency-Key"])
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, keys


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=250)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--quick", action="store_true", help="50 incidents (200 notifications)")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--json-out")
    args = parser.parse_args(argv)
    if args.quick:
        args.incidents = 50
    os.environ["FLEETWATCH_NOTIFY_ALLOWED_HOSTS"] = "127.0.0.1"
    url = c.setup_django("notifications", broker=True)
    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    from config.celery import app
    from results.notifications import crypto, outbox
    from results.notifications.facts import IncidentFacts
    from results.notifications.models import AlertRule, Channel, Notification
    from tenants.scoping import tenant_scope

    server, keys = start_receiver()
    tenant = c.make_tenant()
    total = args.incidents * len(EVENTS)
    result: dict = {"benchmark": "notifications", "machine": c.machine(), "load_before": c.loadavg(),
                    "notifications": total, "worker_concurrency": args.concurrency}
    app.control.purge()
    worker = c.Worker(concurrency=args.concurrency)
    try:
        worker.wait_ready(app)
        with tenant_scope(tenant):
            channel = Channel.objects.create(tenant=tenant, name="bench", kind="webhook", url=f"http://127.0.0.1:{server.server_address[1]}/",
                                             secret_encrypted=crypto.encrypt("bench-secret"))
            AlertRule.objects.create(tenant=tenant, name="all").channels.add(channel)
            started_at = timezone.now() - timedelta(minutes=30)
            t0 = time.perf_counter()
            with transaction.atomic():  # the delivery tasks are enqueued when this commits
                for event in EVENTS:
                    for incident in range(1, args.incidents + 1):
                        facts = IncidentFacts(incident_id=incident, event=event, cluster="prod", node=f"node-{incident}",
                                              severity="critical", peak_score=0.9, started_at=started_at, summary=f"incident {incident}",
                                              metrics=("cpu_usage",), resolved_at=timezone.now() if event == "resolved" else None)
                        outbox.record(tenant, facts)
                written = time.perf_counter() - t0
            t0 = time.perf_counter()
            deadline = time.monotonic() + args.timeout
            while Notification.objects.filter(status=Notification.Status.SENT).count() < total:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"timed out; worker log: {worker.log}")
                time.sleep(0.1)  # polling the outcome of a benchmark, not synchronising a test
            wall = time.perf_counter() - t0
        result.update(outbox_write_s=round(written, 2), wall_s=round(wall, 2), per_s=round(total / wall, 1),
                      received_unique_keys=len(keys), target_s=TARGET_S, met=wall < TARGET_S, load_after=c.loadavg())
        print(f"  {total} notifications: outbox writes {written:.1f} s; from the commit, all sent after {wall:.1f} s "
              f"({total / wall:,.0f}/s; target < {TARGET_S:.0f} s: {'met' if wall < TARGET_S else 'MISSED'}); "
              f"receiver saw {len(keys)} distinct keys")
    finally:
        worker.stop()
        app.control.purge()
        server.shutdown()
        if not args.keep:
            c.drop_database(url)
    return c.emit(result, args.json_out)


if __name__ == "__main__":
    main()
