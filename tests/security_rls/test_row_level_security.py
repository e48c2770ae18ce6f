"""Row-level security: the database enforces the tenant scope (PostgreSQL only).

Every table of a concrete tenant-owned model (from the model registry, so a new model is
covered without editing this file) must have RLS enabled and forced, and inside
``tenant_scope(A)`` raw SQL and deliberately buggy querysets must see and touch only A's
rows. Rows for A and B are seeded in every such table by operators (outside any scope).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.utils import ProgrammingError
from psycopg.errors import FeatureNotSupported

from analytics.models import Chunk, Point, Rollup, Series
from analytics.store.write import UnknownSeries, resolve_series, write_points
from results.models import (
    Adjustment,
    AggregatedScore,
    AlertRule,
    Anomaly,
    AuditEntry,
    Backtest,
    BacktestPart,
    Channel,
    DeliveryAttempt,
    DetectionBatch,
    DetectionRun,
    EngineSetting,
    EngineState,
    Feedback,
    Incident,
    IncidentEvent,
    IncidentMember,
    Notification,
    Silence,
)
from tenants import rls
from tenants.models import (
    ApiKey,
    Cluster,
    Membership,
    Node,
    SeriesActivity,
    UsageDaily,
    UsageMonth,
)
from tenants.scoping import (
    TenantOwned,
    all_tenants,
    tenant_owned_tables,
    tenant_scope,
)

pytestmark = pytest.mark.postgres  # row-level security is a PostgreSQL feature

D0 = datetime(2026, 1, 10, tzinfo=UTC)
TABLES = tenant_owned_tables()
MODELS = sorted(
    (m for m in apps.get_models() if issubclass(m, TenantOwned)),
    key=lambda m: m._meta.label,
)


def ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000


def seed_tenant(tenant, label: str) -> dict:
    """One row (at least) in every tenant-owned table, created as operators do."""
    user = get_user_model().objects.create_user(username=f"rls-{label}")
    Membership.objects.unscoped().create(tenant=tenant, user=user, role=Membership.Role.OWNER)
    ApiKey.issue(tenant, "rls")
    with transaction.atomic():
        ids, _ = resolve_series(tenant.pk, [("prod", "n1", "cpu")])
        sid = ids[("prod", "n1", "cpu")]
        ts = ns(D0) + np.arange(10, dtype=np.int64) * 60_000_000_000
        write_points(tenant.pk, np.full(10, sid), ts, np.arange(10, dtype=np.float64))  # points and both counters
    series = Series.objects.unscoped().get(pk=sid)
    day = D0.date()
    UsageDaily.objects.unscoped().create(tenant=tenant, day=day, points_ingested=10)
    UsageMonth.objects.unscoped().create(tenant=tenant, month=day.replace(day=1), points_ingested=10)
    SeriesActivity.objects.unscoped().create(tenant=tenant, month=day.replace(day=1), series_id=sid, first_day=day, last_day=day)
    Chunk.objects.unscoped().create(
        tenant=tenant, series=series, period_start=D0 - timedelta(days=1), count=1, first_ts=D0 - timedelta(days=1),
        last_ts=D0 - timedelta(days=1), min=1, max=1, sum=1, ts_data=b"", value_data=b"",
    )
    Rollup.objects.unscoped().create(
        tenant=tenant, series=series, resolution=Rollup.Resolution.ONE_HOUR, bucket_start=D0 - timedelta(days=1),
        min=1, max=1, sum=1, count=1,
    )
    run = DetectionRun.objects.unscoped().create(tenant=tenant, trigger=DetectionRun.Trigger.MANUAL)
    DetectionBatch.objects.unscoped().create(tenant=tenant, run=run, first_series_id=series.pk, series_ids=[series.pk])
    anomaly = Anomaly.objects.unscoped().create(
        tenant=tenant, series=series, cluster_id=series.cluster_id, node_id=series.node_id, metric_name="cpu", run=run,
        engine="adtk", window_start=D0, window_end=D0 + timedelta(minutes=5), score=0.9, first_score=0.9, label="spike",
    )
    label = Feedback.objects.unscoped().create(
        tenant=tenant, anomaly=anomaly, series=series, node_id=series.node_id, metric_name="cpu", window_start=D0,
        window_end=D0 + timedelta(minutes=5), score=0.9, verdict=Feedback.Verdict.FALSE_ALARM, by="rls",
    )
    AuditEntry.objects.unscoped().create(tenant=tenant, action="feedback_set", subject=f"anomaly:{anomaly.pk}", by="rls")
    Adjustment.objects.unscoped().create(tenant=tenant, kind=Adjustment.Kind.THRESHOLD, series=series,
                                         node_id=series.node_id, threshold=0.6, feedback_ids=[label.pk], reason="rls")
    backtest = Backtest.objects.unscoped().create(tenant=tenant, engine="adtk", series_ids=[series.pk], range_start=D0,
                                                  range_end=D0 + timedelta(hours=1), created_by="rls")
    BacktestPart.objects.unscoped().create(tenant=tenant, backtest=backtest, first_series_id=series.pk, series_ids=[series.pk])
    incident = Incident.objects.unscoped().create(tenant=tenant, cluster_id=series.cluster_id, started_at=D0)
    IncidentMember.objects.unscoped().create(tenant=tenant, incident=incident, anomaly=anomaly)
    IncidentEvent.objects.unscoped().create(tenant=tenant, incident=incident, event="opened")
    channel = Channel.objects.unscoped().create(tenant=tenant, name="rls", kind=Channel.Kind.WEBHOOK, url="https://example.com/")
    AlertRule.objects.unscoped().create(tenant=tenant, name="rls").channels.add(channel)
    silence = Silence.objects.unscoped().create(tenant=tenant, matchers={"cluster": "prod"}, starts_at=D0,
                                                ends_at=D0 + timedelta(hours=1))
    notification = Notification.objects.unscoped().create(tenant=tenant, channel=channel, incident_id=incident.pk, sequence=1,
                                                          event="opened", facts={}, silence=silence)
    DeliveryAttempt.objects.unscoped().create(tenant=tenant, notification=notification, ok=True, http_status=200, latency_ms=1.0)
    AggregatedScore.objects.unscoped().create(
        tenant=tenant, run=run, level=AggregatedScore.Level.TENANT, subject="tenant", strategy="MAX", score=0.9,
        num_metrics_analyzed=1, num_anomalies_detected=1, period_start=D0, period_end=D0 + timedelta(hours=1),
    )
    EngineSetting.objects.unscoped().create(tenant=tenant, metric_name="cpu", engine="adtk")
    EngineState.objects.unscoped().create(tenant=tenant, series=series, engine="adtk", state={}, fitted_at=D0)
    return {"series": series, "cluster": series.cluster, "node": series.node}


@pytest.fixture
def seeded(tenant_a, tenant_b):
    return {tenant_a.pk: seed_tenant(tenant_a, "a"), tenant_b.pk: seed_tenant(tenant_b, "b")}


def tenants_in(table: str) -> set[int]:
    with connection.cursor() as cur:
        cur.execute(f'SELECT DISTINCT tenant_id FROM "{table}"')  # no tenant filter at all
        return {row[0] for row in cur.fetchall()}


def db_state() -> tuple[str, str, str | None]:
    """(current_user, session_user, app.tenant_id) of the connection."""
    with connection.cursor() as cur:
        cur.execute("SELECT current_user, session_user, current_setting('app.tenant_id', true)")
        return cur.fetchone()


def assert_operator_state() -> None:
    current, session, tenant = db_state()
    assert current == session and current != rls.TENANT_ROLE
    assert tenant in (None, "")


# -- the schema --------------------------------------------------------------------------


def test_the_registry_lists_the_known_tenant_owned_tables():
    assert {"tenants_membership", "tenants_apikey", "analytics_point", "analytics_rollup", "results_anomaly"} <= set(TABLES)


@pytest.mark.django_db
@pytest.mark.parametrize("table", TABLES)
def test_every_tenant_owned_table_has_rls_enabled_forced_and_both_policies(table):
    with connection.cursor() as cur:
        cur.execute(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = to_regclass(%s)", [table]
        )
        row = cur.fetchone()
        assert row is not None, f"{table}: no such table"
        assert row == (True, True), (
            f"{table}: row-level security not enabled and forced; a migration must add "
            f"tenants.rls.forwards([{table!r}])"
        )
        cur.execute("SELECT policyname, roles::text[], qual, with_check FROM pg_policies WHERE tablename = %s", [table])
        policies = {name: (roles, qual, check) for name, roles, qual, check in cur.fetchall()}
    roles, qual, check = policies[rls.TENANT_POLICY]
    assert roles == [rls.TENANT_ROLE] and "app.tenant_id" in qual and "app.tenant_id" in check
    assert policies[rls.OPERATOR_POLICY][0] == [rls.OPERATOR_ROLE]


@pytest.mark.django_db
def test_partitions_are_not_granted_to_the_tenant_role():
    """A partition has no policies: the tenant role reaches points only through the parent."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT relname FROM pg_class WHERE relispartition AND has_table_privilege(%s, oid, 'SELECT')",
            [rls.TENANT_ROLE],
        )
        assert cur.fetchall() == []


