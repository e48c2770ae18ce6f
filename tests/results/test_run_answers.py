"""What a detection run tells: the detect endpoint's answer on in-process tasks (the
embedded default) is the run as it is, and every run counts its skipped series by reason."""

from datetime import timedelta

import pytest

from results.detection import SKIP_NO_NEW_POINTS, SKIP_NO_POINTS_IN_RANGE
from results.models import DetectionRun
from results.tasks import run_tenant_detection
from tenants.scoping import tenant_scope
from tests.results.fleet import fleet_now, ingest, make_fleet

pytestmark = pytest.mark.django_db(transaction=True)


def test_detect_on_in_process_tasks_answers_the_finished_run_not_queued(api_a):
    end = fleet_now()
    ingest(api_a, make_fleet(end, hours=6, nodes=2)[0])
    response = api_a.post("/api/v1/detect", {"start": (end - timedelta(hours=1)).isoformat(), "end": end.isoformat()},
                          format="json")
    body = response.json()
    assert (response.status_code, body["status"]) == (201, "succeeded"), body
    assert body["series_done"] == 4 and body["finished_at"] is not None
    assert api_a.get(f"/api/v1/runs/{body['id']}").json()["status"] == "succeeded"


def periodic(tenant, end) -> DetectionRun:
    run_id = run_tenant_detection(tenant.pk, end=end.isoformat())
    with tenant_scope(tenant):
        return DetectionRun.objects.get(pk=run_id)


def test_a_run_counts_its_skipped_series_by_reason(api_a, tenant_a):
    end = fleet_now()
    ingest(api_a, make_fleet(end, hours=6, nodes=2)[0])
    first = periodic(tenant_a, end)
    assert first.status == "succeeded", first.error
    assert (first.series_done, first.series_skipped, first.skipped_reasons) == (4, 0, {})

    again = periodic(tenant_a, end)  # nothing new since the watermarks
    assert (again.series_done, again.series_skipped) == (0, 4)
    assert again.skipped_reasons == {SKIP_NO_NEW_POINTS: 4}
    assert api_a.get(f"/api/v1/runs/{again.pk}").json()["skipped_reasons"] == {SKIP_NO_NEW_POINTS: 4}

    older = run_tenant_detection(tenant_a.pk, (end - timedelta(days=3)).isoformat(),
                                 (end - timedelta(days=2)).isoformat(), trigger="backfill")
    with tenant_scope(tenant_a):
        assert DetectionRun.objects.get(pk=older).skipped_reasons == {SKIP_NO_POINTS_IN_RANGE: 4}
