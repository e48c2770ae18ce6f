"""Set up the demo on whatever database is configured: tenants with a login and an API
key, a simulated week of fleet data, and detection over it. A second run reuses the
tenants and data, tops the data up to now and detects incrementally."""

import time
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from tqdm import tqdm

from analytics.demo import DEMO_TENANTS, plan_top_up, top_up
from analytics.models import Series
from tenants.models import ApiKey, Membership, Plan, Tenant

PASSWORD = "demo-password"


def ingest_example(base_url: str, api_key: str) -> str:
    """A ready-to-paste curl that posts a point to a node the demo has, stamped when it runs."""
    return (
        f"curl -s -X POST {base_url}/api/v1/metrics -H 'Authorization: Bearer {api_key}' "
        "-H 'Content-Type: application/json' "
        "-d '{\"series\": [{\"cluster\": \"cluster-1\", \"node\": \"node-01\", \"metric\": \"cpu_usage\", "
        "\"unit\": \"%\", \"points\": [['\"$(date -u +%s)\"', 42.5]]}]}'"
    )


class Command(BaseCommand):
    help = "Create (or reuse) the demo tenants, simulate their fleets, run detection, print how to log in."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--days", type=float, default=7.0, help="history to simulate on the first run")
        parser.add_argument("--serve", metavar="ADDR:PORT",
                            help="then serve there, the simulator sending every minute and detection on schedule (manage.py serve)")
        parser.add_argument("--migrate", action="store_true", help="apply the migrations first (one start-up less)")
        parser.add_argument("--started", type=float,
                            help="epoch seconds the set-up started (scripts/demo.sh), for the time to ready")

    def handle(self, *args, base_url, days, serve, migrate, started, **options):
        started = started or time.time()
        if migrate:
            call_command("migrate", interactive=False, verbosity=0)
        plan, _ = Plan.objects.get_or_create(
            slug="demo", defaults={"name": "Demo", "hot_retention_days": 8, "detection_interval_minutes": 5}
        )
        if not get_user_model().objects.filter(username="operator").exists():
            get_user_model().objects.create_user("operator", password=PASSWORD, is_staff=True, is_superuser=True)
        keys = {}
        for slug, spec in DEMO_TENANTS.items():
            tenant, _ = Tenant.objects.get_or_create(slug=slug, defaults={"name": spec.name, "plan": plan})
            user = get_user_model().objects.filter(username=spec.login).first() or get_user_model().objects.create_user(
                spec.login, password=PASSWORD
            )
            Membership.objects.for_tenant(tenant).get_or_create(tenant=tenant, user=user, defaults={"role": "owner"})
            for old in ApiKey.objects.for_tenant(tenant).filter(name="demo", revoked_at=None):
                old.revoke()  # the plain key is never stored, so each run issues a new one
            keys[slug] = ApiKey.issue(tenant, "demo", created_by=user)[1]
            first_run = not Series.objects.for_tenant(tenant).exists()
            self.simulate(tenant, days)
            detect = ["detect", "--tenant", slug]
            if serve:  # serve sooner: the serving process detects (manage.py serve) while the pages load
                detect.append("--background")
            if first_run:
                detect += ["--from", (datetime.now(UTC) - timedelta(days=days)).isoformat()]
            call_command(*detect, stdout=self.stdout)
        self.stdout.write(
            f"\nFleetwatch demo is ready ({time.time() - started:.0f} s since the set-up started).\n"
            f"  dashboard: {base_url}/   (login demo / {PASSWORD}; second tenant: globex / {PASSWORD})\n"
            f"  admin:     {base_url}/admin/   (operators' console: operator / {PASSWORD})\n"
            f"  API docs:  {base_url}/api/docs/\n"
            f"  API key:   {keys['demo']}\n\n"
            f"Try the API:\n"
            f"  curl -s {base_url}/api/v1/rankings -H 'Authorization: Bearer {keys['demo']}'\n"
            f"  {ingest_example(base_url, keys['demo'])}\n"
            + ("\nDetection over the simulated data runs in the background now: anomalies and scores appear "
               "on the pages within a minute or two.\n" if serve else "")
        )
        if serve:
            call_command("serve", serve, simulate=True)

    def simulate(self, tenant: Tenant, days: float) -> None:
        """Send what the store lacks of the tenant's simulated fleet (``analytics.demo``)."""
        plan = plan_top_up(tenant, days)
        with tqdm(total=plan.points, desc=f"{tenant.slug}: ingest", unit="pt", unit_scale=True) as bar:
            report = top_up(tenant, plan=plan, progress=bar.update)
        self.stdout.write(f"{tenant.slug}: {report.accepted} points stored, {report.new_series} new series")
