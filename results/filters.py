from datetime import UTC

import django_filters
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q
from django_filters.fields import IsoDateTimeField

from analytics.models import Series
from results.models import AggregatedScore, Anomaly, DetectionRun, Incident, IncidentMember


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 time converted to UTC: Python accepts offsets up to ±24 h, PostgreSQL
    only up to ±15:59, so a raw ``-17:54`` reached the database as an error (a 500)."""

    def to_python(self, value):
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise ValidationError("out of range", code="invalid") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class AnomalyFilter(django_filters.FilterSet):
    cluster = django_filters.CharFilter(field_name="cluster__name", help_text="Cluster name.")
    node = django_filters.CharFilter(field_name="node__name", help_text="Node name.")
    metric = django_filters.CharFilter(field_name="metric_name")
    label = django_filters.ChoiceFilter(choices=[(t, t) for t in ("spike", "trend", "seasonal")])
    min_score = django_filters.NumberFilter(field_name="score", lookup_expr="gte")
    run = django_filters.NumberFilter(field_name="run_id")
    # The windows that overlap [from, to).
    from_ = UtcIsoDateTimeFilter(field_name="window_end", lookup_expr="gt", label="from")
    to = UtcIsoDateTimeFilter(field_name="window_start", lookup_expr="lt")
    ordering = django_filters.OrderingFilter(fields=("score", "window_start", "metric_name"))

    class Meta:
        model = Anomaly
        fields: list[str] = []


class RunFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=DetectionRun.Status.choices)
    trigger = django_filters.ChoiceFilter(choices=DetectionRun.Trigger.choices)

    class Meta:
        model = DetectionRun
        fields: list[str] = []


class ScoreFilter(django_filters.FilterSet):
    level = django_filters.ChoiceFilter(choices=AggregatedScore.Level.choices)
    strategy = django_filters.ChoiceFilter(choices=[(s, s) for s in ("max", "mean", "weighted", "p95")])
    cluster = django_filters.CharFilter(field_name="cluster__name")
    node = django_filters.CharFilter(field_name="node__name")
    from_ = UtcIsoDateTimeFilter(field_name="period_end", lookup_expr="gt", label="from")
    to = UtcIsoDateTimeFilter(field_name="period_end", lookup_expr="lte")

    class Meta:
        model = AggregatedScore
        fields: list[str] = []


class IncidentFilter(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=Incident.State.choices)
    kind = django_filters.ChoiceFilter(choices=Incident.Kind.choices)
    cluster = django_filters.CharFilter(field_name="cluster__name", help_text="Cluster name.")
    node = django_filters.CharFilter(method="affecting", help_text="Node name: the incidents affecting that node.")
    # The incidents whose span overlaps [from, to) (an open-ended one lasts until now).
    from_ = UtcIsoDateTimeFilter(method="ending_after", label="from")
    to = UtcIsoDateTimeFilter(field_name="started_at", lookup_expr="lt")

    class Meta:
        model = Incident
        fields: list[str] = []

    def affecting(self, queryset, name, value):
        # the scoped manager: the request's tenant scope applies (API views and pages open one)
        member = IncidentMember.objects.filter(incident=OuterRef("pk"), anomaly__node__name=value)
        return queryset.filter(Q(node__name=value) | Exists(member))

    def ending_after(self, queryset, name, value):
        return queryset.filter(Q(ended_at__gt=value) | Q(ended_at__isnull=True) | Q(state__in=Incident.ACTIVE))


def _expose_from(filterset: type[django_filters.FilterSet]) -> None:
    """``from`` is a Python keyword: declare ``from_``, serve it as ``?from=``."""
    filterset.base_filters["from"] = filterset.base_filters.pop("from_")


_expose_from(AnomalyFilter)
_expose_from(ScoreFilter)
_expose_from(IncidentFilter)


class SeriesFilter(django_filters.FilterSet):
    cluster = django_filters.CharFilter(field_name="cluster__name", help_text="Cluster name.")
    node = django_filters.CharFilter(field_name="node__name", help_text="Node name.")
    metric_name = django_filters.CharFilter()

    class Meta:
        model = Series
        fields: list[str] = []
