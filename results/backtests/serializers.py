from datetime import timedelta

from rest_framework import serializers

from analytics.core.engines.registry import engine_registry
from results.models import Backtest

MAX_RANGE = timedelta(days=92)  # hot and cold history


class BacktestRequestSerializer(serializers.Serializer):
    engine = serializers.CharField(required=False, help_text="A registered engine; leave out with current_settings.")
    params = serializers.JSONField(required=False, default=dict, help_text="The engine's parameters ({}: its defaults).")
    current_settings = serializers.BooleanField(required=False, default=False,
                                                help_text="Replay each series with the settings it has now.")
    series = serializers.ListField(child=serializers.IntegerField(), required=False, max_length=100_000,
                                   help_text="Series ids (default: every series, or those the filters select).")
    cluster = serializers.CharField(required=False, help_text="Only this cluster's series.")
    node = serializers.CharField(required=False, help_text="Only series of nodes with this name.")
    metric = serializers.CharField(required=False, help_text="Only this metric's series.")
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()

    def validate(self, attrs):
        if attrs["start"] >= attrs["end"]:
            raise serializers.ValidationError({"end": "must be after start"})
        if attrs["end"] - attrs["start"] > MAX_RANGE:
            raise serializers.ValidationError({"end": f"the range may span at most {MAX_RANGE.days} days"})
        if attrs["current_settings"]:
            if "engine" in attrs:
                raise serializers.ValidationError({"engine": "leave it out with current_settings"})
            return attrs
        if "engine" not in attrs:
            raise serializers.ValidationError({"engine": "required unless current_settings is true"})
        if attrs["engine"] not in engine_registry.names():
            raise serializers.ValidationError({"engine": f"unknown engine; one of {', '.join(engine_registry.names())}"})
        if not isinstance(attrs["params"], dict):
            raise serializers.ValidationError({"params": "must be a JSON object"})
        try:
            engine_registry.create(attrs["engine"], **attrs["params"])
        except (TypeError, ValueError) as error:
            raise serializers.ValidationError({"params": str(error)}) from None
        return attrs


class BacktestSerializer(serializers.ModelSerializer):
    series_total = serializers.SerializerMethodField()

    class Meta:
        model = Backtest
        fields = ["id", "engine", "params", "current_settings", "series_total", "range_start", "range_end", "status",
                  "parts_total", "parts_done", "series_done", "report", "error", "created_by", "created_at",
                  "finished_at", "applied_at", "applied_by"]

    def get_series_total(self, backtest: Backtest) -> int:
        return len(backtest.series_ids)


class CompareQuerySerializer(serializers.Serializer):
    a = serializers.IntegerField(help_text="A backtest id.")
    b = serializers.IntegerField(help_text="Another backtest id.")


class ComparisonSerializer(serializers.Serializer):
    a = BacktestSerializer()
    b = BacktestSerializer()
    difference = serializers.JSONField(help_text="b minus a: NAB score per profile, precision, alarms per series per day.")


class AppliedSerializer(serializers.Serializer):
    backtest = BacktestSerializer()
    engine_setting = serializers.JSONField()
