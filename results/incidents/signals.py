"""The incidents' lifecycle hook.

``incident_changed`` is sent (``sender=Incident``) with ``incident`` (the saved row),
``event`` (one of ``EVENTS``) and ``actor`` (a user name, an API key label, or "auto" for
the pipeline), INSIDE the transaction that changed the incident: a receiver's writes
commit or roll back with the change. A receiver with outside effects (mail, webhooks,
a Celery task) must defer them with ``transaction.on_commit``. The pipeline may build
the same range again: it then changes nothing and sends nothing.

Events:
- ``opened``: a new incident (anomalies grouped, or a node gone silent: kind "no_data");
- ``updated``: new member anomalies, or a higher peak score;
- ``acknowledged``: someone is on it (``incident.acknowledged_by_label``);
- ``resolved``: by hand, or automatically (actor "auto") after the quiet period;
- ``reopened``: a resolved incident flared up again within the quiet period, or by hand.
"""

from __future__ import annotations

from django.dispatch import Signal

OPENED = "opened"
UPDATED = "updated"
ACKNOWLEDGED = "acknowledged"
RESOLVED = "resolved"
REOPENED = "reopened"
EVENTS = (OPENED, UPDATED, ACKNOWLEDGED, RESOLVED, REOPENED)

incident_changed = Signal()
