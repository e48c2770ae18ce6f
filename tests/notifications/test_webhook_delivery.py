"""Webhook delivery through a real Celery worker: signed, in order, at least once (the
idempotency key lets the receiver drop duplicates), with back-off, dead letters, and
nothing lost when the worker is SIGKILLed mid-delivery."""

import threading

import pytest
from django.db import connection

from results.notifications.models import DeliveryAttempt, Notification
from results.tasks import sweep_notifications
from tenants.scoping import tenant_scope
from tests.notifications.fixtures import channel, facts, notifications, record
from tests.notifications.receivers import Receiver, accepted_keys, signed_correctly
from tests.polling import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]
SECRET = "webhook-signing-secret"
WORKER_ENV = {"FLEETWATCH_NOTIFY_ALLOWED_HOSTS": "127.0.0.1", "FLEETWATCH_NOTIFY_RETRY_BASE_MS": "50",
              "FLEETWATCH_NOTIFY_RETRY_MAX_MS": "400"}
EVENTS = [facts(1, "opened"), facts(1, "updated"), facts(1, "acknowledged"), facts(1, "resolved", resolved=True)]


@pytest.fixture
def receivers():
    started: list[Receiver] = []

    def start(answer):
        receiver = Receiver(answer)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.close()


def settled(tenant) -> bool:
    return all(n.status in (Notification.Status.SENT, Notification.Status.DEAD) for n in notifications(tenant))


def keys_in_order(tenant) -> list[str]:
    return [str(n.idempotency_key) for n in notifications(tenant) if n.status == Notification.Status.SENT]


def test_every_notification_arrives_in_order_through_failures(real_celery, receivers, tenant_a):
    """The receiver answers 500 to its first 5 requests: each failure waits its back-off and
    holds back the later notifications; all arrive, in order, each key once after de-dup."""
    def answer(number, headers, record_):
        return (500 if number < 5 else 200 if signed_correctly(record_, SECRET) else 401), {}

    receiver = receivers(answer)
    channel(tenant_a, url=receiver.url, secret=SECRET)
    real_celery("worker", "--concurrency", "2", **WORKER_ENV)
    for event in EVENTS:
        record(tenant_a, event)
    wait_for(lambda: settled(tenant_a), 60, "every notification to be sent")
    assert accepted_keys(receiver) == keys_in_order(tenant_a)
    assert len(keys_in_order(tenant_a)) == len(EVENTS)
    assert [r["body"]["event"] for r in receiver.requests if r["status"] == 200] == ["opened", "updated", "acknowledged", "resolved"]
    assert all(r["status"] in (500, 200) for r in receiver.requests)  # never a bad signature
    with tenant_scope(tenant_a):
        failures = list(DeliveryAttempt.objects.filter(ok=False).values_list("http_status", flat=True))
        assert failures == [500] * 5
        assert DeliveryAttempt.objects.filter(ok=True, http_status=200).count() == len(EVENTS)
        assert all(a.latency_ms > 0 for a in DeliveryAttempt.objects.all())


def test_past_the_cap_a_dead_letter_and_the_next_still_arrives(real_celery, receivers, tenant_a):
    def answer(number, headers, record_):
        return (503 if record_["body"]["event"] == "updated" else 200), {}

    receiver = receivers(answer)
    channel(tenant_a, url=receiver.url, secret=SECRET)
    real_celery("worker", **WORKER_ENV, FLEETWATCH_NOTIFY_MAX_ATTEMPTS="3")
    for event in EVENTS[:3]:
        record(tenant_a, event)
    wait_for(lambda: settled(tenant_a), 60, "every notification to be sent or dead")
    assert [(n.event, n.status, n.attempts) for n in notifications(tenant_a)] == [
        ("opened", "sent", 1), ("updated", "dead", 3), ("acknowledged", "sent", 1)]
    assert [r["body"]["event"] for r in receiver.requests] == ["opened", "updated", "updated", "updated", "acknowledged"]
    assert "HTTP 503" in notifications(tenant_a)[1].last_error


def advisory_locks_held() -> int:
    """Advisory locks held in the test database (pg_locks lists every database's)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                       "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")
        return cursor.fetchone()[0]


def test_a_worker_killed_mid_delivery_loses_nothing(real_celery, receivers, tenant_a):
    """The receiver holds the first request until the worker is SIGKILLed: the send's
    transaction dies with it, the notification is still owed, and a new worker (after the
    sweep) sends it again with the same key, then the rest in order."""
    arrived, release = threading.Event(), threading.Event()

    def answer(number, headers, record_):
        if number == 0:
            arrived.set()
            release.wait(30)
        return 200, {}

    receiver = receivers(answer)
    channel(tenant_a, url=receiver.url, secret=SECRET)
    first = real_celery("worker", **WORKER_ENV)
    for event in EVENTS:
        record(tenant_a, event)
    assert arrived.wait(60), first.output()[-2000:]
    first.kill()
    release.set()
    wait_for(lambda: advisory_locks_held() == 0, 30, "the killed worker's transaction to end")
    assert [n.status for n in notifications(tenant_a)] == ["pending"] * len(EVENTS)
    real_celery("worker", **WORKER_ENV)
    sweep_notifications.apply_async()
    wait_for(lambda: settled(tenant_a), 60, "every notification to be sent")
    assert receiver.requests[0]["body"]["idempotency_key"] == receiver.requests[1]["body"]["idempotency_key"]
    assert accepted_keys(receiver) == keys_in_order(tenant_a)
    assert len(accepted_keys(receiver)) == len(EVENTS)
