"""Create (or reuse) the demo tenant, its login and a fresh API key, and print them."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from tenants.models import ApiKey, Membership, Plan, Tenant

DEMO_USER, DEMO_PASSWORD = "demo", "demo-password"


class Command(BaseCommand):
    help = "Set up the demo tenant and print how to use it."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args, base_url, **options):
        plan, _ = Plan.objects.get_or_create(slug="demo", defaults={"name": "Demo"})
        tenant, _ = Tenant.objects.get_or_create(slug="demo", defaults={"name": "Demo Corp", "plan": plan})
        user = get_user_model().objects.filter(username=DEMO_USER).first()
        if user is None:
            user = get_user_model().objects.create_user(DEMO_USER, password=DEMO_PASSWORD)
        Membership.objects.for_tenant(tenant).get_or_create(tenant=tenant, user=user, defaults={"role": "owner"})
        for old in ApiKey.objects.for_tenant(tenant).filter(name="demo", revoked_at=None):
            old.revoke()  # the plain key is never stored, so each run issues a new one
        _, key = ApiKey.issue(tenant, "demo", created_by=user)
        self.stdout.write(
            f"\nFleetwatch is set up on the embedded default (SQLite, in-process tasks).\n"
            f"  URL:      {base_url}/\n"
            f"  API docs: {base_url}/api/docs/\n"
            f"  login:    {DEMO_USER} / {DEMO_PASSWORD}\n"
            f"  API key:  {key}\n\n"
            f"Ingest a point:\n"
            f"  curl -s -X POST {base_url}/api/v1/metrics -H 'Authorization: Bearer {key}' "
            f"-H 'Content-Type: application/json' "
            f"-d '{{\"series\": [{{\"cluster\": \"prod\", \"node\": \"node-1\", \"metric\": \"cpu_usage\", "
            f"\"unit\": \"%\", \"points\": [['$(date +%s)', 42.5]]}}]}}'\n"
        )
