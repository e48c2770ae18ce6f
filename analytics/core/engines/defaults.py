"""The product's default engine configuration: what a tenant gets unless it chooses.

The evaluation harness uses it when no ``--engine`` is given
(``python -m analytics.core.evaluation.harness --data ../shared/datasets/nab``); see
``docs/evaluation.md`` for the scores.

The ``adtk`` engine's own defaults are the chosen configuration (per-series likelihood over
streamed block statistics, multi-scale level and seasonal-difference components, a
one-point spike path, a seasonal baseline that does not learn anomalous blocks, 150-point
suppression, likelihood window 10,000 points); on the NAB
subset they score 60.25 (standard profile, swept threshold 0.501) and 59.64 at the fixed
product threshold 0.5.
``DEFAULT_PARAMS`` is therefore empty: a tenant gets exactly the engine defaults.
"""

from __future__ import annotations

from typing import Any

DEFAULT_ENGINE = "adtk"

DEFAULT_PARAMS: dict[str, Any] = {}
