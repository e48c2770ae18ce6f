"""The benchmarks' raw-COPY baseline (import it once Django is set up: ``bench._common.setup_django``).

The ingestion target is measured against it (bench_ingest.py), and the other scripts
seed points with it, faster than the product's write path."""

from __future__ import annotations

import numpy as np
from django.db import transaction

from config.pg import copy_in, is_postgresql, raw_connection, us_to_datetime


def copy_raw(
    tenant_id: int, series_ids: np.ndarray, ts_ns: np.ndarray, values: np.ndarray, *, method: str = "write_row"
) -> int:
    """Binary COPY of the rows straight into the hot table, with no de-duplication,
    upsert, ownership check or counters (PostgreSQL only; duplicate keys fail).
    ``method="write_row"``: psycopg's ``copy.write_row`` per row (the usual way to COPY
    from Python, the baseline of the ingestion target); ``"numpy"``: one payload built
    with numpy, as the product's write path builds it."""
    if not is_postgresql():
        raise NotImplementedError("copy_raw: PostgreSQL only")
    series_ids = np.asarray(series_ids, dtype=np.int64)
    ts_us = np.asarray(ts_ns, dtype=np.int64) // 1000
    values = np.asarray(values, dtype=np.float64)
    with transaction.atomic(), raw_connection().cursor() as cur:
        if method == "numpy":
            tenants = np.full(len(values), tenant_id, dtype=np.int64)
            copy_in(cur, "analytics_point", ("tenant_id", "series_id", "ts", "value"),
                    [("int8", tenants), ("int8", series_ids), ("timestamptz", ts_us), ("float8", values)])
        elif method == "write_row":
            with cur.copy("COPY analytics_point (tenant_id, series_id, ts, value) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "int8", "timestamptz", "float8"])
                for s, t, v in zip(series_ids.tolist(), ts_us.tolist(), values.tolist(), strict=True):
                    copy.write_row((tenant_id, s, us_to_datetime(t), v))
        else:
            raise ValueError(f"copy_raw: unknown method {method!r}")
    return len(values)