# -- what a tenant's scope sees and may write -------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("table", TABLES)
def test_raw_sql_in_a_tenant_scope_sees_only_that_tenants_rows(seeded, tenant_a, tenant_b, table):
    assert tenants_in(table) == {tenant_a.pk, tenant_b.pk}, f"{table}: seed_tenant() must create rows for it"
    with tenant_scope(tenant_a):
        assert tenants_in(table) == {tenant_a.pk}
    with tenant_scope(tenant_b):
        assert tenants_in(table) == {tenant_b.pk}
    assert tenants_in(table) == {tenant_a.pk, tenant_b.pk}  # the operator, outside any scope
    with all_tenants("rls test"):
        assert tenants_in(table) == {tenant_a.pk, tenant_b.pk}


@pytest.mark.django_db
@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
def test_buggy_querysets_in_a_tenant_scope_see_nothing_of_another_tenant(seeded, tenant_a, tenant_b, model):
    with tenant_scope(tenant_a):
        everything = model.objects.unscoped()  # the bug: an escape hatch used inside a tenant's scope
        assert set(everything.values_list("tenant_id", flat=True)) == {tenant_a.pk}
        assert not model.objects.unscoped().filter(tenant_id=tenant_b.pk).exists()
        assert model.objects.unscoped().filter(tenant_id=tenant_b.pk).update(tenant_id=tenant_b.pk) == 0
        assert model.objects.unscoped().filter(tenant_id=tenant_b.pk).delete()[0] == 0
    assert model.objects.unscoped().filter(tenant_id=tenant_b.pk).exists()  # untouched


