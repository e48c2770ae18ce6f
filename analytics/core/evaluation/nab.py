"""The Numenta Anomaly Benchmark (NAB) scoring method, as pure functions.

Follows the published method (Lavin & Ahmad 2015; Ahmad et al. 2017) and NAB's
reference sweeper, re-implemented here (no NAB code is copied):

* **Probationary period.** The first ``min(floor(0.15 * rows), 0.15 * 5000)`` rows
  (at most 750) of each file are not scored; detections there are ignored.
* **Windows.** Each labelled window ``[start, end]`` covers rows ``L..R`` in file
  order. A row ``i`` inside it has the relative position
  ``y = -(R - i + 1) / (R - L + 1)`` (``-1`` on the window's first row, close to ``0``
  on its last) and is worth ``tpWeight * scaled_sigmoid(y) / scaled_sigmoid(-1)``,
  so a detection on the first row earns exactly the TP weight. Only the best (= the
  earliest) detection inside a window counts; a window without one costs ``fnWeight``.
* **False positives.** A detection outside every window costs
  ``fpWeight * scaled_sigmoid(y)`` with ``y = (i - R_prev) / (W_prev - 1)``, the distance
  after the preceding window (row ``R_prev``, width ``W_prev``) in window lengths; a
  detection before the first window (or ``y >= 3``) costs the full ``fpWeight``.
  Every such detection counts, not only the first of a run.
* ``scaled_sigmoid(y) = 2 / (1 + exp(5 y)) - 1``, and ``-1`` for ``y >= 3``.
* **Threshold.** A row is a detection when ``score >= threshold``; one threshold is
  chosen for the whole corpus per profile (:func:`sweep_thresholds` evaluates every
  distinct score value exactly, as NAB's sweeper does).
* **Normalisation.** ``100 * (raw - null) / (perfect - null)``: ``null`` is the
  detector that never fires (``-fnWeight`` per scored window) and ``perfect`` fires
  on the first row of every window and nowhere else (``tpWeight`` per window).

Window rows are found the way NAB finds them, in file order, tolerating files whose
timestamps repeat or step back: windows are taken in start order; a window starts at
the first row (after the previous window's last row) whose timestamp is ``>= start``
and ends at the first row from there whose timestamp is ``== end`` (or, when the
label's end falls between samples, the last row before one that is ``> end``). On
NAB's data, whose window limits are sample timestamps, this is exactly NAB's
equality-based mapping.

Window-level counts (not part of NAB's score, reported alongside it): a window is
detected (TP) when at least one scored row inside it is a detection; an FP *event* is
a maximal run of consecutive scored rows outside windows that are all detections.
Precision = TP / (TP + FP events), recall = TP / windows scored.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analytics.core.timestamps import as_ns

PROBATION_PERCENT = 0.15
#: NAB caps the probationary period at ``0.15 * 5000`` = 750 rows.
PROBATION_CAP_ROWS = 750


@dataclass(frozen=True)
class CostProfile:
    """One NAB application profile (the ``CostMatrix`` of ``config/profiles.json``)."""

    name: str
    tp_weight: float
    fp_weight: float
    fn_weight: float
    tn_weight: float = 1.0  # present in NAB's profiles, unused by its score

    def __post_init__(self) -> None:
        for attr in ("tp_weight", "fp_weight", "fn_weight", "tn_weight"):
            value = getattr(self, attr)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{attr}: must be a finite non-negative number, got {value!r}")


#: The three profiles published with NAB v1.1.
NAB_PROFILES: dict[str, CostProfile] = {
    "standard": CostProfile("standard", tp_weight=1.0, fp_weight=0.11, fn_weight=1.0),
    "reward_low_FP_rate": CostProfile("reward_low_FP_rate", tp_weight=1.0, fp_weight=0.22, fn_weight=1.0),
    "reward_low_FN_rate": CostProfile("reward_low_FN_rate", tp_weight=1.0, fp_weight=0.11, fn_weight=2.0),
}


def profiles_from_mapping(data: Mapping[str, Any]) -> dict[str, CostProfile]:
    """Profiles from the parsed JSON of NAB's ``config/profiles.json``."""
    profiles = {}
    for name, body in data.items():
        try:
            matrix = body["CostMatrix"]
            profiles[name] = CostProfile(
                name,
                tp_weight=float(matrix["tpWeight"]),
                fp_weight=float(matrix["fpWeight"]),
                fn_weight=float(matrix["fnWeight"]),
                tn_weight=float(matrix.get("tnWeight", 1.0)),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"profiles: profile {name!r} lacks CostMatrix weight {exc}") from None
    if not profiles:
        raise ValueError("profiles: no profile defined")
    return profiles


