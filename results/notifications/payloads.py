"""What each kind of channel is sent about one notification (pure functions)."""

from __future__ import annotations

import hashlib
import hmac
import json

from results.notifications.facts import IncidentFacts

ALERT_NAME = "FleetwatchIncident"
SIGNATURE_HEADER = "X-Fleetwatch-Signature"
TIMESTAMP_HEADER = "X-Fleetwatch-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def headline(facts: IncidentFacts) -> str:
    state = "RESOLVED" if not facts.firing else ("TEST" if facts.event == "test" else "FIRING")
    return f"[{state}] {facts.summary}"


def alertmanager_alerts(tenant_slug: str, facts: IncidentFacts) -> list[dict]:
    """Alertmanager API v2 ``POST /api/v2/alerts`` body: one alert per incident, identified
    by its labels; endsAt once resolved (Alertmanager then shows it resolved)."""
    alert = {
        "labels": {
            "alertname": ALERT_NAME,
            "tenant": tenant_slug,
            "cluster": facts.cluster,
            "node": facts.node,
            "severity": facts.severity,
            "incident_id": str(facts.incident_id),
        },
        "annotations": {"summary": facts.summary, "explanation": facts.explanation, "dashboard": facts.link},
        "startsAt": facts.started_at.isoformat(),
        "generatorURL": facts.link,
    }
    if facts.resolved_at is not None:
        alert["endsAt"] = facts.resolved_at.isoformat()
    return [alert]


def webhook_body(tenant_slug: str, facts: IncidentFacts, key: str, sequence: int) -> dict:
    return {"idempotency_key": key, "sequence": sequence, "tenant": tenant_slug, "event": facts.event,
            "status": "firing" if facts.firing else "resolved", "incident": facts.to_json()}


def slack_body(facts: IncidentFacts) -> dict:
    """Slack's incoming-webhook format (also understood by Mattermost and Rocket.Chat)."""
    text = f"{headline(facts)}\n{facts.explanation}\n<{facts.link}|Open in Fleetwatch>".replace("\n\n", "\n")
    return {"text": text}


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>.<body>", so a captured request cannot be replayed
    with another timestamp; receivers compare it in constant time."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def encode(body: object) -> bytes:
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def email_text(facts: IncidentFacts) -> tuple[str, str]:
    """(subject, body)."""
    lines = [facts.summary, "", f"Cluster: {facts.cluster}", f"Node: {facts.node or '(whole cluster)'}",
             f"Severity: {facts.severity}", f"Peak score: {facts.peak_score:.2f}", f"Started: {facts.started_at:%Y-%m-%d %H:%M} UTC"]
    if facts.resolved_at:
        lines.append(f"Resolved: {facts.resolved_at:%Y-%m-%d %H:%M} UTC")
    if facts.explanation:
        lines += ["", facts.explanation]
    lines += ["", f"Open it in Fleetwatch: {facts.link}"]
    return f"[Fleetwatch] {headline(facts)}", "\n".join(lines) + "\n"
