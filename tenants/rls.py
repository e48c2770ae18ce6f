"""Row-level security: PostgreSQL enforces the tenant scope too (a backstop under the ORM).

The ORM scoping (``tenants.scoping``) is the mechanism; this module makes the database
refuse what a buggy query would otherwise leak. See docs/rls.md.

Roles (cluster-global, NOLOGIN, created idempotently by migration
``tenants.0003_row_level_security``):

- ``fleetwatch_tenant``: the tenant path. Every tenant-owned table has the policy
  ``tenant_id = current_setting('app.tenant_id')::bigint`` for it (USING and WITH CHECK).
- ``fleetwatch_operator``: the operators' path, ``USING (true) WITH CHECK (true)``; the
  login role the application connects with is made a member of it (and of
  ``fleetwatch_tenant``, so it may ``SET ROLE`` to it).

RLS is ENABLEd and FORCEd on every tenant-owned table, so the table owner is subject to
the policies too (a superuser still bypasses RLS: never connect as one in production).

The connection follows the scope (``tenants.scope_state``: ``tenants.scoping`` calls
``sync_connection`` on every scope entry and exit, on the thread's default connection):

- inside ``tenant_scope(t)``: ``SET ROLE fleetwatch_tenant`` and ``app.tenant_id = t``;
- outside any scope and inside ``all_tenants(reason)``: ``SET ROLE NONE`` (the login role,
  an operator) and ``app.tenant_id = ''``.

Both are session-level settings (one ``SELECT set_config(...), set_config(...)``), so they
hold across autocommit statements. Inside a transaction PostgreSQL undoes a session-level
SET when the transaction (or savepoint) that made it rolls back, which matches the
Python side: scopes and atomic blocks nest, so the state a rollback returns to is the
state of the scope that encloses the block. When a transition cannot run (the
transaction is already aborted), it is skipped and the state is marked unknown: the
rollback restores the enclosing state and the next query re-applies it (the per-query
guard below). A newly opened connection is put into the state of the current scope at
once (``connection_created``), so a scope never leaks to the next request or task, even
through persistent connections (``CONN_MAX_AGE``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django.db import connection as default_connection
from django.db import connections, migrations
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate
from psycopg import pq

from tenants.scope_state import scoped_tenant_id

log = logging.getLogger(__name__)

TENANT_ROLE = "fleetwatch_tenant"
OPERATOR_ROLE = "fleetwatch_operator"
TENANT_SETTING = "app.tenant_id"
TENANT_POLICY = "fleetwatch_tenant_isolation"
OPERATOR_POLICY = "fleetwatch_operators"
# NULLIF: a tenant role with no tenant set sees nothing (instead of a cast error).
TENANT_PREDICATE = f"tenant_id = NULLIF(current_setting('{TENANT_SETTING}', true), '')::bigint"
NOT_GRANTED_TABLES = ("django_migrations",)

_STATE = "_fleetwatch_rls_state"  # on the DatabaseWrapper: (psycopg connection, tenant id or None)
_UNKNOWN = object()
_APPLY_SQL = "SELECT set_config('role', %s, false), set_config('app.tenant_id', %s, false)"


def enabled(conn=default_connection) -> bool:
    """RLS is followed on PostgreSQL unless ``settings.FLEETWATCH_RLS`` is False."""
    return conn.vendor == "postgresql" and getattr(settings, "FLEETWATCH_RLS", True)


def tenant_role_active(conn=default_connection) -> bool:
    """Whether statements on the connection run as the tenant role (RLS enforced)."""
    return enabled(conn) and scoped_tenant_id() is not None


def applied_tenant(conn=default_connection):
    """The tenant the open connection is set to (None: operator), as last applied."""
    state = getattr(conn, _STATE, None)
    if state is None or conn.connection is None or state[0] is not conn.connection:
        return _UNKNOWN
    return state[1]


def _apply(conn, tenant_id: int | None) -> None:
    raw = conn.connection
    if raw.info.transaction_status == pq.TransactionStatus.INERROR:
        # The rollback that must follow restores the enclosing scope's state; re-apply
        # before the next statement (the guard) rather than fail here.
        setattr(conn, _STATE, None)
        return
    role, value = ("none", "") if tenant_id is None else (TENANT_ROLE, str(tenant_id))
    setattr(conn, _STATE, None)  # unknown until it succeeded
    with raw.cursor() as cur:
        cur.execute(_APPLY_SQL, (role, value))
    setattr(conn, _STATE, (raw, tenant_id))


def sync_connection(conn=default_connection, *, exiting: bool = False) -> None:
    """Put the open connection into the state of the current scope (no-op if it is
    already there, or not open yet: opening applies it).

    Entering a scope raises if the database refuses (never run a tenant's work as an
    operator). Leaving one does not raise (it would hide the error being handled): if
    the reset fails the connection is closed (outside a transaction) or its transaction
    is doomed to roll back, and either way the scope cannot outlive it."""
    if not enabled(conn) or conn.connection is None:
        return
    wanted = scoped_tenant_id()
    if applied_tenant(conn) == wanted:
        return
    try:
        _apply(conn, wanted)
    except Exception:
        if not exiting:
            raise
        log.exception("row-level security: could not reset the connection's scope; discarding it")
        setattr(conn, _STATE, None)
        if conn.in_atomic_block:
            conn.needs_rollback = True
        else:
            conn.close()


def _guard(execute, sql, params, many, context):
    """Per-query check (an execute wrapper): the connection runs in the state of the
    current scope, whatever happened to it (a reconnect, a skipped transition, a
    scope entered on another thread's connection)."""
    conn = context["connection"]
    if enabled(conn) and conn.connection is not None and applied_tenant(conn) != scoped_tenant_id():
        _apply(conn, scoped_tenant_id())
    return execute(sql, params, many, context)


def _on_connection_created(sender, connection, **kwargs) -> None:
    if not enabled(connection):
        return
    if not any(wrapper is _guard for wrapper in connection.execute_wrappers):
        connection.execute_wrappers.insert(0, _guard)  # first: execute_wrapper() pops the last
    _apply(connection, scoped_tenant_id())  # explicit even for a fresh session (pools may hand out used ones)


connection_created.connect(_on_connection_created, dispatch_uid="fleetwatch_rls_connection_created")


# -- schema: the DDL and the grants (tables: ``tenants.scoping.tenant_owned_tables``) ----


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def enable_sql(table: str) -> list[str]:
    """ENABLE + FORCE RLS on a tenant-owned table and (re)create its two policies."""
    t = _q(table)
    return [
        f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {t} FORCE ROW LEVEL SECURITY",
        f"DROP POLICY IF EXISTS {TENANT_POLICY} ON {t}",
        (
            f"CREATE POLICY {TENANT_POLICY} ON {t} AS PERMISSIVE FOR ALL TO {TENANT_ROLE}"
            f" USING ({TENANT_PREDICATE}) WITH CHECK ({TENANT_PREDICATE})"
        ),
        f"DROP POLICY IF EXISTS {OPERATOR_POLICY} ON {t}",
        f"CREATE POLICY {OPERATOR_POLICY} ON {t} AS PERMISSIVE FOR ALL TO {OPERATOR_ROLE} USING (true) WITH CHECK (true)",
    ]


def disable_sql(table: str) -> list[str]:
    t = _q(table)
    return [
        f"DROP POLICY IF EXISTS {TENANT_POLICY} ON {t}",
        f"DROP POLICY IF EXISTS {OPERATOR_POLICY} ON {t}",
        f"ALTER TABLE {t} NO FORCE ROW LEVEL SECURITY",
        f"ALTER TABLE {t} DISABLE ROW LEVEL SECURITY",
    ]


# Roles are cluster-global and test runs create many databases (possibly at once): tolerate
# an existing role, and a concurrent creation of it.
CREATE_ROLES_SQL = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{TENANT_ROLE}') THEN
        BEGIN
            CREATE ROLE {TENANT_ROLE} NOLOGIN NOINHERIT;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{OPERATOR_ROLE}') THEN
        BEGIN
            CREATE ROLE {OPERATOR_ROLE} NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
    -- The login role running the migrations (the application's) is the operator and may
    -- SET ROLE to the tenant role. A superuser is a member of every role already.
    IF NOT pg_has_role(current_user, '{OPERATOR_ROLE}', 'USAGE') THEN
        EXECUTE format('GRANT {OPERATOR_ROLE} TO %I', current_user);
    END IF;
    IF NOT pg_has_role(current_user, '{TENANT_ROLE}', 'MEMBER') THEN
        EXECUTE format('GRANT {TENANT_ROLE} TO %I', current_user);
    END IF;
END
$$
"""

# Table privileges for both roles on every table of the schema except partitions (a
# partition has no policies of its own: the tenant role reaches points only through the
# parent, whose policies apply; inserts routed to a partition need no privilege on it).
# Run by the migration and again after every ``migrate`` (post_migrate), so tables that
# later migrations add are granted; partitions created at run time are not.
GRANTS_SQL = f"""
DO $$
DECLARE
    rel regclass;
    role text;
BEGIN
    FOREACH role IN ARRAY ARRAY['{TENANT_ROLE}', '{OPERATOR_ROLE}'] LOOP
        IF NOT has_schema_privilege(role, current_schema(), 'USAGE') THEN
            EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), role);
        END IF;
        FOR rel IN
            SELECT c.oid::regclass FROM pg_class c
            WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
              AND NOT c.relispartition AND c.relname <> ALL (%(excluded)s)
              AND NOT (has_table_privilege(role, c.oid, 'SELECT') AND has_table_privilege(role, c.oid, 'INSERT')
                       AND has_table_privilege(role, c.oid, 'UPDATE') AND has_table_privilege(role, c.oid, 'DELETE'))
        LOOP
            EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO %I', rel, role);
        END LOOP;
        FOR rel IN
            SELECT c.oid::regclass FROM pg_class c
            WHERE c.relnamespace = current_schema()::regnamespace
              AND CASE WHEN c.relkind = 'S' THEN NOT has_sequence_privilege(role, c.oid, 'USAGE') ELSE false END
        LOOP
            EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE %s TO %I', rel, role);
        END LOOP;
    END LOOP;
    -- A partition read directly would bypass the parent's policies.
    FOR rel IN
        SELECT c.oid::regclass FROM pg_class c
        WHERE c.relnamespace = current_schema()::regnamespace AND c.relispartition
          AND has_table_privilege('{TENANT_ROLE}', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')
    LOOP
        EXECUTE format('REVOKE ALL ON %s FROM {TENANT_ROLE}', rel);
    END LOOP;
END
$$
""".replace("%(excluded)s", "ARRAY[" + ", ".join(f"'{t}'" for t in NOT_GRANTED_TABLES) + "]::name[]")


def roles_exist(conn=default_connection) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT to_regrole(%s) IS NOT NULL AND to_regrole(%s) IS NOT NULL", [TENANT_ROLE, OPERATOR_ROLE])
        return bool(cur.fetchone()[0])


def sync_grants(conn=default_connection) -> None:
    """Grant both roles the tables and sequences of the schema (idempotent)."""
    with conn.cursor() as cur:
        cur.execute(GRANTS_SQL)


def _on_post_migrate(sender, app_config=None, using="default", **kwargs) -> None:
    if app_config is None or app_config.label != "tenants":
        return
    conn = connections[using]
    if enabled(conn) and roles_exist(conn):
        sync_grants(conn)


def forwards(tables: Iterable[str]):
    """A migration operation: RLS on these tenant-owned tables (PostgreSQL only)."""
    tables = list(tables)

    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        with schema_editor.connection.cursor() as cur:  # no parameters: the SQL has % of its own
            cur.execute(CREATE_ROLES_SQL)
            for table in tables:
                for statement in enable_sql(table):
                    cur.execute(statement)
            cur.execute(GRANTS_SQL)

    def back(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        with schema_editor.connection.cursor() as cur:
            for table in tables:
                for statement in disable_sql(table):
                    cur.execute(statement)

    return migrations.RunPython(run, back, elidable=False)


post_migrate.connect(_on_post_migrate, dispatch_uid="fleetwatch_rls_post_migrate")
