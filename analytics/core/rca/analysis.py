"""Root-cause hints for one window: ``analyse_window(series, start, end)``.

The points before ``start`` are each series' baseline; the window is ``[start, end)``.

1. Onsets (``onsets``): which series changed, and when (a causal change point).
2. Co-movement (``comovement``): the changed series of one cluster whose deviations
   correlate (at some lag up to ``max_lag_seconds``) form a group.
3. Origins: the groups are ranked largest first (then earliest; the group of a
   ``focus`` series, when one is given, before all others); within a group the
   series are ranked by onset. The first series of the first group is the likely
   origin when it leads the next onset of its group by at least ``min_lead_steps``
   sampling steps; with a smaller lead, or with nothing moving alongside it, the
   hint says "no clear origin" rather than guess.
4. Confidence of the first of a group: ``lead / (lead + confidence_steps x step)``
   (a long lead is convincing, a lead of a step or two is not) times
   ``followers / (followers + 1)`` (one follower proves less than five); every later
   member of the group shares what is left, less the further it trails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from analytics.core.contracts import MetricSeries
from analytics.core.formatting import format_lag
from analytics.core.rca.comovement import CoMovementSettings, lagged_correlation, link_groups
from analytics.core.rca.hint import CoMovementGroup, GroupMember, Key, Moved, OriginCandidate, RootCauseHint
from analytics.core.rca.onsets import Grid, Onset, OnsetSettings, deviations, find_onsets, sampling_step, to_grid
from analytics.core.rca.text import hint_sentence


@dataclass(frozen=True)
class RcaSettings:
    onsets: OnsetSettings = field(default_factory=OnsetSettings)
    comovement: CoMovementSettings = field(default_factory=CoMovementSettings)
    min_lead_steps: float = 3.0
    confidence_steps: float = 5.0

    def __post_init__(self) -> None:
        for name in ("min_lead_steps", "confidence_steps"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"{name}: must be a positive number, got {value!r}")


def analyse_window(
    series: Sequence[MetricSeries], start: datetime, end: datetime, settings: RcaSettings | None = None,
    focus: Key | None = None,
) -> RootCauseHint:
    """The hint for ``[start, end)``; with ``focus`` (a series key), the group holding that
    series comes first, so the origin and the sentence are about what moved with it."""
    settings = settings or RcaSettings()
    for name, moment in (("start", start), ("end", end)):
        if not isinstance(moment, datetime) or moment.tzinfo is None:
            raise ValueError(f"{name}: must be a timezone-aware datetime")
    if not all(isinstance(s, MetricSeries) for s in series):
        raise ValueError("series: expected MetricSeries")
    step = sampling_step(series)
    grid = to_grid(series, start, end, step, settings.onsets.log_positive)
    dev = deviations(grid, settings.onsets)
    onsets = sorted(find_onsets(dev, settings.onsets), key=lambda o: (o.cell, o.alarm_cell, str(series[o.row].key)))
    onsets = onsets[: settings.comovement.max_series]
    moved = [_moved(series[o.row], o, grid) for o in onsets]
    groups = _groups(moved, onsets, dev.z, step, settings.comovement, focus)
    candidates = _candidates(groups, step, settings)
    first = candidates[0] if candidates else None
    clear = first is not None and first.lead_seconds is not None and first.lead_seconds >= settings.min_lead_steps * step
    origin = first if clear else None
    return RootCauseHint(
        start=start, end=end, step_seconds=step, analysed=int(dev.analysed.sum()), series=len(series),
        moved=tuple(moved), groups=tuple(groups), candidates=tuple(candidates), origin=origin,
        confidence=origin.confidence if origin else 0.0, text=hint_sentence(groups, origin),
    )


def _moved(s: MetricSeries, onset: Onset, grid: Grid) -> Moved:
    return Moved(s.key, str(s.metadata.get("node", s.node_id)), grid.time(onset.cell), grid.time(onset.alarm_cell),
                 onset.direction, onset.peak_sigma)


def _groups(moved: list[Moved], onsets: list[Onset], z: np.ndarray, step: int,
            settings: CoMovementSettings, focus: Key | None) -> list[CoMovementGroup]:
    if not moved:
        return []
    rows = np.asarray([o.row for o in onsets])
    corr = lagged_correlation(z[rows], settings.max_lag_seconds // step, settings.clip_sigma,
                              settings.floor_sigma)
    groups = []
    for members in link_groups(corr.corr, [m.cluster for m in moved], settings.min_correlation):
        head = members[0]  # rows are in onset order, so the first member is the earliest
        groups.append(CoMovementGroup(tuple(
            GroupMember(moved[i], (moved[i].onset - moved[head].onset).total_seconds(),
                        float(corr.corr[head, i]) if i != head else 1.0, float(corr.lag[head, i] * step))
            for i in members
        )))
    return sorted(groups, key=lambda g: (focus not in g.keys(), -len(g.members), g.first.onset))


def _candidates(groups: list[CoMovementGroup], step: int, settings: RcaSettings) -> list[OriginCandidate]:
    scale = settings.confidence_steps * step
    out: list[OriginCandidate] = []
    for group in groups:
        onsets = [m.moved.onset for m in group.members]
        head_confidence = 0.0
        for k, member in enumerate(group.members):
            later = [t for t in onsets if t > member.moved.onset]
            lead = (min(later) - member.moved.onset).total_seconds() if later else None
            if k == 0:
                followers = len(later)
                head_confidence = 0.0 if lead is None else lead / (lead + scale) * followers / (followers + 1)
                confidence = head_confidence
            else:
                confidence = (1 - head_confidence) * scale / (scale + member.lag_seconds) / (len(group.members) - 1)
            out.append(OriginCandidate(len(out) + 1, member.moved, lead, len(later), confidence,
                                       _evidence(member, lead, len(later), group)))
    return out


def _evidence(member: GroupMember, lead: float | None, followers: int, group: CoMovementGroup) -> str:
    moved = member.moved
    when = f"changed at {moved.onset:%H:%M} UTC ({moved.peak_sigma:.1f} sigma at most)"
    if len(group.members) == 1:
        return when + ", nothing moved with it"
    behind = f"{format_lag(member.lag_seconds)} after {group.first.node} {group.first.metric}, " if member.lag_seconds else ""
    ahead = f"{format_lag(lead)} before the next of {followers} that followed" if lead is not None else "the last to move"
    return f"{when}; {behind}{ahead} (group of {len(group.members)})"

