"""The backtests page: a member starts one (the detail shows progress and the report),
two compare side by side, only an owner applies one; a viewer only reads."""

from __future__ import annotations

from datetime import timedelta

import pytest

from results.models import Backtest, EngineSetting
from tenants.models import Membership
from tenants.scoping import tenant_scope
from tests.conftest import add_member
from tests.dashboard.conftest import logged_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_start_compare_and_apply_from_the_page(fleet, tenant_a, owner, member):
    viewer = add_member(tenant_a, "victor", Membership.Role.VIEWER)
    end = fleet.replace(tzinfo=None)
    form = {"start": (end - timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M"), "end": end.strftime("%Y-%m-%dT%H:%M"),
            "metric": "cpu_usage"}
    assert logged_in(viewer).post("/backtests", {**form, "engine": ""}).status_code == 403
    bad = logged_in(member).post("/backtests", {**form, "engine": "adtk", "params": "{not json"})
    assert bad.status_code == 400 and "not valid JSON" in bad.content.decode()
    started = [logged_in(member).post("/backtests", {**form, "engine": engine, "params": params})
               for engine, params in (("", "{}"), ("vector", '{"threshold": 0.4}'))]
    assert all(r.status_code == 302 for r in started)
    with tenant_scope(tenant_a):
        current, tuned = Backtest.objects.order_by("pk")
        assert (current.status, tuned.status) == ("succeeded", "succeeded")
    detail = logged_in(member).get(f"/backtests/{tuned.pk}").content.decode()
    assert "alarms = " in detail and "standard" in detail and "Apply" not in detail  # members do not apply
    compared = logged_in(member).get("/backtests", {"a": current.pk, "b": tuned.pk}).content.decode()
    assert f"Backtest {current.pk} vs {tuned.pk}" in compared

    assert logged_in(member).post(f"/backtests/{tuned.pk}/apply").status_code == 403
    assert "Apply" in logged_in(owner).get(f"/backtests/{tuned.pk}").content.decode()
    assert logged_in(owner).post(f"/backtests/{tuned.pk}/apply").status_code == 302
    with tenant_scope(tenant_a):
        setting = EngineSetting.objects.get()
        assert (setting.engine, setting.applied_by, setting.applied_from_id) == ("vector", "alice", tuned.pk)