def load_profiles(path: str | Path) -> dict[str, CostProfile]:
    with open(path, encoding="utf-8") as handle:
        return profiles_from_mapping(json.load(handle))


def scaled_sigmoid(y: Any) -> Any:
    """NAB's scaled sigmoid: ``2 / (1 + exp(5 y)) - 1``, and ``-1`` where ``y >= 3``.

    ``-1`` (a window's first row) gives 0.98661, ``0`` (its right edge) gives 0, ``1``
    (one window length after it) gives -0.98661. Scalars in, float out; arrays in,
    array out.
    """
    arr = np.asarray(y, dtype=np.float64)
    with np.errstate(over="ignore"):
        out = 2.0 / (1.0 + np.exp(5.0 * arr)) - 1.0
    out = np.where(arr >= 3.0, -1.0, out)
    return float(out) if out.ndim == 0 else out


#: The TP value of a window's first row, which NAB normalises to the TP weight.
MAX_TP = scaled_sigmoid(-1.0)


def probationary_length(n_rows: int, percent: float = PROBATION_PERCENT) -> int:
    """Rows at the start of a file that are not scored: ``min(floor(p n), p 5000)``."""
    if n_rows < 0:
        raise ValueError(f"n_rows: must be >= 0, got {n_rows}")
    return int(min(math.floor(percent * n_rows), math.floor(percent * 5000)))


def _as_datetime64(timestamps: Any) -> np.ndarray:
    """Timestamps as int64 nanoseconds, naive values read as UTC, order kept."""
    index = pd.DatetimeIndex(pd.to_datetime(timestamps))
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return as_ns(index)


def window_rows(timestamps: Any, windows: Iterable[tuple[Any, Any]]) -> list[tuple[int, int]]:
    """Map labelled windows ``(start, end)`` to inclusive row ranges ``(L, R)`` in file order.

    ``timestamps`` are the file's timestamps in row order (they may repeat or step
    back; naive timestamps are read as UTC like the labels). Raises ``ValueError`` for
    a window that covers no row or overlaps the previous one.
    """
    ts = _as_datetime64(timestamps)
    limits = sorted((pd.Timestamp(s), pd.Timestamp(e)) for s, e in windows)
    rows: list[tuple[int, int]] = []
    cursor = 0
    for start, end in limits:
        start_ns, end_ns = _ts_ns(start), _ts_ns(end)
        if end_ns < start_ns:
            raise ValueError(f"windows: window {start}..{end} ends before it starts")
        rest = ts[cursor:]
        hits = np.flatnonzero(rest >= start_ns)
        if not len(hits) or rest[hits[0]] > end_ns:
            raise ValueError(f"windows: window {start}..{end} covers no row")
        left = cursor + int(hits[0])
        tail = ts[left:]
        at_or_after = np.flatnonzero(tail >= end_ns)
        if not len(at_or_after):
            right = len(ts) - 1
        elif tail[at_or_after[0]] == end_ns:
            right = left + int(at_or_after[0])
        else:
            right = left + int(at_or_after[0]) - 1
        rows.append((left, right))
        cursor = right + 1
    return rows


def _ts_ns(value: pd.Timestamp) -> int:
    if value.tzinfo is not None:
        value = value.tz_convert("UTC").tz_localize(None)
    return int(value.as_unit("ns").value)


@dataclass(frozen=True, eq=False)
class LabelledRows:
    """The per-row NAB weights of one file, independent of the detector and profile.

    ``window_id[i]`` is the window index of row ``i`` (``-1`` outside windows);
    ``tp_value`` is the normalised TP value of in-window rows (1.0 on a window's first
    row, NaN outside windows); ``fp_value`` the unweighted FP value (in [-1, 0]) of
    rows outside windows (NaN inside); rows before ``probation`` are not scored.
    """

    n_rows: int
    probation: int
    windows: tuple[tuple[int, int], ...]
    window_id: np.ndarray
    tp_value: np.ndarray
    fp_value: np.ndarray

    @property
    def scorable(self) -> np.ndarray:
        return np.arange(self.n_rows) >= self.probation

    @property
    def scored_windows(self) -> list[int]:
        """Windows with at least one row after the probationary period (NAB scores only these)."""
        return [k for k, (_, right) in enumerate(self.windows) if right >= self.probation]


