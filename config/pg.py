"""PostgreSQL plumbing shared by the apps: binary COPY, binary array parameters and
array reads with numpy, time units (the metric store and the usage meter use it).

The binary COPY format of fixed-width columns is a fixed-size record per row, so a
numpy structured array (big-endian, unaligned) writes a whole batch at once: no
Python loop per row. Timestamps travel as PostgreSQL's int64 microseconds since
2000-01-01 UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
from django.db import connection
from psycopg import adapt, pq, sql

UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PG_EPOCH_OFFSET_US = 946_684_800_000_000  # 2000-01-01 - 1970-01-01 in microseconds
US_PER_DAY = 86_400_000_000
HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"

# column kinds: pg binary wire dtype
_WIRE = {"int8": ">i8", "float8": ">f8", "timestamptz": ">i8", "int4": ">i4"}


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def raw_connection():
    """The psycopg connection under Django's (same session, same transaction)."""
    connection.ensure_connection()
    return connection.connection


def us_to_datetime(us: int) -> datetime:
    return UNIX_EPOCH + timedelta(microseconds=int(us))


def datetime_to_us(value: datetime) -> int:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got {value!r}")
    delta = value - UNIX_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _wire(kind: str, array: np.ndarray) -> tuple[int, np.ndarray]:
    """(byte width, values as sent) of a column kind: timestamps move to PostgreSQL's epoch."""
    return (4 if kind == "int4" else 8), (array - PG_EPOCH_OFFSET_US if kind == "timestamptz" else array)


def _record_dtype(kinds: Sequence[str]) -> np.dtype:
    fields: list[tuple[str, str]] = [("n", ">i2")]
    for i, kind in enumerate(kinds):
        fields += [(f"l{i}", ">i4"), (f"c{i}", _WIRE[kind])]
    return np.dtype(fields)  # packed: no alignment padding


def build_copy_payload(columns: Sequence[tuple[str, np.ndarray]]) -> bytes:
    """Binary COPY payload of fixed-width, non-null columns: [(kind, array), ...].

    ``timestamptz`` arrays are int64 microseconds since the Unix epoch."""
    kinds = [kind for kind, _ in columns]
    n = len(columns[0][1])
    records = np.empty(n, dtype=_record_dtype(kinds))
    records["n"] = len(columns)
    for i, (kind, array) in enumerate(columns):
        records[f"l{i}"], records[f"c{i}"] = _wire(kind, array)
    return HEADER + records.tobytes() + TRAILER


# Binary array parameters: element type oid, array type oid.
_ARRAY_OIDS = {"int8": (20, 1016), "float8": (701, 1022), "timestamptz": (1184, 1185), "int4": (23, 1007)}


class ArrayParam:
    """A 1-d numpy array sent as one binary PostgreSQL array parameter (``kind`` as in
    ``build_copy_payload``; ``timestamptz``: int64 microseconds since the Unix epoch).

    Built by numpy like the COPY payload, so a thousand-element parameter costs no Python
    loop; the text form of a list (what Django's client-side binding sends) costs a
    Python conversion per element. Only cursors that bind on the server send it: use
    ``server_cursor()``."""

    __slots__ = ("kind", "array")

    def __init__(self, kind: str, array) -> None:
        self.kind = kind
        self.array = np.asarray(array)
        if kind != "float8" and len(self.array) and not np.issubdtype(self.array.dtype, np.integer):
            raise TypeError(f"ArrayParam({kind!r}): expected integers, got {self.array.dtype}")  # no silent truncation

    def binary(self) -> bytes:
        element_oid, _ = _ARRAY_OIDS[self.kind]
        n = len(self.array)
        if not n:
            return np.array([0, 0, element_oid], dtype=">i4").tobytes()
        header = np.array([1, 0, element_oid, n, 1], dtype=">i4").tobytes()
        items = np.empty(n, dtype=np.dtype([("l", ">i4"), ("v", _WIRE[self.kind])]))
        items["l"], items["v"] = _wire(self.kind, self.array)
        return header + items.tobytes()


def _array_param_dumper():
    class ArrayParamDumper(adapt.Dumper):
        format = pq.Format.BINARY

        def get_key(self, obj, format):
            return (ArrayParam, obj.kind)

        def upgrade(self, obj, format):
            return kind_dumpers[obj.kind](ArrayParam)

        def dump(self, obj):
            return obj.binary()

    kind_dumpers = {
        kind: type(f"ArrayParamDumper_{kind}", (ArrayParamDumper,), {"oid": array_oid})
        for kind, (_, array_oid) in _ARRAY_OIDS.items()
    }
    return ArrayParamDumper


def server_cursor():
    """A psycopg cursor on Django's connection (same session and transaction) that binds
    parameters on the server, so ``ArrayParam`` travels in binary."""
    conn = raw_connection()
    conn.adapters.register_dumper(ArrayParam, _ARRAY_PARAM_DUMPER)  # per connection: each copies the global map
    return psycopg.Cursor(conn)


def copy_in(cursor, table: str, column_names: Sequence[str], columns: Sequence[tuple[str, np.ndarray]]) -> None:
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, column_names))
    )
    with cursor.copy(statement) as copy:
        copy.write(build_copy_payload(columns))


_ARRAY_PARAM_DUMPER = _array_param_dumper()


def fetch_series_arrays(cursor, source, params=None) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """[(tenant_id, series_id, ts_us, values)] of the points ``source`` yields (an SQL
    query with columns tenant_id, series_id, ts, value), one entry per series in
    series order, each ascending in time.

    PostgreSQL packs each series' points into two bytea values (``string_agg`` of the
    binary send form: big-endian int64 microseconds and float64), which numpy reads
    with ``np.frombuffer``: a thousand rows to transfer and parse instead of one
    message per point (what makes a binary ``COPY TO`` slow to consume from Python).
    """
    query = sql.SQL(
        "WITH src AS ({}) SELECT tenant_id, series_id,"
        " string_agg(timestamptz_send(ts), ''::bytea ORDER BY ts), string_agg(float8send(value), ''::bytea ORDER BY ts)"
        " FROM src GROUP BY tenant_id, series_id ORDER BY series_id"
    ).format(source if isinstance(source, sql.Composable) else sql.SQL(source))
    with psycopg.Cursor(cursor.connection) as binary_cursor:  # Django's default cursors bind client-side: text only
        binary_cursor.execute(query, params, binary=True)
        rows = binary_cursor.fetchall()
    out = []
    for tenant_id, series_id, ts_data, value_data in rows:
        ts = np.frombuffer(ts_data, dtype=">i8").astype(np.int64) + PG_EPOCH_OFFSET_US
        out.append((tenant_id, series_id, ts, np.frombuffer(value_data, dtype=">f8").astype(np.float64)))
    return out
