"""Notifications: alert rules pick the incidents that notify and their channels,
silences hold them back, the outbox (written in the incident's transaction) keeps what
is owed, and the delivery tasks send it (Alertmanager, webhook, e-mail) at least once,
in order per channel and incident, with back-off and dead letters.

Modules: ``facts`` (what a notification says, a plain snapshot), ``matching`` (rules
and silences), ``crypto`` (channel secrets), ``destinations`` (safe outbound HTTP),
``payloads`` and ``channels`` (what each kind of channel is sent), ``models``,
``outbox`` (writing notifications), ``delivery`` (sending them).
"""