@pytest.mark.django_db
def test_writing_a_row_for_another_tenant_is_refused(seeded, tenant_a, tenant_b):
    b = seeded[tenant_b.pk]
    with tenant_scope(tenant_a):
        with pytest.raises(ProgrammingError, match="row-level security"), transaction.atomic():
            Cluster.objects.unscoped().create(tenant=tenant_b, name="sneaky")
        with pytest.raises(ProgrammingError, match="row-level security"), transaction.atomic(), connection.cursor() as cur:
            cur.execute(
                "INSERT INTO analytics_point (tenant_id, series_id, ts, value) VALUES (%s, %s, %s, 1)",
                [tenant_b.pk, b["series"].pk, D0 + timedelta(days=3)],
            )
        with pytest.raises(ProgrammingError, match="row-level security"), transaction.atomic():
            Node.objects.unscoped().filter(tenant_id=tenant_a.pk).update(tenant_id=tenant_b.pk)  # moving rows away
        with pytest.raises(UnknownSeries), transaction.atomic():  # under RLS none of B's series can be found
            write_points(tenant_b.pk, np.array([b["series"].pk]), np.array([ns(D0) + 1]), np.array([1.0]))
    assert not Cluster.objects.unscoped().filter(name="sneaky").exists()


@pytest.mark.django_db
def test_copy_into_the_hot_table_is_refused_but_ingestion_works(seeded, tenant_a):
    a = seeded[tenant_a.pk]
    with tenant_scope(tenant_a):
        with (
            pytest.raises(FeatureNotSupported, match="row-level security"),
            transaction.atomic(),
            connection.cursor() as cur,
            cur.cursor.copy("COPY analytics_point FROM STDIN") as copy,
        ):
            copy.write_row((tenant_a.pk, a["series"].pk, D0, 1.0))
        ts = ns(D0 + timedelta(hours=2)) + np.arange(100, dtype=np.int64) * 1_000_000_000
        with transaction.atomic():
            assert write_points(tenant_a.pk, np.full(100, a["series"].pk), ts, np.ones(100)) == 100
        with transaction.atomic():  # a re-send: the upsert path, last value wins
            assert write_points(tenant_a.pk, np.full(100, a["series"].pk), ts, np.full(100, 2.0)) == 100
        assert Point.objects.filter(ts__gte=D0 + timedelta(hours=2)).count() == 100
        assert set(Point.objects.filter(ts__gte=D0 + timedelta(hours=2)).values_list("value", flat=True)) == {2.0}


