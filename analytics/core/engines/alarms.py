"""Alarm post-processing against noise: from per-point scores to alarm points.

A point *passes* when its score reaches the threshold; it is *confirmed* when at least
``min_alarm_points`` points passed within the trailing ``confirm_window``; engines that
count suppression in points silence the ``suppress_points`` points after an alarm's
first point; an episode (run of alarm points) starting less than ``suppress`` after the
previous reported one ended is a repeat and dropped. Everything is causal, and
:func:`postprocess` continues an earlier call exactly through its ``carry``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class AlarmRules:
    """The common alarm parameters, durations in nanoseconds."""

    threshold: float
    min_alarm_points: int = 1
    confirm_window_ns: int = 0
    suppress_ns: int = 0
    gate_scores: bool = False


@dataclass
class AlarmCarry:
    """What :func:`postprocess` carries from one call to the next: the last alarm start
    relative to the next call's first point (None: none within suppression reach), the
    last reported alarm point, whether the last call ended on one, and the threshold
    crossings within ``confirm_window`` (for k-of-n)."""

    previous_start: int | None = None
    last_alarm_end_ns: int | None = None
    open: bool = False
    recent_hits_ns: list[int] = field(default_factory=list)


def confirm_alarms(
    scores: np.ndarray,
    timestamps_ns: np.ndarray,
    *,
    threshold: float,
    min_alarm_points: int = 1,
    confirm_window_ns: int = 0,
) -> np.ndarray:
    """Points with ``score >= threshold`` and at least ``min_alarm_points`` such points
    among those with timestamps in ``(t - confirm_window, t]``."""
    raw = np.asarray(scores, dtype=np.float64) >= threshold
    if min_alarm_points <= 1 or not raw.any():
        return raw
    counts = np.cumsum(raw)
    left = np.searchsorted(timestamps_ns, timestamps_ns - confirm_window_ns, side="right")
    before = np.where(left > 0, counts[np.maximum(left - 1, 0)], 0)
    return raw & ((counts - before) >= min_alarm_points)


def suppress_repeats(confirmed: np.ndarray, timestamps_ns: np.ndarray, suppress_ns: int) -> np.ndarray:
    """Episodes are maximal runs of confirmed points; an episode starting less than
    ``suppress`` after the last point of the previously *reported* episode is a repeat
    and dropped. Returns the points of the reported episodes."""
    confirmed = np.asarray(confirmed, dtype=bool)
    if suppress_ns <= 0 or not confirmed.any():
        return confirmed.copy()
    alarms = np.zeros_like(confirmed)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], confirmed.astype(np.int8), [0]])))
    last_end_ns: int | None = None
    for begin, end in zip(edges[0::2], edges[1::2], strict=True):  # [begin, end)
        if last_end_ns is not None and int(timestamps_ns[begin]) - last_end_ns < suppress_ns:
            continue
        alarms[begin:end] = True
        last_end_ns = int(timestamps_ns[end - 1])
    return alarms


def suppress_following_points(
    confirmed: np.ndarray, points: int, previous_start: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Point-counted suppression from the alarm's first point: a confirmed point starts
    an alarm unless it lies within ``points`` points after the previous alarm start; the
    ``points`` points after every alarm start are suppressed (whatever they score).
    ``previous_start``: index of the last alarm start before this array (negative, e.g.
    -3 = three points before its first point), for incremental calls.
    Returns (alarm starts, suppressed points).
    """
    confirmed = np.asarray(confirmed, dtype=bool)
    starts = np.zeros_like(confirmed)
    suppressed = np.zeros_like(confirmed)
    if points <= 0:
        return confirmed.copy(), suppressed
    n = len(confirmed)
    last = -points - 1 if previous_start is None else int(previous_start)
    suppressed[0:max(0, min(last + points + 1, n))] = True
    for i in np.flatnonzero(confirmed):
        if i - last > points:
            starts[i] = True
            last = int(i)
            suppressed[i + 1:min(i + points + 1, n)] = True
    return starts, suppressed


def last_start(starts: np.ndarray, previous_start: int | None) -> int | None:
    """Index of the last alarm start in ``starts`` (or ``previous_start``), relative to
    the array's first point; carry ``result - len(starts)`` to the next call."""
    idx = np.flatnonzero(starts)
    return int(idx[-1]) if idx.size else previous_start


def postprocess(
    scores: np.ndarray,
    timestamps_ns: np.ndarray,
    rules: AlarmRules,
    *,
    suppress_points: int = 0,
    carry: AlarmCarry | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, AlarmCarry]:
    """Alarms of new points, continuing an earlier call whose ``carry`` is given.

    Returns (scores, alarms, confirmed, carry for the next call): the same as one call
    over all the points. With ``suppress_points > 0`` only the first point of an alarm
    alarms and the scores of the ``suppress_points`` points after it are set to 0;
    ``confirmed`` keeps every point that passed, so detect() still folds a sustained
    anomaly into one episode.
    """
    carry = carry or AlarmCarry()
    threshold, k, window_ns = rules.threshold, rules.min_alarm_points, rules.confirm_window_ns
    hits = [int(t) for t in carry.recent_hits_ns]
    scores = np.asarray(scores, dtype=np.float64)
    n = len(scores)
    ts = np.asarray(timestamps_ns, dtype=np.int64)
    raw = scores >= threshold
    if k > 1 and hits:
        pre_ts = np.concatenate([np.asarray(hits, dtype=np.int64), ts])
        pre_scores = np.concatenate([np.ones(len(hits)), scores])
        confirmed = confirm_alarms(pre_scores, pre_ts, threshold=threshold, min_alarm_points=k,
                                   confirm_window_ns=window_ns)[len(hits):]
    else:
        confirmed = confirm_alarms(scores, ts, threshold=threshold, min_alarm_points=k, confirm_window_ns=window_ns)
    starts = confirmed
    if suppress_points > 0:
        starts, suppressed = suppress_following_points(confirmed, suppress_points, carry.previous_start)
        scores = np.where(suppressed, 0.0, scores)
    last_end = carry.last_alarm_end_ns
    if last_end is not None and starts.any():
        # the earlier reported alarm as a prefix; a gap point unless it continues here
        prefix = np.array([True] if carry.open else [True, False])
        prefix_ts = np.array([last_end] if carry.open else [last_end, last_end + 1], dtype=np.int64)
        alarms = suppress_repeats(np.concatenate([prefix, starts]), np.concatenate([prefix_ts, ts]),
                                  rules.suppress_ns)[len(prefix):]
    else:
        alarms = suppress_repeats(starts, ts, rules.suppress_ns)
    if rules.gate_scores:
        scores = np.where(alarms, scores, 0.0)
    new_hits: list[int] = []
    if k > 1 and n:
        new_hits = [t for t in hits + [int(t) for t in ts[raw]] if t > int(ts[-1]) - window_ns][-(k - 1):]
    nxt = None
    if suppress_points > 0:
        start = last_start(starts, carry.previous_start)
        if start is not None and start - n >= -suppress_points - 1:
            nxt = start - n
    if alarms.any():
        last_end = int(ts[np.flatnonzero(alarms)[-1]])
    return scores, alarms, confirmed, AlarmCarry(nxt, last_end, bool(alarms[-1]) if n else carry.open, new_hits)
