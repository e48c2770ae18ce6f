"""The tenant dashboard's pages over results."""

from django.urls import path

from results import views
from results.backtests import views as backtest_views
from results.feedback import views as feedback_views
from results.incidents import views as incident_views
from results.notifications import views as alerting

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("ranking", views.ranking, name="ranking"),
    path("nodes/<int:node_id>", views.node_detail, name="node"),
    path("anomalies", views.anomaly_list, name="anomalies"),
    path("anomalies/<int:anomaly_id>/related", views.anomaly_related, name="anomaly-related"),
    path("alerting", alerting.alerting, name="alerting"),
    path("alerting/channels/<int:pk>/delete", alerting.delete_channel, name="delete-channel"),
    path("alerting/rules/<int:pk>/delete", alerting.delete_rule, name="delete-rule"),
    path("alerting/silences/<int:pk>/delete", alerting.delete_silence, name="delete-silence"),
    path("anomalies/<int:anomaly_id>/feedback", feedback_views.label_anomaly, name="anomaly-feedback"),
    path("adjustments", feedback_views.adjustment_list, name="adjustments"),
    path("incidents/<int:incident_id>/feedback", feedback_views.label_incident, name="incident-feedback"),
    path("backtests", backtest_views.backtest_list, name="backtests"),
    path("backtests/<int:backtest_id>", backtest_views.backtest_detail, name="backtest"),
    path("backtests/<int:backtest_id>/apply", backtest_views.apply_backtest, name="backtest-apply"),
    path("adjustments/<int:adjustment_id>", feedback_views.change_adjustment, name="adjustment-change"),
    path("incidents", incident_views.incident_list, name="incidents"),
    path("incidents/<int:incident_id>", incident_views.incident_detail, name="incident"),
    path("incidents/<int:incident_id>/action", incident_views.incident_action, name="incident-action"),
]
