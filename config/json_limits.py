"""JSON bodies with bounded nesting (``FLEETWATCH_MAX_JSON_DEPTH``).

The standard library's decoder recurses once per level, so a body nested a few thousand
deep raises RecursionError (a 500); orjson stops at 1,024 levels by itself. Either way
the client is told the limit, and decoded bodies are checked against it, so code that
walks a body (serializers, validators) never meets more levels than that.
Plain Python: the ingestion parser (no Django) and the API's parser both use it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import orjson


class JsonTooDeep(ValueError):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"nested deeper than {limit} levels")


CONTAINERS = frozenset({dict, list})  # what a JSON decoder builds arrays and objects as


def check_depth(value: object, limit: int) -> None:
    """Raise JsonTooDeep if ``value`` has more than ``limit`` levels of arrays and
    objects. Level by level (no recursion to exhaust), each container once; a container
    whose children hold no container is passed over by a C-level type scan, so a
    50,000-point batch costs a fraction of its decoding."""
    level: list[object] = [value] if type(value) in CONTAINERS else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            raise JsonTooDeep(limit)
        deeper: list[object] = []
        for container in level:
            children: Iterable[object] = container.values() if type(container) is dict else container  # type: ignore[assignment]
            if not CONTAINERS.isdisjoint(map(type, children)):
                deeper.extend(child for child in children if type(child) in CONTAINERS)
        level = deeper


def loads_bounded(body: bytes | str, limit: int, *, allow_nan: bool = False) -> object:
    """Decode with orjson; with ``allow_nan``, what orjson refuses is retried with the
    standard library, which decodes the NaN/Infinity literals some clients send.
    Raises JsonTooDeep, or ValueError (UnicodeDecodeError included) for a malformed body."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc) or "recursion" in str(exc).lower():
            raise JsonTooDeep(limit) from None
        if not allow_nan:
            raise
        try:
            value = json.loads(body)
        except RecursionError:
            raise JsonTooDeep(limit) from None
    check_depth(value, limit)
    return value
