from django.utils import timezone
from rest_framework import serializers

from results.models import AggregatedScore, Anomaly, DetectionRun
from results.runs import window_floor


class DetectionRunSerializer(serializers.ModelSerializer):
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    warnings = serializers.ListField(child=serializers.CharField(), read_only=True)
    skipped_reasons = serializers.DictField(child=serializers.IntegerField(), read_only=True,
                                            help_text="Series skipped, counted by reason (e.g. no new points since the watermark).")

    class Meta:
        model = DetectionRun
        fields = [
            "id", "trigger", "status", "range_start", "range_end", "series_total", "series_done",
            "series_skipped", "skipped_reasons", "points_analysed", "windows_analysed", "anomalies_found", "created_at",
            "started_at", "finished_at", "duration_seconds", "detect_seconds", "error", "warnings",
        ]


class DetectRequestSerializer(serializers.Serializer):
    start = serializers.DateTimeField(required=False, help_text="Default: each series' watermark (incremental).")
    end = serializers.DateTimeField(required=False, help_text="Default: now, rounded down to a window; "
                                    "a later end is clamped to it (the run's warnings say so).")

    def validate(self, attrs):
        start, end = attrs.get("start"), attrs.get("end")
        if start and start >= window_floor(timezone.now()):
            raise serializers.ValidationError({"start": "not before the last complete window: there is no data to analyse"})
        if start and end and start >= end:
            raise serializers.ValidationError({"end": "must be after start"})
        return attrs


class AnomalySerializer(serializers.ModelSerializer):
    cluster = serializers.CharField(source="cluster.name")
    node = serializers.CharField(source="node.name")
    series = serializers.IntegerField(source="series_id")
    run = serializers.IntegerField(source="run_id", allow_null=True)

    class Meta:
        model = Anomaly
        fields = [
            "id", "cluster", "node", "series", "metric_name", "window_start", "window_end", "score",
            "first_score", "label", "magnitude", "engine", "text", "run", "created_at", "updated_at",
        ]


class AnomalyDetailSerializer(AnomalySerializer):
    class Meta(AnomalySerializer.Meta):
        fields = [*AnomalySerializer.Meta.fields, "explanation"]


class ExplanationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()
    explanation = serializers.JSONField()


class AggregatedScoreSerializer(serializers.ModelSerializer):
    cluster = serializers.CharField(source="cluster.name", allow_null=True, default=None)
    node = serializers.CharField(source="node.name", allow_null=True, default=None)
    run = serializers.IntegerField(source="run_id", allow_null=True)

    class Meta:
        model = AggregatedScore
        fields = [
            "level", "cluster", "node", "strategy", "score", "num_metrics_analyzed", "num_anomalies_detected",
            "period_start", "period_end", "driver", "run",
        ]


class RankingEntrySerializer(AggregatedScoreSerializer):
    rank = serializers.IntegerField()

    class Meta(AggregatedScoreSerializer.Meta):
        fields = ["rank", *AggregatedScoreSerializer.Meta.fields]


class RankingQuerySerializer(serializers.Serializer):
    level = serializers.ChoiceField(choices=["node", "cluster"], default="node")
    strategy = serializers.ChoiceField(choices=["max", "mean", "weighted", "p95"], default="max")
    top = serializers.IntegerField(min_value=1, max_value=500, default=10)
    at = serializers.DateTimeField(required=False, help_text="Rank the latest period ending at or before this time.")


class RankingChangesQuerySerializer(RankingQuerySerializer):
    periods = serializers.IntegerField(min_value=1, max_value=24, default=1,
                                       help_text="How many periods, newest first, each compared with the one before it.")


class RankDriverSerializer(serializers.Serializer):
    node_id = serializers.IntegerField(allow_null=True)
    metric_name = serializers.CharField()
    window_start = serializers.DateTimeField(allow_null=True)
    anomaly_label = serializers.CharField()
    score = serializers.FloatField(allow_null=True)
    deviation_sigma = serializers.FloatField(allow_null=True, help_text="The driving anomaly's deviation, if stored.")
    anomaly = serializers.IntegerField(allow_null=True, help_text="The driving anomaly's id, if stored.")


