"""The scoping mechanism fails closed and never mixes tenants."""

import pytest

from tenants.models import ApiKey, Cluster, Membership, Node
from tenants.scoping import ScopeError, all_tenants, current_tenant_id, tenant_scope


@pytest.fixture
def clusters(tenant_a, tenant_b):
    a = Cluster.objects.unscoped().create(tenant=tenant_a, name="prod")
    b = Cluster.objects.unscoped().create(tenant=tenant_b, name="prod")
    Node.objects.unscoped().create(tenant=tenant_a, cluster=a, name="n1")
    Node.objects.unscoped().create(tenant=tenant_b, cluster=b, name="n1")
    return a, b


@pytest.mark.parametrize("model", [Cluster, Node, Membership, ApiKey])
def test_an_unscoped_query_raises(db, model):
    with pytest.raises(ScopeError, match=model.__name__):
        list(model.objects.all())
    with pytest.raises(ScopeError):
        model.objects.filter(pk=1).exists()
    with pytest.raises(ScopeError):
        model.objects.count()


def test_related_managers_fail_closed_too(clusters):
    a, _ = clusters
    with pytest.raises(ScopeError):
        list(a.nodes.all())
    with tenant_scope(a.tenant):
        assert [n.name for n in a.nodes.all()] == ["n1"]


def test_tenant_scope_filters_every_query(clusters, tenant_a, tenant_b):
    a, b = clusters
    with tenant_scope(tenant_a):
        assert list(Cluster.objects.all()) == [a]
        assert Node.objects.count() == 1
        assert not Cluster.objects.filter(pk=b.pk).exists()
        assert current_tenant_id() == tenant_a.pk
    with tenant_scope(tenant_b.pk):
        assert list(Cluster.objects.all()) == [b]


def test_scope_is_reset_after_the_block_even_on_error(clusters, tenant_a):
    with pytest.raises(RuntimeError):
        with tenant_scope(tenant_a):
            raise RuntimeError("boom")
    with pytest.raises(ScopeError):
        Cluster.objects.count()


def test_for_tenant_is_explicit_and_cannot_cross_an_open_scope(clusters, tenant_a, tenant_b):
    a, b = clusters
    assert list(Cluster.objects.for_tenant(tenant_b)) == [b]
    with tenant_scope(tenant_a):
        assert list(Cluster.objects.for_tenant(tenant_a)) == [a]
        with pytest.raises(ScopeError):
            Cluster.objects.for_tenant(tenant_b)


def test_crossing_tenants_is_named(clusters):
    assert Cluster.objects.unscoped().count() == 2
    with pytest.raises(ScopeError):
        with all_tenants(""):
            pass
    with all_tenants("operators' report"):
        assert Cluster.objects.count() == 2
        assert current_tenant_id() is None


def test_scope_rejects_nonsense(db):
    with pytest.raises(ScopeError):
        with tenant_scope("acme"):
            pass
