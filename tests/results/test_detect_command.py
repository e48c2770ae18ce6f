from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from results.models import Anomaly, DetectionRun
from tenants.scoping import tenant_scope
from tests.results.fleet import fleet_now, ingest, make_fleet

pytestmark = pytest.mark.django_db(transaction=True)


def test_backfill_command_runs_the_range_and_reports(api_a, tenant_a, capsys):
    end = fleet_now()
    bodies, truth = make_fleet(end, hours=48)
    ingest(api_a, bodies)
    start = end - timedelta(hours=4)
    call_command("detect", "--tenant", "acme", "--from", start.isoformat(), "--to", end.isoformat(), "--no-progress")
    out = capsys.readouterr().out
    with tenant_scope(tenant_a):
        run = DetectionRun.objects.get()
        assert (run.trigger, run.status, run.range_start, run.range_end) == ("backfill", "succeeded", start, end)
        assert run.points_analysed == 8 * 4 * 60
        assert Anomaly.objects.filter(node__name=truth["node"], metric_name="cpu_usage", label="spike").exists()
    assert f"run {run.pk} succeeded: 8 series, {8 * 4 * 60} points" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tenant", "nope"], "--tenant: no tenant 'nope'"),
        (["--tenant", "acme", "--from", "yesterday"], "--from: not an ISO 8601 time"),
        (["--tenant", "acme", "--from", "2026-01-01T00:00:00"], "--from: give a UTC offset"),
        (["--tenant", "acme", "--from", "2026-01-02T00:00:00+00:00", "--to", "2026-01-01T00:00:00+00:00"], "--to: must be after --from"),
    ],
)
def test_bad_arguments_name_the_option(tenant_a, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("detect", *args)
