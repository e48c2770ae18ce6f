from rest_framework import serializers

from results.models import Adjustment, AuditEntry, Feedback


class LabelRequestSerializer(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=Feedback.Verdict.choices,
                                      help_text='"real" (real problem), "false_alarm" or "expected" (e.g. deployment, batch job).')
    comment = serializers.CharField(required=False, allow_blank=True, max_length=Feedback.COMMENT_MAX_LENGTH, default="")


class LabelChangeSerializer(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=Feedback.Verdict.choices, required=False)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=Feedback.COMMENT_MAX_LENGTH)


class FeedbackSerializer(serializers.ModelSerializer):
    anomaly = serializers.IntegerField(source="anomaly_id", allow_null=True)
    series = serializers.IntegerField(source="series_id")
    node = serializers.IntegerField(source="node_id")

    class Meta:
        model = Feedback
        fields = ["id", "anomaly", "series", "node", "metric_name", "window_start", "window_end", "score", "verdict",
                  "comment", "by", "created_at", "updated_at"]


class AdjustmentSerializer(serializers.ModelSerializer):
    series = serializers.IntegerField(source="series_id", allow_null=True)
    node = serializers.IntegerField(source="node_id")
    active = serializers.SerializerMethodField()

    class Meta:
        model = Adjustment
        fields = ["id", "kind", "series", "node", "metric_name", "threshold", "previous_threshold", "daily_start",
                  "daily_end", "feedback_ids", "reason", "created_at", "expires_at", "undone_at", "undone_by", "active"]

    def get_active(self, adjustment: Adjustment) -> bool:
        return adjustment.is_active(self.context["now"])


class LabelledSerializer(serializers.Serializer):
    feedback = FeedbackSerializer()
    adjustment = AdjustmentSerializer(allow_null=True)


class AuditEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEntry
        fields = ["id", "action", "subject", "detail", "by", "at"]


class LabelledWindowsSerializer(serializers.Serializer):
    windows = serializers.DictField(child=serializers.ListField(child=serializers.ListField(child=serializers.CharField())),
                                    help_text='combined_windows.json: "<cluster>/<node>/<metric>.csv" -> [[start, end], ...] '
                                    "of the real problems")
    reviewed = serializers.DictField(child=serializers.ListField(child=serializers.ListField(child=serializers.CharField())),
                                     help_text="the same for every label (the time a backtest scores)")
    series = serializers.DictField(child=serializers.IntegerField(), help_text="file name -> series id")