@pytest.mark.django_db
def test_an_operator_role_subject_to_the_policies_ingests_without_copy(seeded, tenant_a):
    """Outside any scope the write path COPYs straight into the hot table, which only a
    role that bypasses RLS may do; a non-superuser operator login falls back to INSERT."""
    sid = seeded[tenant_a.pk]["series"].pk
    ts = ns(D0 + timedelta(hours=3)) + np.arange(50, dtype=np.int64) * 1_000_000_000
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute(f"SET LOCAL ROLE {rls.OPERATOR_ROLE}")
        assert write_points(tenant_a.pk, np.full(50, sid), ts, np.ones(50)) == 50
        assert write_points(tenant_a.pk, np.full(50, sid), ts, np.full(50, 3.0)) == 50  # a re-send: upserted
        stored = Point.objects.unscoped().filter(series_id=sid, ts__gte=D0 + timedelta(hours=3))
        assert sorted(stored.values_list("value", flat=True)) == [3.0] * 50
        transaction.set_rollback(True)
    assert_operator_state()


@pytest.mark.django_db
def test_ingestion_routes_into_a_partition_created_later(seeded, tenant_a):
    from analytics.store.partitions import create_partition, partition_name

    day = date(2026, 2, 1)
    assert create_partition(day)  # as the periodic task does, outside any scope
    a = seeded[tenant_a.pk]
    ts = ns(datetime(2026, 2, 1, 12, tzinfo=UTC)) + np.arange(10, dtype=np.int64) * 1_000_000_000
    with tenant_scope(tenant_a):
        with transaction.atomic():
            write_points(tenant_a.pk, np.full(10, a["series"].pk), ts, np.ones(10))
        with pytest.raises(ProgrammingError, match="permission denied"), transaction.atomic():
            tenants_in(partition_name(day))  # no direct way around the parent's policies
    assert tenants_in(partition_name(day)) == {tenant_a.pk}


# -- the roles themselves (the test login is a superuser, which bypasses RLS) ---------------------


@pytest.mark.django_db
def test_the_operator_role_sees_every_tenant_and_the_tenant_role_without_a_tenant_nothing(seeded, tenant_a, tenant_b):
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"SET LOCAL ROLE {rls.OPERATOR_ROLE}")  # a non-superuser operator: the policy, not a bypass
        assert tenants_in("tenants_cluster") == {tenant_a.pk, tenant_b.pk}
        cur.execute(f"SET LOCAL ROLE {rls.TENANT_ROLE}")
        cur.execute("SELECT set_config('app.tenant_id', '', true)")
        assert tenants_in("tenants_cluster") == set()  # fail closed
        transaction.set_rollback(True)  # SET LOCAL outlives a released savepoint, not a rolled-back one
    assert_operator_state()


@pytest.mark.django_db
def test_the_table_owner_is_subject_to_the_policies_too(seeded):
    with transaction.atomic(), connection.cursor() as cur:  # rolled back: the role and the ownership vanish
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending foreign-key checks: ALTER TABLE refuses them
        cur.execute("CREATE ROLE fw_rls_probe_owner NOLOGIN")
        cur.execute("ALTER TABLE tenants_cluster OWNER TO fw_rls_probe_owner")
        cur.execute("SET LOCAL ROLE fw_rls_probe_owner")
        assert tenants_in("tenants_cluster") == set()  # FORCE: no policy for the owner, no rows
        transaction.set_rollback(True)
    assert_operator_state()