class RankChangeSerializer(serializers.Serializer):
    change = serializers.ChoiceField(source="move.move", choices=["entered", "left", "up", "down"])
    name = serializers.CharField(help_text="The node (level=node) or the cluster (level=cluster).")
    cluster = serializers.CharField(source="entry.cluster.name", allow_null=True, default=None)
    rank = serializers.IntegerField(source="move.rank", allow_null=True, help_text="Now; null: it left.")
    previous_rank = serializers.IntegerField(source="move.previous_rank", allow_null=True, help_text="Null: it entered.")
    places = serializers.IntegerField(source="move.places", help_text="Places climbed (negative: fallen).")
    score = serializers.FloatField(allow_null=True)
    previous_score = serializers.FloatField(allow_null=True)
    driver = RankDriverSerializer(source="driver_data", help_text="What drove the entry's score (after a move: now).")
    text = serializers.CharField()


class RankingChangesSerializer(serializers.Serializer):
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField()
    previous_period_end = serializers.DateTimeField()
    changes = RankChangeSerializer(many=True)


class RelatedSeriesSerializer(serializers.Serializer):
    series = serializers.IntegerField()
    node_id = serializers.IntegerField()
    node = serializers.CharField()
    metric = serializers.CharField()
    onset = serializers.DateTimeField(help_text="Where its change began.")
    lag_seconds = serializers.FloatField(help_text="Its onset after this anomaly's series' onset (negative: before).")
    direction = serializers.ChoiceField(choices=["up", "down"])
    peak_sigma = serializers.FloatField(help_text="Its largest deviation after the onset, in robust sigmas.")
    correlation = serializers.FloatField(help_text="Best lagged correlation with the first series of the group.")


class OriginSerializer(serializers.Serializer):
    series = serializers.IntegerField()
    node_id = serializers.IntegerField()
    node = serializers.CharField()
    metric = serializers.CharField()
    onset = serializers.DateTimeField()
    lead_seconds = serializers.FloatField(allow_null=True, help_text="Before the next series of the group moved.")
    confidence = serializers.FloatField()
    evidence = serializers.CharField()


class AnalysisWindowSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()


class RelatedSerializer(serializers.Serializer):
    anomaly = serializers.IntegerField()
    series = serializers.IntegerField()
    node = serializers.CharField()
    metric = serializers.CharField()
    window = AnalysisWindowSerializer(help_text="The analysed window (plus 2 h of baseline before it).")
    series_analysed = serializers.IntegerField()
    moved = serializers.BooleanField(help_text="Whether this anomaly's series shows a clear change in the window.")
    onset = serializers.DateTimeField(allow_null=True)
    related = RelatedSeriesSerializer(many=True, help_text="The series of the cluster that moved together with it.")
    origin = OriginSerializer(allow_null=True, help_text="The likely origin of the group; null: no clear origin.")
    confidence = serializers.FloatField()
    text = serializers.CharField()


class SeriesSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    cluster = serializers.CharField(source="cluster.name")
    node = serializers.CharField(source="node.name")
    metric_name = serializers.CharField()
    unit = serializers.CharField()
    labels = serializers.JSONField()
    created_at = serializers.DateTimeField()
    last_point_at = serializers.DateTimeField(allow_null=True)
    analysed_until = serializers.DateTimeField(allow_null=True)


class PointsQuerySerializer(serializers.Serializer):
    from_ = serializers.DateTimeField(required=False)
    to = serializers.DateTimeField(required=False)
    resolution = serializers.ChoiceField(choices=["5m", "1h"], required=False, allow_null=True, default=None)

    def validate(self, attrs):
        start, end = attrs.get("from_"), attrs.get("to")
        if start and end and start >= end:
            raise serializers.ValidationError({"to": "must be after from"})
        return attrs

    def to_internal_value(self, data):
        data = {("from_" if key == "from" else key): value for key, value in data.items()}
        return super().to_internal_value(data)


class PointsSerializer(serializers.Serializer):
    series = serializers.IntegerField()
    resolution = serializers.CharField(allow_null=True)
    points = serializers.ListField(child=serializers.ListField(), help_text="[[RFC 3339 time, value], ...]")
