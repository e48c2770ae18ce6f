"""The incidents' API bodies. Node names come from the context's ``node_names`` (one
query per request, not one per incident)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from results.models import Anomaly, Incident, IncidentEvent, IncidentMember


class IncidentSerializer(serializers.ModelSerializer):
    cluster = serializers.CharField(source="cluster.name")
    node = serializers.CharField(source="node.name", allow_null=True, default=None,
                                 help_text='The silent node of a "no data" incident.')
    nodes = serializers.SerializerMethodField(help_text="Affected nodes, by name.")
    metrics = serializers.ListField(child=serializers.CharField(), help_text="Affected metrics.")
    acknowledged_by = serializers.CharField(source="acknowledged_by_label")
    resolved_by = serializers.CharField(source="resolved_by_label")

    class Meta:
        model = Incident
        fields = [
            "id", "kind", "state", "summary", "cluster", "node", "nodes", "metrics", "started_at", "ended_at",
            "peak_score", "acknowledged_by", "acknowledged_at", "resolved_by", "resolved_at", "reopened_count",
            "created_at", "updated_at",
        ]

    def get_nodes(self, incident: Incident) -> list[str]:
        names = self.context["node_names"]
        return [names.get(node_id, str(node_id)) for node_id in incident.node_ids]


class IncidentMemberSerializer(serializers.ModelSerializer):
    node = serializers.CharField(source="node.name")
    series = serializers.IntegerField(source="series_id")

    class Meta:
        model = Anomaly
        fields = ["id", "node", "series", "metric_name", "window_start", "window_end", "score", "label", "text"]


class IncidentEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = IncidentEvent
        fields = ["event", "at", "actor", "detail"]


class IncidentDetailSerializer(IncidentSerializer):
    members = serializers.SerializerMethodField(help_text="The member anomalies, by start.")
    timeline = serializers.SerializerMethodField(help_text="The incident's events, oldest first.")

    class Meta(IncidentSerializer.Meta):
        fields = [*IncidentSerializer.Meta.fields, "members", "timeline"]

    @staticmethod
    def _members(incident: Incident):
        ids = IncidentMember.objects.for_tenant(incident.tenant_id).filter(incident=incident).values("anomaly_id")
        return Anomaly.objects.for_tenant(incident.tenant_id).filter(pk__in=ids).select_related("node").order_by(
            "window_start", "pk")

    @extend_schema_field(IncidentMemberSerializer(many=True))
    def get_members(self, incident: Incident) -> Any:
        return IncidentMemberSerializer(self._members(incident), many=True).data

    @extend_schema_field(IncidentEventSerializer(many=True))
    def get_timeline(self, incident: Incident) -> Any:
        events = IncidentEvent.objects.for_tenant(incident.tenant_id).filter(incident=incident).order_by("at", "pk")
        return IncidentEventSerializer(events, many=True).data


class IncidentOriginSerializer(serializers.Serializer):
    incident = serializers.IntegerField()
    window = serializers.JSONField(allow_null=True, help_text="The analysed window {start, end}.")
    series_analysed = serializers.IntegerField()
    origin = serializers.JSONField(allow_null=True, help_text="The likely origin (node, metric, onset, lead, evidence); "
                                   "null: no clear origin.")
    confidence = serializers.FloatField()
    groups = serializers.JSONField(help_text="Series that moved together (inside this incident).")
    text = serializers.CharField()
