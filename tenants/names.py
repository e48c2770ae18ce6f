"""What agents may call a cluster, a node or a metric: one rule for all three.

Letters, digits and ``_ . : -``, starting with a letter or digit, at most 128
characters. The models validate it (``tenants.models``), the ingestion parser checks it
(``analytics.ingest``) and the protocol translations sanitise names into it
(``analytics.protocols``). No Django here, so the parser stays Django-free.
"""

from __future__ import annotations

import re

NAME_CHARACTERS = r"A-Za-z0-9_.:\-"  # a regular-expression character class body
NAME_PATTERN = rf"^[A-Za-z0-9][{NAME_CHARACTERS}]*$"
NAME_RE = re.compile(NAME_PATTERN)
NAME_MAX_LENGTH = 128
NAME_RULE = "letters, digits and _ . : - only; must start with a letter or digit"

SeriesKey = tuple[str, str, str]  # a series by name: (cluster, node, metric)
