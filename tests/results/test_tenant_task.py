"""TenantTask finds the tenant by the parameter name ``tenant_id``, never by position,
and refuses anything but an integer."""

from __future__ import annotations

import pytest
from celery import shared_task

from results.tasks import TenantTask
from tenants.models import Cluster
from tenants.scoping import ScopeError, current_tenant_id


@shared_task(base=TenantTask)
def names_in_scope(run_id: int, tenant_id: int) -> tuple[int | None, list[str]]:
    """A task whose first argument is not the tenant (it is a run id here)."""
    return current_tenant_id(), sorted(Cluster.objects.values_list("name", flat=True))


@shared_task(base=TenantTask)
def after_results(results: list, tenant_id: int, run_id: int) -> int | None:
    """A chord callback's shape: the header's results come first."""
    return current_tenant_id()


@pytest.fixture
def clusters(tenant_a, tenant_b):
    Cluster.objects.unscoped().create(tenant=tenant_a, name="a-prod")
    Cluster.objects.unscoped().create(tenant=tenant_b, name="b-prod")


def test_a_task_whose_first_argument_is_not_the_tenant_runs_in_the_named_tenants_scope(clusters, tenant_a, tenant_b):
    # run_id = tenant B's id, tenant_id = tenant A's: position would pick B.
    assert names_in_scope(tenant_b.pk, tenant_a.pk) == (tenant_a.pk, ["a-prod"])
    assert names_in_scope(tenant_a.pk, tenant_id=tenant_b.pk) == (tenant_b.pk, ["b-prod"])
    assert names_in_scope.apply(args=(tenant_b.pk, tenant_a.pk)).get() == (tenant_a.pk, ["a-prod"])  # through Celery
    assert after_results([[1], [2]], tenant_id=tenant_b.pk, run_id=tenant_a.pk) == tenant_b.pk


@pytest.mark.parametrize("tenant_id", ["1", 1.0, True, None])
def test_the_tenant_id_must_be_an_integer(clusters, tenant_a, tenant_id):
    with pytest.raises(TypeError, match="tenant_id must be an integer"):
        names_in_scope(tenant_a.pk, tenant_id)


def test_a_task_without_its_tenant_runs_nothing(clusters, tenant_a):
    with pytest.raises(TypeError, match="tenant_id"):
        names_in_scope(run_id=tenant_a.pk)
    with pytest.raises(ScopeError):  # and no scope was left behind
        current_tenant_id()