def label_rows_from_ranges(
    n_rows: int, windows: Sequence[tuple[int, int]], probation: int | None = None
) -> LabelledRows:
    """:class:`LabelledRows` from window row ranges (inclusive), in ascending order."""
    probation = probationary_length(n_rows) if probation is None else int(probation)
    window_id = np.full(n_rows, -1, dtype=np.int64)
    tp_value = np.full(n_rows, np.nan)
    fp_value = np.full(n_rows, -1.0)  # before the first window: full FP weight
    prev_right = -1
    for k, (left, right) in enumerate(windows):
        if not 0 <= left <= right < n_rows or left <= prev_right:
            raise ValueError(f"windows: bad or overlapping row range {(left, right)} for {n_rows} rows")
        width = right - left + 1
        idx = np.arange(left, right + 1)
        window_id[left : right + 1] = k
        tp_value[left : right + 1] = scaled_sigmoid(-(right - idx + 1) / width) / MAX_TP
        fp_value[left : right + 1] = np.nan
        next_left = windows[k + 1][0] if k + 1 < len(windows) else n_rows
        after = np.arange(right + 1, next_left)
        fp_value[right + 1 : next_left] = scaled_sigmoid((after - right) / max(width - 1, 1))
        prev_right = right
    return LabelledRows(n_rows, probation, tuple((int(a), int(b)) for a, b in windows), window_id, tp_value, fp_value)


def label_rows(timestamps: Any, windows: Iterable[tuple[Any, Any]], probation: int | None = None) -> LabelledRows:
    """:class:`LabelledRows` of a file from its timestamps (file order) and labelled windows."""
    n_rows = len(timestamps)
    return label_rows_from_ranges(n_rows, window_rows(timestamps, windows), probation)


def _clean_scores(scores: Any, n_rows: int) -> np.ndarray:
    arr = np.asarray(scores, dtype=np.float64)
    if arr.shape != (n_rows,):
        raise ValueError(f"scores: expected {n_rows} scores, got shape {arr.shape}")
    return np.where(np.isfinite(arr), arr, -np.inf)  # NaN never detects


@dataclass(frozen=True)
class FileScore:
    """One file at one threshold under one profile."""

    raw: float
    tp_windows: int
    fn_windows: int
    fp_detections: int
    fp_events: int
    detections: int
    fp_cost: float
    window_parts: tuple[float, ...] = field(default=())


def detections(scores: Any, labels: LabelledRows, threshold: float) -> np.ndarray:
    """Scored rows that are detections: after the probationary period and ``score >= threshold``."""
    return np.asarray((_clean_scores(scores, labels.n_rows) >= threshold) & labels.scorable, dtype=bool)


def count_runs(mask: np.ndarray) -> int:
    """Number of maximal runs of True in a boolean array."""
    mask = np.asarray(mask, dtype=bool)
    if not len(mask):
        return 0
    return int(mask[0]) + int(np.count_nonzero(mask[1:] & ~mask[:-1]))


def score_file(scores: Any, labels: LabelledRows, profile: CostProfile, threshold: float) -> FileScore:
    """NAB raw score of one file at a fixed threshold."""
    detected = detections(scores, labels, threshold)
    parts = []
    tp = 0
    for k in labels.scored_windows:
        left, right = labels.windows[k]
        hits = np.flatnonzero(detected[left : right + 1])
        if len(hits):
            tp += 1
            parts.append(profile.tp_weight * float(labels.tp_value[left + hits[0]]))
        else:
            parts.append(-profile.fn_weight)
    outside = detected & (labels.window_id < 0)
    fp_cost = profile.fp_weight * float(labels.fp_value[outside].sum())
    return FileScore(
        raw=float(sum(parts)) + fp_cost,
        tp_windows=tp,
        fn_windows=len(parts) - tp,
        fp_detections=int(outside.sum()),
        fp_events=count_runs(outside),
        detections=int(detected.sum()),
        fp_cost=fp_cost,
        window_parts=tuple(parts),
    )


@dataclass(frozen=True)
class CorpusScore:
    """A corpus at one threshold under one profile, with NAB's normalised score."""

    profile: str
    threshold: float
    raw: float
    null: float
    perfect: float
    score: float
    tp_windows: int
    fn_windows: int
    fp_detections: int
    fp_events: int
    files: dict[str, FileScore]

    @property
    def windows(self) -> int:
        return self.tp_windows + self.fn_windows

    @property
    def precision(self) -> float:
        denominator = self.tp_windows + self.fp_events
        return self.tp_windows / denominator if denominator else 0.0

    @property
    def recall(self) -> float:
        return self.tp_windows / self.windows if self.windows else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def null_and_perfect(labelled: Iterable[LabelledRows], profile: CostProfile) -> tuple[float, float]:
    """Raw scores of the null detector (never fires) and the perfect one (first row of
    every window). As in NAB, ``perfect`` counts every labelled window."""
    null = 0.0
    perfect = 0.0
    for labels in labelled:
        null -= profile.fn_weight * len(labels.scored_windows)
        perfect += profile.tp_weight * len(labels.windows)
    return null, perfect