# -- the connection follows the scope -------------------------------------------------------------


@pytest.mark.django_db
def test_scopes_nest_and_restore_the_connection(seeded, tenant_a, tenant_b):
    assert_operator_state()
    with tenant_scope(tenant_a):
        assert db_state()[0::2] == (rls.TENANT_ROLE, str(tenant_a.pk))
        with tenant_scope(tenant_b):
            assert tenants_in("analytics_series") == {tenant_b.pk}
        assert tenants_in("analytics_series") == {tenant_a.pk}
        with all_tenants("rls test: an operator step inside a tenant's work"):
            assert_operator_state()
            assert tenants_in("analytics_series") == {tenant_a.pk, tenant_b.pk}
            with tenant_scope(tenant_b):
                assert tenants_in("analytics_series") == {tenant_b.pk}
            assert_operator_state()
        assert db_state()[0::2] == (rls.TENANT_ROLE, str(tenant_a.pk))
    assert_operator_state()


@pytest.mark.django_db
def test_a_scope_left_on_an_error_inside_a_failed_atomic_block_restores_the_connection(seeded, tenant_a, tenant_b):
    # An SQL error: the transaction is aborted when the scope exits, so the reset waits
    # for the rollback (which undoes the SET ROLE made inside the block).
    with pytest.raises(ProgrammingError), transaction.atomic(), tenant_scope(tenant_a):
        Cluster.objects.unscoped().create(tenant=tenant_b, name="sneaky")
    assert_operator_state()
    assert tenants_in("tenants_cluster") == {tenant_a.pk, tenant_b.pk}
    # A Python error: the scope resets inside the block, then the block rolls back.
    with pytest.raises(RuntimeError), transaction.atomic(), tenant_scope(tenant_a):
        assert tenants_in("tenants_cluster") == {tenant_a.pk}
        raise RuntimeError("boom")
    assert_operator_state()
    # A failed block inside a scope: back to the scope's tenant afterwards.
    with tenant_scope(tenant_a):
        with pytest.raises(ProgrammingError), transaction.atomic(), all_tenants("rls test"), connection.cursor() as cur:
            cur.execute("SELECT no_such_column FROM tenants_cluster")
        assert db_state()[0::2] == (rls.TENANT_ROLE, str(tenant_a.pk))
        assert tenants_in("tenants_cluster") == {tenant_a.pk}
        with pytest.raises(ProgrammingError), transaction.atomic(), tenant_scope(tenant_b), connection.cursor() as cur:
            cur.execute("SELECT no_such_column FROM tenants_cluster")
        assert tenants_in("tenants_cluster") == {tenant_a.pk}
    assert_operator_state()


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_and_across_reconnects_no_scope_leaks(seeded, tenant_a, tenant_b):
    with pytest.raises(ProgrammingError), transaction.atomic(), tenant_scope(tenant_a):  # the outermost one
        Cluster.objects.unscoped().create(tenant=tenant_b, name="sneaky")
    assert_operator_state()
    with tenant_scope(tenant_a):
        connection.close()  # e.g. CONN_MAX_AGE expiry: the new connection gets the scope
        assert tenants_in("tenants_cluster") == {tenant_a.pk}
    assert_operator_state()
    with tenant_scope(tenant_a):
        assert tenants_in("tenants_cluster") == {tenant_a.pk}
    connection.close()
    assert_operator_state()  # a persistent connection: the next request starts as the operator
    assert tenants_in("tenants_cluster") == {tenant_a.pk, tenant_b.pk}


@pytest.mark.django_db
def test_an_api_request_runs_as_its_tenant_and_leaves_the_connection_clean(seeded, tenant_a, api_a):
    response = api_a.get("/api/v1/series")
    assert response.status_code == 200
    assert {row["id"] for row in response.json()["results"]} == {seeded[tenant_a.pk]["series"].pk}
    assert_operator_state()
