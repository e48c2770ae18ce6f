"""The write path's process-local memory of series ids by name.

Agents send the same series batch after batch, and resolving a thousand names costs two
indexed queries (a visible share of a batch's time: bench/bench_ingest.py's stage
profile), so each process remembers the ids it has resolved. Names are a series' identity, never changed once created (the admin
shows cluster and node names read-only; a series' own fields are not editable at all).
Nothing trusts an entry alone:

- entries are added only once the transaction that found or created them has
  committed (a rolled-back creation leaves no id behind);
- ``write_points`` checks every id it writes in the same transaction, under row-level
  security (its ``last_point_at`` update returns the tenant's rows it moved forward, a
  read the others). An entry gone stale (an operator deleted the series, its node or its
  cluster) fails the batch with ``UnknownSeries``, which forgets the tenant's entries;
  ``analytics.ingestion.store_batch`` then retries once, resolving from the database.

Bounded by ``FLEETWATCH_SERIES_ID_CACHE`` entries: past it, it starts over empty (the
simplest bound; refilling costs one lookup per batch and series).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.conf import settings
from django.db import transaction

from tenants.names import SeriesKey


class SeriesIdCache:
    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._ids: dict[int, dict[SeriesKey, int]] = {}
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def lookup(self, tenant_id: int, keys: Iterable[SeriesKey]) -> dict[SeriesKey, int]:
        known = self._ids.get(tenant_id)
        if not known:
            return {}
        return {key: known[key] for key in keys if key in known}

    def remember_on_commit(self, tenant_id: int, ids: Mapping[SeriesKey, int]) -> None:
        if ids and self.max_entries:
            ids = dict(ids)
            transaction.on_commit(lambda: self._add(tenant_id, ids))

    def _add(self, tenant_id: int, ids: dict[SeriesKey, int]) -> None:
        if self._size + len(ids) > self.max_entries:
            self.clear()
        known = self._ids.setdefault(tenant_id, {})
        before = len(known)
        known.update(ids)
        self._size += len(known) - before

    def forget(self, tenant_id: int) -> None:
        self._size -= len(self._ids.pop(tenant_id, {}))

    def clear(self) -> None:
        self._ids.clear()
        self._size = 0


series_id_cache = SeriesIdCache(settings.FLEETWATCH_SERIES_ID_CACHE)
