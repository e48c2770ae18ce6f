"""The notification API: checks that answer 400 naming the field, secrets never shown,
plan limits, the test action, the delivery log and retrying a dead letter; another
tenant's rows answer 404 to every method."""

from datetime import timedelta

import pytest
from django.utils import timezone

from results.notifications.models import Channel, Notification
from tenants.models import ApiKey
from tenants.scoping import tenant_scope
from tests.conftest import api_client_for
from tests.notifications.fixtures import channel, facts, notifications, record
from tests.notifications.receivers import Receiver

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def fields(response) -> set[str]:
    return {detail["field"].split(".")[0] for detail in response.json()["error"]["details"]}


@pytest.fixture
def receiver(settings):
    settings.FLEETWATCH_NOTIFY_ALLOWED_HOSTS = ["127.0.0.1"]
    started = Receiver(lambda number, headers, record_: (200, {}))
    yield started
    started.close()


def test_a_channel_refuses_unsafe_urls_and_never_shows_its_secret(api_a, settings):
    settings.FLEETWATCH_NOTIFY_ALLOWED_HOSTS = []
    for url in ("http://127.0.0.1:9/hook", "http://10.0.0.8/hook", "http://169.254.169.254/", "http://localhost/hook"):
        response = api_a.post("/api/v1/channels", {"name": "x", "kind": "webhook", "url": url}, format="json")
        assert response.status_code == 400 and "refused" in str(response.json()), (url, response.json())
    assert api_a.post("/api/v1/channels", {"name": "x", "kind": "webhook"}, format="json").status_code == 400
    settings.FLEETWATCH_NOTIFY_ALLOWED_HOSTS = ["127.0.0.1"]
    created = api_a.post("/api/v1/channels", {"name": "hook", "kind": "webhook", "url": "http://127.0.0.1:9/hook",
                                              "secret": "top-secret"}, format="json")
    assert created.status_code == 201, created.json()
    assert "top-secret" not in created.content.decode() and created.json()["has_secret"] is True
    shown = api_a.get(f"/api/v1/channels/{created.json()['id']}")
    assert "secret\"" not in shown.content.decode().replace("has_secret\"", "") and "top-secret" not in shown.content.decode()
    with tenant_scope(created.wsgi_request.user.tenant):
        stored = Channel.objects.get(pk=created.json()["id"]).secret_encrypted
    assert stored and "top-secret" not in stored


def test_email_recipients_are_limited_by_the_plan(api_a, tenant_a):
    tenant_a.plan.max_email_recipients = 2
    tenant_a.plan.save()
    too_many = api_a.post("/api/v1/channels", {"name": "m", "kind": "email", "recipients": ["a@x.io", "b@x.io", "c@x.io"]},
                          format="json")
    assert too_many.status_code == 400 and "recipients" in fields(too_many), too_many.json()
    bad = api_a.post("/api/v1/channels", {"name": "m", "kind": "email", "recipients": ["not-an-address"]}, format="json")
    assert bad.status_code == 400
    assert api_a.post("/api/v1/channels", {"name": "m", "kind": "email", "recipients": ["a@x.io", "b@x.io"]},
                      format="json").status_code == 201


def test_a_rule_takes_only_the_callers_channels(api_a, tenant_b, settings):
    settings.FLEETWATCH_NOTIFY_ALLOWED_HOSTS = ["127.0.0.1"]
    theirs = channel(tenant_b, url="http://127.0.0.1:9/b")
    response = api_a.post("/api/v1/alert-rules", {"name": "r", "channels": [theirs.pk]}, format="json")
    assert response.status_code == 400 and "channels" in fields(response)
    mine = api_a.post("/api/v1/channels", {"name": "a", "kind": "webhook", "url": "http://127.0.0.1:9/a"}, format="json").json()
    rule = api_a.post("/api/v1/alert-rules", {"name": "r", "channels": [mine["id"]], "min_peak_score": 0.7, "nodes": ["db-*"]},
                      format="json")
    assert rule.status_code == 201 and rule.json()["channels"] == [mine["id"]]
    assert api_a.post("/api/v1/alert-rules", {"name": "r", "min_peak_score": 1.5}, format="json").status_code == 400


def test_silences_are_checked(api_a):
    now = timezone.now()
    good = {"matchers": {"cluster": "prod-*"}, "starts_at": now.isoformat(), "ends_at": (now + timedelta(hours=1)).isoformat()}
    assert api_a.post("/api/v1/silences", good, format="json").status_code == 201
    for bad, field in (({**good, "matchers": {"colour": "red"}}, "matchers"), ({**good, "matchers": {}}, "matchers"),
                       ({**good, "ends_at": now.isoformat()}, "ends_at")):
        response = api_a.post("/api/v1/silences", bad, format="json")
        assert response.status_code == 400 and field in fields(response), response.json()


