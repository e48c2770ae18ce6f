"""Set up the demo on whatever database is configured: tenants with a login and an API
key, a simulated week of fleet data, and detection over it. A second run reuses the
tenants and data, tops the data up to now and detects incrementally."""

import math
import time
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from tqdm import tqdm

from analytics.ingestion import store_batch
from analytics.models import Series
from analytics.simulator.fleet import generate
from analytics.simulator.sender import send_history
from analytics.simulator.spec import FleetSpec
from tenants.models import ApiKey, Membership, Plan, Tenant

DAY = 86_400
STEP = 60
# slug -> (name, login, clusters, nodes per cluster, seed)
DEMO_TENANTS = {
    "demo": ("Demo Corp", "demo", 2, 4, 1),
    "globex": ("Globex (a second tenant, to show isolation)", "globex", 1, 2, 2),
}
PASSWORD = "demo-password"


class Command(BaseCommand):
    help = "Create (or reuse) the demo tenants, simulate their fleets, run detection, print how to log in."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--days", type=float, default=7.0, help="history to simulate on the first run")

    def handle(self, *args, base_url, days, **options):
        plan, _ = Plan.objects.get_or_create(
            slug="demo", defaults={"name": "Demo", "hot_retention_days": 8, "detection_interval_minutes": 5}
        )
        if not get_user_model().objects.filter(username="operator").exists():
            get_user_model().objects.create_user("operator", password=PASSWORD, is_staff=True, is_superuser=True)
        keys = {}
        for slug, (name, login, clusters, nodes, seed) in DEMO_TENANTS.items():
            tenant, _ = Tenant.objects.get_or_create(slug=slug, defaults={"name": name, "plan": plan})
            user = get_user_model().objects.filter(username=login).first() or get_user_model().objects.create_user(
                login, password=PASSWORD
            )
            Membership.objects.for_tenant(tenant).get_or_create(tenant=tenant, user=user, defaults={"role": "owner"})
            for old in ApiKey.objects.for_tenant(tenant).filter(name="demo", revoked_at=None):
                old.revoke()  # the plain key is never stored, so each run issues a new one
            keys[slug] = ApiKey.issue(tenant, "demo", created_by=user)[1]
            first_run = not Series.objects.for_tenant(tenant).exists()
            self.simulate(tenant, clusters, nodes, seed, days if first_run else None)
            detect = ["detect", "--tenant", slug]
            if first_run:
                detect += ["--from", (datetime.now(UTC) - timedelta(days=days)).isoformat()]
            call_command(*detect, stdout=self.stdout)
        self.stdout.write(
            f"\nFleetwatch demo is ready.\n"
            f"  dashboard: {base_url}/   (login demo / {PASSWORD}; second tenant: globex / {PASSWORD})\n"
            f"  admin:     {base_url}/admin/   (operators' console: operator / {PASSWORD})\n"
            f"  API docs:  {base_url}/api/docs/\n"
            f"  API key:   {keys['demo']}\n\n"
            f"Try the API:\n"
            f"  curl -s {base_url}/api/v1/rankings -H 'Authorization: Bearer {keys['demo']}'\n"
            f"  curl -s -X POST {base_url}/api/v1/metrics -H 'Authorization: Bearer {keys['demo']}' "
            f"-H 'Content-Type: application/json' "
            f"-d '{{\"series\": [{{\"cluster\": \"cluster-1\", \"node\": \"node-1\", \"metric\": \"cpu_usage\", "
            f"\"unit\": \"%\", \"points\": [['$(date +%s)', 42.5]]}}]}}'\n"
        )

    def simulate(self, tenant: Tenant, clusters: int, nodes: int, seed: int, days: float | None) -> None:
        """Send what the store lacks of a simulated fleet: the last ``days`` the first
        time, the points since the newest stored one afterwards. The fleet starts on a
        week boundary, so a rerun regenerates the same values for the same times."""
        now = math.floor(time.time() / STEP) * STEP
        week = 7 * DAY
        anchor = (now - (days or 7.0) * DAY) // week * week - week
        fleet = generate(FleetSpec(
            clusters_per_tenant=clusters, nodes_per_cluster=nodes, seed=seed, step_seconds=STEP,
            start=datetime.fromtimestamp(anchor, UTC), days=(now - anchor) / DAY + 1, tenant_prefix=tenant.slug,
        ))
        newest = Series.objects.for_tenant(tenant).order_by("-last_point_at").values_list("last_point_at", flat=True).first()
        t0 = newest.timestamp() + STEP if newest else now - (days or 7.0) * DAY
        i0, i1 = fleet.index_range(t0, now + STEP)
        with tqdm(total=(i1 - i0) * len(fleet), desc=f"{tenant.slug}: ingest", unit="pt", unit_scale=True) as bar:
            report = send_history(fleet, lambda body: store_batch(tenant, body), t0=t0, t1=now + STEP, progress=bar.update)
        self.stdout.write(f"{tenant.slug}: {report.accepted} points stored, {report.new_series} new series")
