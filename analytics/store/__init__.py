"""The metric store: write path, partitions, compaction, roll-ups, retention, reads.

Hot points are one row each (PostgreSQL: a table partitioned by day, plus DEFAULT);
closed days are compacted into one encoded chunk per series and day plus 5-minute and
1-hour roll-ups; retention follows each tenant's plan. Reads stitch hot and cold
transparently, so callers never know where a point lives.

Public entry points (import from the modules; this package imports nothing, so it is
safe to import before Django's apps are ready):

- ``write.resolve_series(tenant_id, keys, units=None)`` and
  ``write.write_points(tenant_id, series_ids, ts_ns, values)``: one batch, in the
  caller's transaction (names resolved once per process: ``series_ids``); the
  ingestion service (``analytics.ingestion``) is their caller.
- ``read.get_metric_series(...)``, ``read.get_metric_series_batch(...)``,
  ``read.series_points(...)``.
- ``partitions.ensure_partitions()``, ``compaction.compact()``,
  ``retention.apply_retention()``: run by the tasks in ``analytics.tasks``.
- ``counters.add_accepted()`` (by ``write_points``), ``counters.add_rejected()`` (by
  the ingestion service): the ingestion counters, read by ``analytics.health``.
"""
