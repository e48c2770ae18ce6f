"""What a notification says: a plain snapshot of its incident at the event, stored with
the notification (so a retry sends what was true then, and delivery needs no join)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from django.conf import settings

# "repost": Alertmanager is told again that a firing alert still fires (it forgets it otherwise).
EVENTS = ("opened", "updated", "acknowledged", "resolved", "reopened", "reminder", "repost", "test")


@dataclass(frozen=True)
class IncidentFacts:
    incident_id: int
    event: str
    cluster: str
    node: str  # "" for an incident of a whole cluster
    severity: str
    peak_score: float
    started_at: datetime
    summary: str
    explanation: str = ""
    metrics: tuple[str, ...] = field(default_factory=tuple)
    resolved_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.event not in EVENTS:
            raise ValueError(f"event: expected one of {', '.join(EVENTS)}, got {self.event!r}")

    @property
    def firing(self) -> bool:
        return self.resolved_at is None

    @property
    def link(self) -> str:
        return f"{settings.FLEETWATCH_BASE_URL}/incidents/{self.incident_id}"

    def duration_seconds(self, now: datetime) -> float:
        return ((self.resolved_at or now) - self.started_at).total_seconds()

    def to_json(self) -> dict:
        data = asdict(self)
        data["metrics"] = list(self.metrics)
        data["started_at"] = self.started_at.isoformat()
        data["resolved_at"] = self.resolved_at.isoformat() if self.resolved_at else None
        return data

    @classmethod
    def from_json(cls, data: dict) -> IncidentFacts:
        return cls(**{
            **data,
            "metrics": tuple(data.get("metrics", ())),
            "started_at": datetime.fromisoformat(data["started_at"]),
            "resolved_at": datetime.fromisoformat(data["resolved_at"]) if data.get("resolved_at") else None,
        })
