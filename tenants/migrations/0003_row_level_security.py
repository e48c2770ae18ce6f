"""Row-level security on every tenant-owned table (PostgreSQL; a no-op elsewhere).

Creates the cluster-global roles ``fleetwatch_tenant`` and ``fleetwatch_operator`` if
missing, ENABLEs and FORCEs RLS with a tenant policy and an operators' policy on each
table, and grants both roles the schema's tables (see ``tenants.rls`` and docs/rls.md).

A migration that adds a tenant-owned model adds its table the same way:
``rls.forwards(["app_model"])`` (tests/security_rls checks that none is missing).
"""

from django.db import migrations

from tenants import rls

TABLES = [
    "tenants_membership",
    "tenants_cluster",
    "tenants_node",
    "tenants_apikey",
    "tenants_usagedaily",
    "tenants_usagemonth",
    "tenants_seriesactivity",
    "analytics_series",
    "analytics_point",  # the partitioned parent: its policies apply to every query through it
    "analytics_chunk",
    "analytics_rollup",
    "analytics_tenantdailycounter",
    "analytics_nodedailycounter",
    "results_detectionrun",
    "results_anomaly",
    "results_aggregatedscore",
    "results_enginesetting",
    "results_enginestate",
]


class Migration(migrations.Migration):

    dependencies = [
        ("tenants", "0002_usage_metering"),
        ("analytics", "0001_initial"),
        ("results", "0001_initial"),
    ]

    operations = [rls.forwards(TABLES)]
