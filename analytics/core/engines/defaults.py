"""The product's default engine configuration: what a tenant gets unless it chooses.

The evaluation harness uses it when no ``--engine`` is given
(``python -m analytics.core.evaluation.harness --data ../shared/datasets/nab``); see
``docs/evaluation.md`` for the scores.

The ``adtk`` engine's own defaults are the chosen configuration (per-series likelihood,
multi-scale level and seasonal-difference components, 150-point suppression, refit every
6 h, likelihood window 10,000 points); on the NAB subset they score 55.1 (standard
profile, swept threshold 0.501) and 54.3 at the fixed product threshold 0.5.
``DEFAULT_PARAMS`` is therefore empty: a tenant gets exactly the engine defaults.
"""

from __future__ import annotations

from typing import Any

DEFAULT_ENGINE = "adtk"

DEFAULT_PARAMS: dict[str, Any] = {}
