from django.urls import path
from rest_framework.routers import SimpleRouter

from results import api
from results.backtests import api as backtest_api
from results.feedback import api as feedback_api
from results.incidents import api as incidents_api
from results.notifications import api as notifications_api


class OptionalSlashRouter(SimpleRouter):
    """``/api/v1/runs`` and ``/api/v1/runs/`` both answer (no redirect for API clients)."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("runs", api.RunViewSet, basename="run")
router.register("anomalies", api.AnomalyViewSet, basename="anomaly")
router.register("scores", api.ScoreViewSet, basename="score")
router.register("series", api.SeriesViewSet, basename="series")
router.register("channels", notifications_api.ChannelViewSet, basename="channel")
router.register("alert-rules", notifications_api.AlertRuleViewSet, basename="alert-rule")
router.register("silences", notifications_api.SilenceViewSet, basename="silence")
router.register("notifications", notifications_api.NotificationViewSet, basename="notification")
router.register("feedback", feedback_api.FeedbackViewSet, basename="feedback")
router.register("adjustments", feedback_api.AdjustmentViewSet, basename="adjustment")
router.register("audit", feedback_api.AuditViewSet, basename="audit")
router.register("backtests", backtest_api.BacktestViewSet, basename="backtest")
router.register("incidents", incidents_api.IncidentViewSet, basename="incident")

urlpatterns = [
    path("detect", api.DetectView.as_view(), name="detect"),
    path("rankings", api.RankingView.as_view(), name="rankings"),
    path("rankings/changes", api.RankingChangesView.as_view(), name="ranking-changes"),
    *router.urls,
]
