"""The operators' delivery log: dead letters first, then failing ones; a dead letter is
sent again by hand; a channel's secret is not on its page."""

import pytest
from django.contrib.auth import get_user_model

from results.notifications.models import Notification
from tenants.scoping import tenant_scope
from tests.notifications.fixtures import channel, facts, notifications, record
from tests.notifications.receivers import Receiver

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def staff_client(client):
    staff = get_user_model().objects.create_superuser(username="operator", password="pw-operator", email="ops@example.com")
    client.force_login(staff)
    return client


def test_the_delivery_log_lists_dead_letters_then_failures_first(staff_client, tenant_a):
    made = channel(tenant_a, url="http://127.0.0.1:9/hook", secret="very-secret-value")
    for incident in (1, 2, 3):
        record(tenant_a, facts(incident))
    first, second, third = notifications(tenant_a)
    with tenant_scope(tenant_a):
        Notification.objects.filter(pk=first.pk).update(status="sent", attempts=1)
        Notification.objects.filter(pk=second.pk).update(attempts=2, last_error="HTTP 502: failing")
        Notification.objects.filter(pk=third.pk).update(status="dead", attempts=8, last_error="HTTP 500: dead")
    page = staff_client.get("/admin/results/notification/").content.decode()
    assert page.index("HTTP 500: dead") < page.index("HTTP 502: failing") < page.index(f"/admin/results/notification/{first.pk}/")
    assert staff_client.get(f"/admin/results/notification/{third.pk}/change/").status_code == 200
    channel_page = staff_client.get(f"/admin/results/channel/{made.pk}/change/").content.decode()
    assert "very-secret-value" not in channel_page and made.secret_encrypted not in channel_page


def test_a_dead_letter_is_sent_again_from_the_log(staff_client, tenant_a, settings, django_capture_on_commit_callbacks):
    settings.FLEETWATCH_NOTIFY_ALLOWED_HOSTS = ["127.0.0.1"]
    receiver = Receiver(lambda number, headers, record_: (200, {}))
    try:
        channel(tenant_a, url=receiver.url)
        record(tenant_a, facts(1))
        dead = notifications(tenant_a)[0]
        with tenant_scope(tenant_a):
            Notification.objects.filter(pk=dead.pk).update(status="dead", attempts=8)
        with django_capture_on_commit_callbacks(execute=True):
            response = staff_client.post("/admin/results/notification/", {"action": "retry", "_selected_action": [dead.pk]})
        assert response.status_code == 302
        assert notifications(tenant_a)[0].status == Notification.Status.SENT
        assert [r["body"]["idempotency_key"] for r in receiver.requests] == [str(dead.idempotency_key)]
    finally:
        receiver.close()
