"""What a root-cause analysis returns (``analysis.analyse_window``): the series that moved,
the groups that moved together, the candidate origins ranked, and one sentence.
Plain frozen dataclasses; ``to_dict()`` gives JSON-ready data (times as ISO 8601)."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from analytics.core.contracts import Direction

Key = tuple[Hashable, Hashable, Hashable, str]  # MetricSeries.key: (tenant, cluster, node, metric)


@dataclass(frozen=True)
class Moved:
    """One series that changed in the window: its change point (``onset``), when the
    change became certain (``detected``), which way, and its peak deviation after it."""

    key: Key
    node: str  # the node's name when the series carries one (metadata "node"), else its id
    onset: datetime
    detected: datetime
    direction: Direction
    peak_sigma: float

    @property
    def cluster(self) -> Hashable:
        return self.key[1]

    @property
    def metric(self) -> str:
        return self.key[3]

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": _json_id(self.key[1]), "node_id": _json_id(self.key[2]), "node": self.node,
            "metric": self.metric, "onset": self.onset.isoformat(), "detected": self.detected.isoformat(),
            "direction": self.direction.value, "peak_sigma": round(self.peak_sigma, 2),
        }


@dataclass(frozen=True)
class GroupMember:
    moved: Moved
    lag_seconds: float  # onset after the group's first onset
    correlation: float  # with the group's first series, at the best lag (signed)
    correlation_lag_seconds: float  # that lag: how far this series' deviation trails the first one's

    def to_dict(self) -> dict[str, Any]:
        return {**self.moved.to_dict(), "lag_seconds": self.lag_seconds, "correlation": round(self.correlation, 3),
                "correlation_lag_seconds": self.correlation_lag_seconds}


@dataclass(frozen=True)
class CoMovementGroup:
    """Series of one cluster that moved together, by onset."""

    members: tuple[GroupMember, ...]

    @property
    def first(self) -> Moved:
        return self.members[0].moved

    def keys(self) -> list[Key]:
        return [m.moved.key for m in self.members]

    def to_dict(self) -> dict[str, Any]:
        return {"size": len(self.members), "members": [m.to_dict() for m in self.members]}


@dataclass(frozen=True)
class OriginCandidate:
    rank: int  # 1 = the likeliest origin
    moved: Moved
    lead_seconds: float | None  # before the next onset of its group; None when it moved alone
    followers: int  # series of its group that started after it
    confidence: float  # in [0, 1]
    evidence: str

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, **self.moved.to_dict(), "lead_seconds": self.lead_seconds,
                "followers": self.followers, "confidence": round(self.confidence, 3), "evidence": self.evidence}


@dataclass(frozen=True)
class RootCauseHint:
    start: datetime
    end: datetime
    step_seconds: int
    analysed: int  # series with a baseline, out of
    series: int
    moved: tuple[Moved, ...]  # by onset
    groups: tuple[CoMovementGroup, ...]  # largest first
    candidates: tuple[OriginCandidate, ...]  # likeliest first
    origin: OriginCandidate | None  # None: the evidence does not single one out
    confidence: float
    text: str

    def group_of(self, key: Key) -> CoMovementGroup | None:
        return next((g for g in self.groups if key in g.keys()), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(), "end": self.end.isoformat(), "step_seconds": self.step_seconds,
            "series": self.series, "analysed": self.analysed, "text": self.text, "confidence": round(self.confidence, 3),
            "origin": self.origin.to_dict() if self.origin else None,
            "candidates": [c.to_dict() for c in self.candidates],
            "groups": [g.to_dict() for g in self.groups],
        }


def _json_id(value: Hashable) -> Any:
    return value if isinstance(value, int | str) else str(value)
