"""One beat entry per tenant, in step with its plan; system entries after migrate."""

import json

import pytest
from django_celery_beat.models import PeriodicTask

from results.schedules import SYSTEM_ENTRIES, detection_entry_name
from tenants.models import Plan, Tenant

pytestmark = pytest.mark.django_db


def entry(tenant) -> PeriodicTask:
    return PeriodicTask.objects.select_related("interval").get(name=detection_entry_name(tenant))


def test_a_new_tenant_gets_a_detection_entry_from_its_plan(tenant_a):
    task = entry(tenant_a)
    assert task.task == "results.tasks.run_tenant_detection"
    assert json.loads(task.args) == [tenant_a.pk]
    assert (task.interval.every, task.interval.period) == (tenant_a.plan.detection_interval_minutes, "minutes")
    assert task.expire_seconds == tenant_a.plan.detection_interval_minutes * 60
    assert task.enabled


def test_changing_the_plan_or_the_tenant_keeps_the_entry_in_step(tenant_a, tenant_b, plan):
    plan.detection_interval_minutes = 15
    plan.save()
    for tenant in (tenant_a, tenant_b):
        assert entry(tenant).interval.every == 15 and entry(tenant).expire_seconds == 900
    faster = Plan.objects.create(slug="pro", name="Pro", detection_interval_minutes=1)
    tenant_a.plan = faster
    tenant_a.is_active = False
    tenant_a.save()
    assert entry(tenant_a).interval.every == 1 and not entry(tenant_a).enabled
    assert entry(tenant_b).interval.every == 15
    Tenant.objects.filter(pk=tenant_b.pk).get().delete()
    assert not PeriodicTask.objects.filter(name=detection_entry_name(tenant_b)).exists()


def test_system_entries_exist_with_an_expiry_and_name_real_tasks():
    from config.celery import app

    app.loader.import_default_modules()
    for name, (task, minutes) in SYSTEM_ENTRIES.items():
        assert task in app.tasks, task
        found = PeriodicTask.objects.get(name=name)
        assert (found.task, found.interval.every, found.expire_seconds) == (task, minutes, minutes * 60)
