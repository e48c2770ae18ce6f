"""Offline evaluation of anomaly engines on labelled data (NAB layout and scoring).

``nab`` holds the scoring method as pure functions; ``harness`` loads a data set,
runs an engine, chooses thresholds and reports (``python -m
analytics.core.evaluation.harness --data DIR``). No Django imports.
"""

from analytics.core.evaluation.nab import (
    NAB_PROFILES,
    CorpusScore,
    CostProfile,
    FileScore,
    LabelledRows,
    ThresholdSweep,
    label_rows,
    label_rows_from_ranges,
    load_profiles,
    normalised,
    probationary_length,
    scaled_sigmoid,
    score_corpus,
    score_file,
    sweep_thresholds,
    window_rows,
)

__all__ = [
    "NAB_PROFILES",
    "CorpusScore",
    "CostProfile",
    "FileScore",
    "LabelledRows",
    "ThresholdSweep",
    "label_rows",
    "label_rows_from_ranges",
    "load_profiles",
    "normalised",
    "probationary_length",
    "scaled_sigmoid",
    "score_corpus",
    "score_file",
    "sweep_thresholds",
    "window_rows",
]
