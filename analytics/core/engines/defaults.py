"""The product's default engine configuration: what a tenant gets unless it chooses.

The evaluation harness uses it when no ``--engine`` is given
(``python -m analytics.core.evaluation.harness --data ../shared/datasets/nab``); see
``docs/evaluation.md`` for the scores.

Status: on the NAB subset the ``adtk`` engine scores 2.8 (standard profile) with its own
defaults, below the quality target of 55, and no setting of its current parameters gets
near it (best tried: 8.8 with ``{"gate_scores": True, "suppress": "1d", "threshold": 0.8}``,
which would also silence every repeat alarm for a day for every tenant). The defaults are
therefore left at the engine's own until the engine gains what ``docs/evaluation.md``
lists (per-series normalisation, seasonal differences, suppression in points from the
alarm's first point); a prototype with those reaches 57.8.
"""

from __future__ import annotations

from typing import Any

DEFAULT_ENGINE = "adtk"

DEFAULT_PARAMS: dict[str, Any] = {}
