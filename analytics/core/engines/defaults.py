"""The product's default engine configuration: what a tenant gets unless it chooses.

The evaluation harness uses it when no ``--engine`` is given. The ``adtk`` engine's own
defaults are the chosen configuration (docs/evaluation.md: how they were chosen and what
they score), so ``DEFAULT_PARAMS`` is empty: a tenant gets exactly the engine defaults.
"""

from __future__ import annotations

from typing import Any

DEFAULT_ENGINE = "adtk"

DEFAULT_PARAMS: dict[str, Any] = {}