def test_the_test_action_sends_through_the_channel_and_the_log_shows_it(api_a, tenant_a, receiver,
                                                                         django_capture_on_commit_callbacks):
    made = channel(tenant_a, url=receiver.url, secret="s")
    with django_capture_on_commit_callbacks(execute=True):
        response = api_a.post(f"/api/v1/channels/{made.pk}/test")
    assert response.status_code == 202
    assert receiver.requests[0]["body"]["event"] == "test"
    log = api_a.get("/api/v1/notifications").json()["results"]
    assert [(n["event"], n["status"], len(n["attempt_log"])) for n in log] == [("test", "sent", 1)]
    assert log[0]["attempt_log"][0]["http_status"] == 200


def test_a_dead_letter_is_retried_by_hand(api_a, tenant_a, receiver, django_capture_on_commit_callbacks):
    made = channel(tenant_a, url=receiver.url)
    record(tenant_a, facts(1))
    with tenant_scope(tenant_a):
        Notification.objects.filter(channel=made).update(status=Notification.Status.DEAD, attempts=8, last_error="HTTP 500")
    dead = notifications(tenant_a)[0]
    with django_capture_on_commit_callbacks(execute=True):
        assert api_a.post(f"/api/v1/notifications/{dead.pk}/retry").status_code == 202
    assert notifications(tenant_a)[0].status == Notification.Status.SENT
    assert receiver.requests[0]["body"]["idempotency_key"] == str(dead.idempotency_key)


@pytest.mark.parametrize("route", ["channels", "alert-rules", "silences", "notifications"])
def test_another_tenants_row_is_404_to_every_method(api_a, api_b, tenant_a, route, settings):
    settings.FLEETWATCH_NOTIFY_ALLOWED_HOSTS = ["127.0.0.1"]
    made = channel(tenant_a, url="http://127.0.0.1:9/a")
    record(tenant_a, facts(1))
    now = timezone.now()
    silence = api_a.post("/api/v1/silences", {"matchers": {"node": "x"}, "starts_at": now.isoformat(),
                                              "ends_at": (now + timedelta(hours=1)).isoformat()}, format="json").json()
    with tenant_scope(tenant_a):
        ids = {"channels": made.pk, "alert-rules": made.rules.get().pk, "silences": silence["id"],
               "notifications": notifications(tenant_a)[0].pk}
    url = f"/api/v1/{route}/{ids[route]}"
    assert api_a.get(url).status_code == 200
    for method in ("get", "put", "patch", "delete"):
        theirs = getattr(api_b, method)(url, {"name": "stolen"}, format="json")
        missing = getattr(api_b, method)(f"/api/v1/{route}/987654321", {"name": "stolen"}, format="json")
        assert (theirs.status_code, theirs.content) == (missing.status_code, missing.content), method
        assert theirs.status_code in (404, 405), method
    assert api_b.get(f"/api/v1/{route}").json()["count"] == 0
    assert api_a.get(url).status_code == 200


def test_a_read_only_key_only_reads(tenant_a, owner, settings):
    settings.FLEETWATCH_NOTIFY_ALLOWED_HOSTS = ["127.0.0.1"]
    made = channel(tenant_a, url="http://127.0.0.1:9/a")
    record(tenant_a, facts(1))
    _, key = ApiKey.issue(tenant_a, "reader", role=ApiKey.Role.READ_ONLY)
    reader = api_client_for(key)
    note = notifications(tenant_a)[0]
    for route in ("channels", "alert-rules", "silences", "notifications"):
        assert reader.get(f"/api/v1/{route}").status_code == 200
    writes = [("post", "/api/v1/channels", {"name": "x", "kind": "webhook", "url": "http://127.0.0.1:9/x"}),
              ("patch", f"/api/v1/channels/{made.pk}", {"name": "renamed"}), ("delete", f"/api/v1/channels/{made.pk}", {}),
              ("post", f"/api/v1/channels/{made.pk}/test", {}), ("post", "/api/v1/alert-rules", {"name": "r"}),
              ("post", "/api/v1/silences", {"matchers": {"node": "x"}}), ("post", f"/api/v1/notifications/{note.pk}/retry", {})]
    for method, url, body in writes:
        response = getattr(reader, method)(url, body, format="json")
        assert response.status_code == 403 and "read-only" in response.json()["error"]["message"], (method, url)
    with tenant_scope(tenant_a):
        assert Channel.objects.get(pk=made.pk).name == made.name
