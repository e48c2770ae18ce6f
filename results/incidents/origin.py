"""The root-cause hint of an incident (issue 17): the core's co-anomaly analysis
(``analytics.core.rca``) over the incident's cluster around its span, stored with the
incident. Co-movement groups sit inside the incident: they never split or merge it.

Computed when first asked for (``GET incidents/{id}/origin``, the incident page) and
again only when the incident changed since (new members, a longer span, a higher peak):
``origin_key`` names the version the stored hint belongs to. The work is bounded as for
``anomalies/{id}/related`` (``results.rootcause``): a window of at most 6 h, at most
FLEETWATCH_RCA_MAX_SERIES series.
"""

from __future__ import annotations

from typing import Any

from analytics.core.rca.analysis import analyse_window
from analytics.store.read import get_metric_series_batch
from results.models import Anomaly, Incident, IncidentMember
from results.rootcause import BASELINE, analysis_series, analysis_window
from tenants.models import Tenant

NO_DATA_TEXT = 'A "no data" incident: its node sent nothing, so there is no movement to analyse.'


def version(incident: Incident) -> str:
    ended = incident.ended_at.isoformat() if incident.ended_at else ""
    return f"{len(incident.node_ids)}:{len(incident.metrics)}:{ended}:{incident.peak_score:.6f}"[:64]


def origin(tenant: Tenant, incident: Incident) -> dict[str, Any]:
    """The stored hint, computed (and stored) first if the incident changed since."""
    key = version(incident)
    if incident.origin_key != key or not incident.origin:
        incident.origin, incident.origin_key = _compute(tenant, incident), key
        Incident.objects.for_tenant(tenant).filter(pk=incident.pk).update(origin=incident.origin, origin_key=key)
    return incident.origin


def _compute(tenant: Tenant, incident: Incident) -> dict[str, Any]:
    answer: dict[str, Any] = {"incident": incident.pk, "window": None, "series_analysed": 0, "origin": None,
                              "confidence": 0.0, "groups": [], "text": NO_DATA_TEXT}
    if incident.kind == Incident.Kind.NO_DATA:
        return answer
    start, end = analysis_window(incident.started_at, incident.ended_at or incident.started_at)
    answer["window"] = {"start": start.isoformat(), "end": end.isoformat()}
    members = IncidentMember.objects.for_tenant(tenant).filter(incident=incident).values("anomaly_id")
    first = list(Anomaly.objects.for_tenant(tenant).filter(pk__in=members).order_by("-score", "pk")
                 .values_list("series_id", flat=True))
    ids = analysis_series(tenant, incident.cluster_id, start, end, first, incident.node_ids)
    series = get_metric_series_batch(tenant.pk, ids, start - BASELINE, end)
    if not any(len(s) > 1 for s in series):
        return answer | {"text": "No points in this window to analyse."}
    # the group holding the incident's peak series comes first: the hint is about this incident
    focus = next((s.key for s in series if first and int(s.metadata["series_id"]) == first[0]), None)
    hint = analyse_window(series, start, end, focus=focus).to_dict()
    return answer | {"series_analysed": hint["analysed"], "origin": hint["origin"], "confidence": hint["confidence"],
                     "groups": hint["groups"], "candidates": hint["candidates"][:3], "text": hint["text"]}
