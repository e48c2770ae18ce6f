"""The product's default engine configuration: what a tenant gets unless it chooses.

Tuned on the NAB subset in ``shared/datasets/nab`` with the evaluation harness (one
configuration and one threshold for every file, causal scores); see
``docs/evaluation.md`` for the scores and the command that reproduces them.
"""

from __future__ import annotations

from typing import Any

DEFAULT_ENGINE = "adtk"

DEFAULT_PARAMS: dict[str, Any] = {}
