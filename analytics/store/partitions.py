"""Daily partitions of the hot points table (PostgreSQL; a no-op elsewhere).

``analytics_point`` is partitioned by range of ``ts``: one partition per UTC day,
``analytics_point_pYYYYMMDD``, plus ``analytics_point_default`` for any day without
one. Correctness never depends on partitions existing (rows then land in DEFAULT and
compaction handles them there); daily partitions make compaction a TRUNCATE and keep
each day's rows together on disk.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

from django.db import OperationalError, connection, transaction

from config.pg import is_postgresql

log = logging.getLogger(__name__)

PARENT = "analytics_point"
DEFAULT = "analytics_point_default"
LOCK_TIMEOUT = "5s"
COMPACTION_LOCK = 0x46570001  # advisory lock class for one day's compaction; the day ordinal is the second key


def partition_name(day: date) -> str:
    return f"{PARENT}_p{day:%Y%m%d}"


def _bounds(day: date) -> tuple[str, str]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start.isoformat(), (start + timedelta(days=1)).isoformat()


def daily_partitions() -> dict[date, str]:
    """{day: partition name} of the attached daily partitions."""
    if not is_postgresql():
        return {}
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT c.relname FROM pg_inherits i
            JOIN pg_class c ON c.oid = i.inhrelid
            JOIN pg_class p ON p.oid = i.inhparent
            WHERE p.relname = %s AND c.relname <> %s
            """,
            [PARENT, DEFAULT],
        )
        names = [row[0] for row in cur.fetchall()]
    out = {}
    for name in names:
        try:
            out[datetime.strptime(name[-8:], "%Y%m%d").date()] = name
        except ValueError:
            continue  # not one of ours
    return out


def create_partition(day: date) -> bool:
    """Create ``day``'s partition (moving rows of that day out of DEFAULT first);
    False if it already exists.

    Takes ACCESS EXCLUSIVE on the parent first (creating or attaching a partition needs
    it anyway; taking it before anything else avoids lock-order deadlocks with
    ingestion), with a lock timeout, for a moment: the check of DEFAULT is an index
    probe, and DEFAULT is small."""
    name = partition_name(day)
    lo, hi = _bounds(day)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        cur.execute(f"LOCK TABLE {PARENT} IN ACCESS EXCLUSIVE MODE")
        cur.execute("SELECT to_regclass(%s)", [name])
        if cur.fetchone()[0] is not None:
            return False
        cur.execute(f"SELECT 1 FROM {DEFAULT} WHERE ts >= %s AND ts < %s LIMIT 1", [lo, hi])
        if cur.fetchone() is None:
            cur.execute(f"CREATE TABLE {name} PARTITION OF {PARENT} FOR VALUES FROM (%s) TO (%s)", [lo, hi])
            return True
        # Rows of that day sit in DEFAULT: move them into a new table, then attach it
        # (attaching checks that DEFAULT holds none of its range; the CHECK constraint
        # spares the scan of the new table).
        cur.execute(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        cur.execute(f"ALTER TABLE {name} ADD PRIMARY KEY (tenant_id, series_id, ts)")
        cur.execute(
            f"INSERT INTO {name} SELECT * FROM {DEFAULT} WHERE ts >= %s AND ts < %s ORDER BY tenant_id, series_id, ts", [lo, hi]
        )
        cur.execute(f"DELETE FROM {DEFAULT} WHERE ts >= %s AND ts < %s", [lo, hi])
        cur.execute(f"ALTER TABLE {name} ADD CONSTRAINT {name}_range CHECK (ts >= '{lo}' AND ts < '{hi}')")
        cur.execute(f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)", [lo, hi])
        cur.execute(f"ALTER TABLE {name} DROP CONSTRAINT {name}_range")
        return True


def ensure_partitions(days_ahead: int = 3, days_behind: int = 0, now: datetime | None = None) -> list[str]:
    """Make sure the daily partitions from ``days_behind`` days ago to ``days_ahead``
    days ahead exist (idempotent). Returns the names created.

    Past days are not created by default: compaction drops a closed day's partition,
    and re-creating it would only churn; late points for such days wait in DEFAULT."""
    if not is_postgresql():
        return []
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    existing = daily_partitions()
    created = []
    for offset in range(-days_behind, days_ahead + 1):
        day = today + timedelta(days=offset)
        if day not in existing and create_partition(day):
            created.append(partition_name(day))
    if created:
        log.info("created partitions %s", ", ".join(created))
    return created


def drop_partition_if_empty(day: date) -> bool:
    """Drop ``day``'s partition if it holds no rows (after compaction). Takes a brief
    ACCESS EXCLUSIVE lock on the parent, so it gives up after a short lock timeout
    rather than stall ingestion; a later run retries."""
    name = partition_name(day)
    try:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", [COMPACTION_LOCK, day.toordinal()])
            cur.execute("SET LOCAL lock_timeout = '2s'")
            cur.execute("SELECT to_regclass(%s)", [name])
            if cur.fetchone()[0] is None:
                return False
            cur.execute(f"LOCK TABLE {PARENT} IN ACCESS EXCLUSIVE MODE")
            cur.execute(f"SELECT 1 FROM {name} LIMIT 1")
            if cur.fetchone() is not None:
                return False  # a late point arrived since: the next compaction takes it
            cur.execute(f"DROP TABLE {name}")
            return True
    except OperationalError as exc:  # lock timeout
        log.warning("could not drop partition %s now: %s", name, exc)
        return False