def normalised(raw: float, null: float, perfect: float) -> float:
    """``100 * (raw - null) / (perfect - null)``; 0 when the corpus has no window."""
    if perfect == null:
        return 0.0
    return 100.0 * (raw - null) / (perfect - null)


def score_corpus(
    files: Mapping[str, tuple[Any, LabelledRows]], profile: CostProfile, threshold: float
) -> CorpusScore:
    """Score every file ``name -> (scores, labels)`` at one threshold."""
    results = {name: score_file(scores, labels, profile, threshold) for name, (scores, labels) in files.items()}
    null, perfect = null_and_perfect((labels for _, labels in files.values()), profile)
    raw = float(sum(r.raw for r in results.values()))
    return CorpusScore(
        profile=profile.name,
        threshold=float(threshold),
        raw=raw,
        null=null,
        perfect=perfect,
        score=normalised(raw, null, perfect),
        tp_windows=sum(r.tp_windows for r in results.values()),
        fn_windows=sum(r.fn_windows for r in results.values()),
        fp_detections=sum(r.fp_detections for r in results.values()),
        fp_events=sum(r.fp_events for r in results.values()),
        files=results,
    )


@dataclass(frozen=True, eq=False)
class ThresholdSweep:
    """Corpus raw score at every candidate threshold, thresholds descending.

    ``thresholds[0]`` is ``inf`` (no detection: the null score); each further entry is
    a distinct score value ``t`` and ``raw[j]`` the raw score with detections
    ``score >= t``.
    """

    thresholds: np.ndarray
    raw: np.ndarray

    def best(self) -> tuple[float, float]:
        """``(threshold, raw)`` maximising the raw score; ties go to the highest threshold."""
        j = int(np.argmax(self.raw))  # first maximum = highest threshold
        return float(self.thresholds[j]), float(self.raw[j])


def _events(scores: np.ndarray, labels: LabelledRows, profile: CostProfile) -> tuple[np.ndarray, np.ndarray]:
    """(score, delta) pairs: lowering the threshold to ``score`` adds ``delta`` to the raw score."""
    scorable = labels.scorable
    outside = scorable & (labels.window_id < 0)
    ev_scores = [scores[outside]]
    ev_deltas = [profile.fp_weight * labels.fp_value[outside]]
    for k in labels.scored_windows:
        left, right = labels.windows[k]
        lo = max(left, labels.probation)
        s = scores[lo : right + 1]
        v = profile.tp_weight * labels.tp_value[lo : right + 1]
        order = np.argsort(-s, kind="stable")
        best = np.maximum.accumulate(v[order])
        previous = np.concatenate(([-profile.fn_weight], best[:-1]))
        delta = best - previous
        keep = delta > 0
        ev_scores.append(s[order][keep])
        ev_deltas.append(delta[keep])
    return np.concatenate(ev_scores), np.concatenate(ev_deltas)


def sweep_thresholds(files: Iterable[tuple[Any, LabelledRows]], profile: CostProfile) -> ThresholdSweep:
    """Exact corpus raw score at every distinct score value, as NAB's sweeper computes it,
    in O(n log n): only the earliest detection of a window counts, so a window's part
    changes only where a row earlier than all higher-scored rows of the window enters."""
    all_scores = []
    all_deltas = []
    base = 0.0
    for scores, labels in files:
        clean = _clean_scores(scores, labels.n_rows)
        base -= profile.fn_weight * len(labels.scored_windows)
        s, d = _events(clean, labels, profile)
        finite = np.isfinite(s)
        all_scores.append(s[finite])
        all_deltas.append(d[finite])
    s = np.concatenate(all_scores) if all_scores else np.empty(0)
    d = np.concatenate(all_deltas) if all_deltas else np.empty(0)
    order = np.argsort(-s, kind="stable")
    s, d = s[order], d[order]
    cumulative = np.cumsum(d)
    # the last event of each run of equal scores closes that threshold
    last = np.flatnonzero(np.append(s[1:] != s[:-1], True)) if len(s) else np.empty(0, dtype=int)
    thresholds = np.concatenate(([np.inf], s[last]))
    raw = np.concatenate(([base], base + cumulative[last]))
    return ThresholdSweep(thresholds, raw)
