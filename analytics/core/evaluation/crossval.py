"""Leave-one-category-out cross-validation of NAB scores.

Everything a detector's evaluation *chooses* (the corpus threshold, and which of
several candidate parameter sets to use) is chosen in each fold on the other
categories only, then applied to the held-out category. The held-out raw scores are
pooled over the folds and normalised once (``100 * (raw - null) / (perfect - null)``
over the whole corpus), so the pooled figure is what a new user meeting unseen data
would get. The in-sample figure (every choice made on all files) is reported beside it.

Pure functions over precomputed per-file scores: running the engine is the harness's
job, so a parameter search scores every candidate once and selects per fold cheaply.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from analytics.core.evaluation.nab import (
    CorpusScore,
    CostProfile,
    LabelledRows,
    normalised,
    score_corpus,
    sweep_thresholds,
)

Scores = Mapping[str, np.ndarray]  # file name -> per-row scores


@dataclass(frozen=True)
class Candidate:
    """One parameter set and its scores on every file."""

    params: Mapping[str, Any]
    scores: Scores


@dataclass(frozen=True)
class Choice:
    """What was chosen on a set of training files."""

    candidate: int
    threshold: float
    train_raw: float


@dataclass(frozen=True)
class FoldResult:
    """One held-out category under one profile."""

    category: str
    choice: Choice
    result: CorpusScore  # the held-out files at the chosen threshold

    @property
    def files(self) -> int:
        return len(self.result.files)

    @property
    def normalised(self) -> float | None:
        """The fold's own normalised score; None for a category without windows."""
        return self.result.score if self.result.perfect != self.result.null else None


@dataclass(frozen=True)
class Totals:
    """Counts summed over files (pooled folds, or one in-sample run)."""

    raw: float
    null: float
    perfect: float
    files: int
    tp_windows: int
    fn_windows: int
    fp_events: int
    fp_detections: int

    @property
    def score(self) -> float:
        return normalised(self.raw, self.null, self.perfect)

    @property
    def precision(self) -> float:
        found = self.tp_windows + self.fp_events
        return self.tp_windows / found if found else 0.0

    @property
    def recall(self) -> float:
        windows = self.tp_windows + self.fn_windows
        return self.tp_windows / windows if windows else 0.0

    @property
    def fp_events_per_file(self) -> float:
        return self.fp_events / self.files if self.files else 0.0

    @classmethod
    def of(cls, results: Sequence[CorpusScore]) -> Totals:
        return cls(
            raw=sum(r.raw for r in results),
            null=sum(r.null for r in results),
            perfect=sum(r.perfect for r in results),
            files=sum(len(r.files) for r in results),
            tp_windows=sum(r.tp_windows for r in results),
            fn_windows=sum(r.fn_windows for r in results),
            fp_events=sum(r.fp_events for r in results),
            fp_detections=sum(r.fp_detections for r in results),
        )


@dataclass(frozen=True)
class ProfileCV:
    """Cross-validated and in-sample results of one profile."""

    profile: str
    folds: list[FoldResult]
    in_sample_choice: Choice
    in_sample: CorpusScore

    @property
    def pooled(self) -> Totals:
        return Totals.of([f.result for f in self.folds])

    @property
    def in_sample_totals(self) -> Totals:
        return Totals.of([self.in_sample])


def category_of(name: str) -> str:
    """The category of a file path under ``data/``: its first directory."""
    head, sep, _ = name.partition("/")
    return head if sep else ""


def choose(
    candidates: Sequence[Candidate],
    files: Sequence[str],
    labels: Mapping[str, LabelledRows],
    profile: CostProfile,
    fixed_threshold: float | None = None,
) -> Choice:
    """The candidate and threshold with the highest total raw score on ``files``
    (ties: the earlier candidate, then the higher threshold)."""
    best: Choice | None = None
    for k, candidate in enumerate(candidates):
        pairs = [(candidate.scores[f], labels[f]) for f in files]
        if fixed_threshold is None:
            threshold, raw = sweep_thresholds(pairs, profile).best()
        else:
            threshold = fixed_threshold
            raw = score_corpus(dict(zip(files, pairs, strict=True)), profile, threshold).raw
        if best is None or raw > best.train_raw:
            best = Choice(k, threshold, raw)
    if best is None:
        raise ValueError("candidates: at least one is needed")
    return best


