"""A real Alertmanager receives the alert while it fires and shows it resolved after;
e-mail reaches a local SMTP server with the summary and the link."""

import json
import socket
import subprocess
import urllib.request

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message

from results.notifications.models import Notification
from tests.notifications.fixtures import channel, facts, notifications, record
from tests.notifications.receivers import Receiver
from tests.polling import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def alertmanager(tmp_path):
    """Alertmanager on a loopback port, routing every alert at once to a local webhook
    receiver (where it reports resolves too)."""
    forwarded = Receiver(lambda number, headers, record_: (200, {}))
    port = free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text(json.dumps({  # YAML is a superset of JSON
        "route": {"receiver": "local", "group_by": ["incident_id"], "group_wait": "0s", "group_interval": "1s", "repeat_interval": "1h"},
        "receivers": [{"name": "local", "webhook_configs": [{"url": forwarded.url, "send_resolved": True}]}],
    }))
    process = subprocess.Popen(
        ["prometheus-alertmanager", f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
         f"--storage.path={tmp_path / 'data'}"], stdout=subprocess.DEVNULL, stderr=(tmp_path / "am.log").open("w"))
    base = f"http://127.0.0.1:{port}"

    def get(path):
        with urllib.request.urlopen(base + path, timeout=5) as response:
            return json.loads(response.read())

    def ready():
        try:
            return get("/api/v2/status")
        except OSError:
            assert process.poll() is None, (tmp_path / "am.log").read_text()
            return None

    wait_for(ready, 30, "Alertmanager to answer")
    yield base, get, forwarded
    process.terminate()
    process.wait(10)
    forwarded.close()


def test_alertmanager_receives_the_alert_firing_then_resolved(settings, alertmanager, tenant_a, django_capture_on_commit_callbacks):
    base, get, forwarded = alertmanager
    settings.FLEETWATCH_NOTIFY_ALLOWED_HOSTS = ["127.0.0.1"]
    channel(tenant_a, "alertmanager", url=base)
    with django_capture_on_commit_callbacks(execute=True):
        record(tenant_a, facts(7, node="db-3"))
    alerts = get("/api/v2/alerts")
    assert len(alerts) == 1
    assert alerts[0]["status"]["state"] == "active"
    assert {k: alerts[0]["labels"][k] for k in ("tenant", "cluster", "node", "severity", "incident_id")} == {
        "tenant": tenant_a.slug, "cluster": "prod", "node": "db-3", "severity": "critical", "incident_id": "7"}
    assert alerts[0]["annotations"]["dashboard"].endswith("/incidents/7")
    assert alerts[0]["annotations"]["summary"] == "cpu_usage spike on prod/db-3"
    wait_for(lambda: any(r["body"]["status"] == "firing" for r in forwarded.requests), 30, "Alertmanager to route it firing")

    with django_capture_on_commit_callbacks(execute=True):
        record(tenant_a, facts(7, "resolved", node="db-3", resolved=True))
    assert get("/api/v2/alerts") == []  # resolved alerts leave the active list
    resolved = wait_for(lambda: [r for r in forwarded.requests if r["body"]["status"] == "resolved"], 30, "the resolve")
    assert resolved[0]["body"]["alerts"][0]["labels"]["incident_id"] == "7"
    assert resolved[0]["body"]["alerts"][0]["endsAt"].startswith("2026-12-01T10:30:00")
    assert [n.status for n in notifications(tenant_a)] == [Notification.Status.SENT] * 2


class Inbox(Message):
    def __init__(self):
        super().__init__()
        self.messages = []

    def handle_message(self, message):
        self.messages.append(message)


def test_email_reaches_a_local_smtp_server_with_the_summary_and_link(settings, tenant_a, django_capture_on_commit_callbacks):
    inbox = Inbox()
    server = Controller(inbox, hostname="127.0.0.1", port=free_port())
    server.start()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
        channel(tenant_a, "email", recipients=["ops@example.com", "db@example.com"])
        with django_capture_on_commit_callbacks(execute=True):
            record(tenant_a, facts(3))
        wait_for(lambda: inbox.messages, 10, "the e-mail")
    finally:
        server.stop()
    message = inbox.messages[0]
    assert message["Subject"] == "[Fleetwatch] [FIRING] cpu_usage spike on prod/db-1"
    assert message["To"] == "ops@example.com, db@example.com"
    body = message.get_payload(decode=True).decode()
    assert "cpu_usage spike on prod/db-1" in body
    assert f"{settings.FLEETWATCH_BASE_URL}/incidents/3" in body
    assert [n.status for n in notifications(tenant_a)] == [Notification.Status.SENT]
