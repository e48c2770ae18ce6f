"""Which incidents a rule notifies and which a silence holds back. Glob matchers
(``fnmatch``: ``*``, ``?``, ``[ab]``), case-sensitive like the names they match; an empty
list of globs matches everything."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Protocol

from results.notifications.facts import IncidentFacts

SILENCE_LABELS = ("cluster", "node", "metric", "severity")


class RuleLike(Protocol):
    min_peak_score: float
    min_duration_seconds: int
    clusters: list[str]
    nodes: list[str]
    metrics: list[str]


class SilenceLike(Protocol):
    matchers: dict[str, str]
    starts_at: datetime
    ends_at: datetime


def any_glob(globs: Iterable[str], values: Iterable[str]) -> bool:
    globs = list(globs)
    return not globs or any(fnmatchcase(value, glob) for glob in globs for value in values)


def rule_matches(rule: RuleLike, facts: IncidentFacts, now: datetime) -> bool:
    return (
        facts.peak_score >= rule.min_peak_score
        and facts.duration_seconds(now) >= rule.min_duration_seconds
        and any_glob(rule.clusters, [facts.cluster])
        and any_glob(rule.nodes, [facts.node])
        and any_glob(rule.metrics, facts.metrics)
    )


def check_matchers(matchers: Mapping[str, object]) -> dict[str, str]:
    """A silence's matchers: label -> glob, labels from SILENCE_LABELS, at least one."""
    if not isinstance(matchers, Mapping) or not matchers:
        raise ValueError(f"expected an object of label -> glob with at least one of {', '.join(SILENCE_LABELS)}")
    for label, glob in matchers.items():
        if label not in SILENCE_LABELS:
            raise ValueError(f"{label!r}: not a label (expected one of {', '.join(SILENCE_LABELS)})")
        if not isinstance(glob, str) or not glob:
            raise ValueError(f"{label!r}: expected a non-empty glob string")
    return dict(matchers)  # type: ignore[arg-type]


def silence_matches(silence: SilenceLike, facts: IncidentFacts, at: datetime) -> bool:
    """Active at ``at`` (start inclusive, end exclusive) and every matcher matches."""
    if not silence.starts_at <= at < silence.ends_at:
        return False
    values = {"cluster": [facts.cluster], "node": [facts.node], "metric": list(facts.metrics), "severity": [facts.severity]}
    return all(any_glob([glob], values[label]) for label, glob in silence.matchers.items())