def cross_validate(
    candidates: Sequence[Candidate],
    labels: Mapping[str, LabelledRows],
    profiles: Mapping[str, CostProfile],
    fixed_threshold: float | None = None,
) -> dict[str, ProfileCV]:
    """Leave-one-category-out: for each category, choose on the files of all the other
    categories and score the category's files with that choice."""
    names = sorted(labels)
    categories = sorted({category_of(n) for n in names})
    if len(categories) < 2:
        raise ValueError("cv: needs files in at least two categories")
    out: dict[str, ProfileCV] = {}
    for pname, profile in profiles.items():
        folds = []
        for category in categories:
            held_out = [n for n in names if category_of(n) == category]
            training = [n for n in names if category_of(n) != category]
            choice = choose(candidates, training, labels, profile, fixed_threshold)
            scores = candidates[choice.candidate].scores
            result = score_corpus({n: (scores[n], labels[n]) for n in held_out}, profile, choice.threshold)
            folds.append(FoldResult(category, choice, result))
        whole = choose(candidates, names, labels, profile, fixed_threshold)
        scores = candidates[whole.candidate].scores
        in_sample = score_corpus({n: (scores[n], labels[n]) for n in names}, profile, whole.threshold)
        out[pname] = ProfileCV(pname, folds, whole, in_sample)
    return out


def format_cv(results: Mapping[str, ProfileCV], candidates: Sequence[Candidate]) -> str:
    """The per-fold, pooled and in-sample tables, one per profile."""
    searched = len(candidates) > 1
    head = (f"{'':<24} {'files':>5} {'win':>4} {'threshold':>10} {'score':>7} {'raw':>8} {'TP':>4} {'FN':>4}"
            f" {'FPev':>5} {'FPev/file':>9} {'prec':>6} {'recall':>6}" + ("  params" if searched else ""))
    lines = [
        "cross-validation: leave one category out; in each fold the threshold"
        + (" and the parameters are" if searched else " is") + " chosen on the other categories only;",
        "pooled = held-out raw scores summed over the folds, normalised once. In-sample = chosen on all files.",
    ]

    def row(label: str, totals: Totals, threshold: str, score: str, params: str) -> str:
        return (f"{label:<24} {totals.files:5d} {totals.tp_windows + totals.fn_windows:4d} {threshold:>10}"
                f" {score:>7} {totals.raw:8.3f} {totals.tp_windows:4d} {totals.fn_windows:4d} {totals.fp_events:5d}"
                f" {totals.fp_events_per_file:9.2f} {totals.precision:6.3f} {totals.recall:6.3f}"
                + (f"  {params}" if searched else ""))

    for pname, cv in results.items():
        lines += ["", f"profile {pname}", head]
        for fold in cv.folds:
            score = "n/a" if fold.normalised is None else f"{fold.normalised:.2f}"
            lines.append(row(fold.category, Totals.of([fold.result]), f"{fold.choice.threshold:.6g}", score,
                             _params(candidates[fold.choice.candidate])))
        lines.append(row("pooled (CV)", cv.pooled, "per fold", f"{cv.pooled.score:.2f}", ""))
        lines.append(row("in-sample", cv.in_sample_totals, f"{cv.in_sample_choice.threshold:.6g}",
                         f"{cv.in_sample.score:.2f}", _params(candidates[cv.in_sample_choice.candidate])))
    lines += ["", "summary: " + "  ".join(
        f"{p} CV {cv.pooled.score:.2f} (in-sample {cv.in_sample.score:.2f})" for p, cv in results.items())]
    return "\n".join(lines)


def _params(candidate: Candidate) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(candidate.params.items()))


def cv_to_dict(results: Mapping[str, ProfileCV], candidates: Sequence[Candidate]) -> dict[str, Any]:
    def totals(t: Totals) -> dict[str, Any]:
        return {"score": round(t.score, 3), "raw": round(t.raw, 4), "files": t.files, "tp_windows": t.tp_windows,
                "fn_windows": t.fn_windows, "fp_events": t.fp_events, "fp_detections": t.fp_detections,
                "fp_events_per_file": round(t.fp_events_per_file, 3), "precision": round(t.precision, 4),
                "recall": round(t.recall, 4)}

    return {
        pname: {
            "folds": [
                {"category": f.category, "threshold": f.choice.threshold,
                 "params": dict(candidates[f.choice.candidate].params),
                 **totals(Totals.of([f.result])),
                 "score": None if f.normalised is None else round(f.normalised, 3)}
                for f in cv.folds
            ],
            "pooled": totals(cv.pooled),
            "in_sample": {"threshold": cv.in_sample_choice.threshold,
                          "params": dict(candidates[cv.in_sample_choice.candidate].params),
                          **totals(cv.in_sample_totals)},
        }
        for pname, cv in results.items()
    }
