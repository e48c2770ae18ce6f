"""A tenant's weights for the WEIGHTED aggregation: what may be stored, and what a run uses.

Three JSON fields of ``Tenant``, each an object of name to positive number (anything not
listed weighs 1):

- ``metric_weights``, by metric name (``{"cpu_usage": 2}``): a node's score is the
  weighted mean of its metrics' (empty: the defaults, FLEETWATCH_METRIC_WEIGHTS);
- ``node_weights``, by ``"cluster/node"`` (``{"prod/db-1": 3}``): a cluster's score is
  the weighted mean of its nodes';
- ``cluster_weights``, by cluster name (``{"prod": 2}``): the tenant's score is the
  weighted mean of its clusters'.

At the cluster and tenant levels a child also counts once per metric it holds (see
``analytics.core.aggregation``), so WEIGHTED differs from MEAN even with no weight set.

Weights are checked where they are entered (the admin's tenant form, ``PATCH
/api/v1/weights``): the error names the field and the key. A run never fails on them:
stored weights that are invalid anyway (written around those checks) are replaced by
equal weights for their level, and the run records a warning (``results.weights``).
"""

from __future__ import annotations

import math
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

from tenants.names import NAME_MAX_LENGTH, NAME_RE, NAME_RULE

FIELDS = ("metric_weights", "node_weights", "cluster_weights")
MAX_WEIGHT = 1_000_000.0
MAX_ENTRIES = 10_000


def _name_problem(field_name: str, key: str) -> str | None:
    names = key.split("/") if field_name == "node_weights" else [key]
    if field_name == "node_weights" and len(names) != 2:
        return f'{key!r} is not a node: write "cluster/node"'
    for name in names:
        if len(name) > NAME_MAX_LENGTH or not NAME_RE.match(name):
            return f"{key!r}: {NAME_RULE} (at most {NAME_MAX_LENGTH} characters)"
    return None


def check_weights(field_name: str, value: Any) -> dict[str, float]:
    """The weights as floats if valid; otherwise ``ValueError`` naming the field and the key."""
    if not isinstance(value, dict):
        raise ValueError(f"{field_name}: must be an object of name to weight, got {type(value).__name__}")
    if len(value) > MAX_ENTRIES:
        raise ValueError(f"{field_name}: at most {MAX_ENTRIES} weights, got {len(value)}")
    checked = {}
    for key, weight in value.items():
        problem = _name_problem(field_name, key)
        if problem:
            raise ValueError(f"{field_name}: {problem}")
        if (isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight)
                or not 0 < weight <= MAX_WEIGHT):
            raise ValueError(f"{field_name}: the weight of {key!r} must be a number above 0 and at most {MAX_WEIGHT:g},"
                             f" got {weight!r}")
        checked[key] = float(weight)
    return checked


@deconstructible
class WeightsValidator:
    """The model field's validator (so the admin's form checks it): ``check_weights``."""

    def __init__(self, field_name: str) -> None:
        self.field_name = field_name

    def __call__(self, value: Any) -> None:
        try:
            check_weights(self.field_name, value)
        except ValueError as exc:
            raise ValidationError(str(exc), code="invalid_weights") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WeightsValidator) and other.field_name == self.field_name
