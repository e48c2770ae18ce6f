"""The alerting page: owners manage channels, rules and silences; members may only add
silences; viewers only look; bad input is shown, nothing half-stored; another tenant's
rows answer 404."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from results.incidents.build import build_incidents
from results.models import Incident
from results.notifications.models import AlertRule, Channel, Silence
from tenants.models import Membership
from tenants.scoping import tenant_scope
from tests.conftest import add_member
from tests.incidents.seed import T0, anomaly
from tests.notifications.fixtures import channel

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def silence_form(hours: int = 1) -> dict:
    now = timezone.now()
    return {"form": "silence", "matchers": "cluster=prod-*, node=db-*", "starts_at": now.isoformat(),
            "ends_at": (now + timedelta(hours=hours)).isoformat(), "comment": "maintenance"}


def rows(tenant, model) -> int:
    with tenant_scope(tenant):
        return model.objects.count()


def test_an_owner_adds_channels_rules_and_silences(owner, tenant_a, settings):
    settings.FLEETWATCH_NOTIFY_ALLOWED_HOSTS = ["127.0.0.1"]
    client = logged_in(owner)
    assert client.get("/alerting").status_code == 200
    response = client.post("/alerting", {"form": "channel", "name": "hook", "kind": "webhook", "url": "http://127.0.0.1:9/h",
                                         "secret": "page-secret", "enabled": "on"})
    assert response.status_code == 302, response.content.decode()[:2000]
    with tenant_scope(tenant_a):
        made = Channel.objects.get()
    assert client.post("/alerting", {"form": "rule", "name": "db", "min_peak_score": "0.9", "nodes": "db-*, cache-*",
                                     "channels": [made.pk], "enabled": "on"}).status_code == 302
    with tenant_scope(tenant_a):
        rule = AlertRule.objects.get()
        assert (rule.nodes, list(rule.channels.all())) == (["db-*", "cache-*"], [made])
    assert client.post("/alerting", silence_form()).status_code == 302
    with tenant_scope(tenant_a):
        assert Silence.objects.get().matchers == {"cluster": "prod-*", "node": "db-*"}
    page = client.get("/alerting").content.decode()
    assert "page-secret" not in page and "set (hidden)" in page and "cluster=prod-*" in page


def test_bad_input_is_shown_and_nothing_is_stored(owner, tenant_a, settings):
    settings.FLEETWATCH_NOTIFY_ALLOWED_HOSTS = []
    client = logged_in(owner)
    refused = client.post("/alerting", {"form": "channel", "name": "x", "kind": "webhook", "url": "http://169.254.169.254/"})
    assert refused.status_code == 400 and "link-local" in refused.content.decode()
    assert client.post("/alerting", {**silence_form(), "matchers": "colour=red"}).status_code == 400
    assert client.post("/alerting", silence_form(hours=-1)).status_code == 400
    assert rows(tenant_a, Channel) == rows(tenant_a, Silence) == 0


def test_members_may_only_add_silences_and_viewers_nothing(tenant_a):
    member = logged_in(add_member(tenant_a, "bob", Membership.Role.MEMBER))
    viewer = logged_in(add_member(tenant_a, "vera", Membership.Role.VIEWER))
    made = channel(tenant_a, url="http://127.0.0.1:9/h")
    assert member.post("/alerting", {"form": "channel", "name": "x", "kind": "webhook", "url": "https://93.184.215.14/"}).status_code == 403
    assert member.post("/alerting", {"form": "rule", "name": "r"}).status_code == 403
    assert member.post("/alerting", silence_form()).status_code == 302
    assert member.post(f"/alerting/channels/{made.pk}/delete").status_code == 403
    assert viewer.post("/alerting", silence_form()).status_code == 403
    assert "silence-form" not in viewer.get("/alerting").content.decode()
    assert (rows(tenant_a, Channel), rows(tenant_a, AlertRule), rows(tenant_a, Silence)) == (1, 1, 1)


def test_an_owner_removes_rows_and_another_tenants_are_404(owner, outsider, tenant_a):
    made = channel(tenant_a, url="http://127.0.0.1:9/h")
    with tenant_scope(tenant_a):
        rule = made.rules.get()
    assert logged_in(outsider).post(f"/alerting/channels/{made.pk}/delete").status_code == 404
    assert logged_in(outsider).post(f"/alerting/rules/{rule.pk}/delete").status_code == 404
    client = logged_in(owner)
    assert client.post(f"/alerting/rules/{rule.pk}/delete").status_code == 302
    assert client.post(f"/alerting/channels/{made.pk}/delete").status_code == 302
    assert rows(tenant_a, Channel) == rows(tenant_a, AlertRule) == 0


def test_the_incident_page_lists_its_notifications(owner, tenant_a):
    channel(tenant_a, url="http://127.0.0.1:9/h")
    anomaly(tenant_a, "prod", "db-1", "cpu_usage", start_min=0, score=0.95)
    build_incidents(tenant_a.pk, T0 - timedelta(hours=1), T0 + timedelta(hours=3))
    incident = Incident.objects.for_tenant(tenant_a).get()
    page = logged_in(owner).get(f"/incidents/{incident.pk}").content.decode()
    table = page[page.index('data-testid="incident-notifications"'):]
    assert "opened" in table and "webhook channel (webhook)" in table and "pending" in table
