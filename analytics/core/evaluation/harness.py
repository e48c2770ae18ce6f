"""Evaluation harness: score an anomaly engine on a labelled data set in NAB layout.

Usage (until the Django command ``python manage.py evaluate`` wraps :func:`main`)::

    .venv/bin/python -m analytics.core.evaluation.harness --data ../shared/datasets/nab \
        [--engine NAME] [--params JSON] [--results-dir OUT] [--threshold T] [--files GLOB]

Data layout (NAB): ``DIR/data/<category>/<file>.csv`` (``timestamp,value``),
``DIR/labels/combined_windows.json`` and, optionally, ``DIR/config/profiles.json``
(NAB's published profiles otherwise).

For every file the harness builds one :class:`~analytics.core.contracts.MetricSeries`,
asks the engine for its causal per-point scores (``engine.score(series)``, one fresh
engine per file, no state carried over) and scores them with :mod:`.nab`: one
threshold per profile for the whole data set, chosen to maximise the total score, or
the fixed ``--threshold``.

Rows stay in file order. NAB files may repeat a timestamp or step back in time, while
a ``MetricSeries`` needs strictly ascending timestamps, so the engine sees a
monotonised copy: row ``i`` gets ``max(t_i, t'_{i-1} + 1 ns)`` (unchanged wherever the
file already ascends). The copy has exactly one point per file row, so score ``i``
belongs to row ``i``; labels, scoring and the results CSVs use the file's own
timestamps.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import multiprocessing
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from analytics.core.contracts import MetricSeries
from analytics.core.engines.base import AnomalyDetectionEngine
from analytics.core.evaluation.crossval import Candidate, ProfileCV, cross_validate, cv_to_dict, format_cv
from analytics.core.evaluation.nab import (
    NAB_PROFILES,
    CorpusScore,
    CostProfile,
    LabelledRows,
    label_rows,
    load_profiles,
    score_corpus,
    sweep_thresholds,
)
from analytics.core.timestamps import as_ns


@dataclass(frozen=True, eq=False)
class NabFile:
    """One data file, rows in file order (timestamps may repeat or step back)."""

    name: str  # path under data/, POSIX separators: "realKnownCause/nyc_taxi.csv"
    raw_timestamps: np.ndarray  # the timestamp strings as written in the file
    timestamps: pd.DatetimeIndex  # parsed, naive (NAB's timestamps are UTC)
    values: np.ndarray
    windows: tuple[tuple[str, str], ...]
    labels: LabelledRows

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True, eq=False)
class Dataset:
    root: Path
    files: list[NabFile]
    profiles: dict[str, CostProfile]

    @property
    def rows(self) -> int:
        return sum(len(f) for f in self.files)

    @property
    def windows(self) -> int:
        return sum(len(f.windows) for f in self.files)


def load_dataset(root: str | Path, files: str | None = None) -> Dataset:
    """Read a data set in NAB layout; ``files`` is an optional glob on the path under
    ``data/`` (e.g. ``"realKnownCause/*"``). Raises ``ValueError`` on a layout or
    content problem, naming the file."""
    root = Path(root)
    data_dir = root / "data"
    windows_path = root / "labels" / "combined_windows.json"
    if not data_dir.is_dir():
        raise ValueError(f"data: {data_dir} is not a directory")
    if not windows_path.is_file():
        raise ValueError(f"data: {windows_path} not found")
    with open(windows_path, encoding="utf-8") as handle:
        all_windows = json.load(handle)
    profiles_path = root / "config" / "profiles.json"
    profiles = load_profiles(profiles_path) if profiles_path.is_file() else dict(NAB_PROFILES)

    loaded = []
    for path in sorted(data_dir.rglob("*.csv")):
        name = PurePosixPath(path.relative_to(data_dir).as_posix()).as_posix()
        if files and not fnmatch.fnmatch(name, files):
            continue
        if name not in all_windows:
            raise ValueError(f"labels: {name} has no entry in {windows_path.name}")
        frame = pd.read_csv(path, dtype={"timestamp": str})
        if list(frame.columns[:2]) != ["timestamp", "value"]:
            raise ValueError(f"data: {name} must have the columns timestamp,value")
        try:
            timestamps = pd.DatetimeIndex(pd.to_datetime(frame["timestamp"], format="ISO8601"))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"data: {name}: bad timestamp ({exc})") from None
        values = pd.to_numeric(frame["value"], errors="coerce").to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            bad = int(np.flatnonzero(~np.isfinite(values))[0])
            raise ValueError(f"data: {name} row {bad + 1}: value is not a finite number")
        windows = tuple((str(s), str(e)) for s, e in all_windows[name])
        try:
            labels = label_rows(timestamps, windows)
        except ValueError as exc:
            raise ValueError(f"labels: {name}: {exc}") from None
        loaded.append(
            NabFile(name, frame["timestamp"].to_numpy(dtype=object), timestamps, values, windows, labels)
        )
    if not loaded:
        raise ValueError(f"data: no CSV file under {data_dir}" + (f" matches {files!r}" if files else ""))
    return Dataset(root, loaded, profiles)


def monotonic_utc(timestamps: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """A strictly ascending UTC copy, one entry per row: ``t'_i = max(t_i, t'_{i-1} + 1 ns)``."""
    ns = as_ns(timestamps)
    steps = np.arange(len(ns), dtype=np.int64)
    fixed = np.maximum.accumulate(ns - steps) + steps if len(ns) else ns
    return pd.DatetimeIndex(fixed.astype("datetime64[ns]")).tz_localize("UTC")


def to_series(nab_file: NabFile) -> MetricSeries:
    """The engine's view of a file: a valid MetricSeries with one point per file row."""
    category, _, filename = nab_file.name.rpartition("/")
    return MetricSeries(
        tenant_id="nab",
        cluster_id=category or "nab",
        node_id=filename.removesuffix(".csv"),
        metric_name="value",
        timestamps=monotonic_utc(nab_file.timestamps),
        values=nab_file.values,
        metadata={"source": nab_file.name},
    )


EngineSpec = str | AnomalyDetectionEngine


def _make_engine(spec: EngineSpec, params: Mapping[str, Any]) -> AnomalyDetectionEngine:
    if isinstance(spec, AnomalyDetectionEngine):
        return type(spec)(**spec.params)  # a fresh copy: no state shared between files
    import analytics.core.engines  # noqa: F401  (registers the built-in engines)
    from analytics.core.engines.registry import engine_registry

    return engine_registry.create(spec, **dict(params))


def run_engine(spec: EngineSpec, params: Mapping[str, Any], nab_file: NabFile) -> np.ndarray:
    """Causal scores of one file, one per file row, from a fresh engine."""
    engine = _make_engine(spec, params)
    scored, _state = engine.score(to_series(nab_file))
    scores = np.asarray(scored.scores, dtype=np.float64)
    if scores.shape != (len(nab_file),):
        raise ValueError(f"engine: returned {scores.shape} scores for {len(nab_file)} rows of {nab_file.name}")
    return scores


def _run_engine_job(args: tuple[EngineSpec, Mapping[str, Any], NabFile]) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    scores = run_engine(*args)
    return scores, time.perf_counter() - started


def run_corpus(
    dataset: Dataset, engine: EngineSpec, params: Mapping[str, Any], jobs: int = 1
) -> tuple[dict[str, np.ndarray], float]:
    """Scores of every file (file name -> scores) and the seconds spent in the engine."""
    jobs_args = [(engine, params, f) for f in dataset.files]
    if jobs > 1 and len(dataset.files) > 1:
        # fork: the children inherit registered engines, including ones defined in tests
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            outputs = list(pool.map(_run_engine_job, jobs_args))
    else:
        outputs = [_run_engine_job(a) for a in jobs_args]
    scores = {f.name: out[0] for f, out in zip(dataset.files, outputs, strict=True)}
    return scores, sum(out[1] for out in outputs)


@dataclass
class EvaluationReport:
    engine: str
    params: dict[str, Any]
    data: str
    files: list[str]
    rows: int
    windows: int
    fixed_threshold: float | None
    results: dict[str, CorpusScore]  # per profile
    engine_seconds: float  # summed over files (CPU time across workers)
    wall_seconds: float  # the whole evaluation: load, engine, thresholds
    scores: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "params": self.params,
            "data": self.data,
            "files": len(self.files),
            "rows": self.rows,
            "windows": self.windows,
            "threshold": "fixed" if self.fixed_threshold is not None else "optimised per profile",
            "engine_seconds": round(self.engine_seconds, 3),
            "wall_seconds": round(self.wall_seconds, 3),
            "profiles": {
                name: {
                    "score": round(r.score, 3),
                    "threshold": r.threshold,
                    "raw": round(r.raw, 4),
                    "null": r.null,
                    "perfect": r.perfect,
                    "tp_windows": r.tp_windows,
                    "fn_windows": r.fn_windows,
                    "fp_events": r.fp_events,
                    "fp_detections": r.fp_detections,
                    "precision": round(r.precision, 4),
                    "recall": round(r.recall, 4),
                    "f1": round(r.f1, 4),
                    "per_file": {
                        f: {
                            "raw": round(s.raw, 4),
                            "tp_windows": s.tp_windows,
                            "fn_windows": s.fn_windows,
                            "fp_events": s.fp_events,
                            "fp_detections": s.fp_detections,
                        }
                        for f, s in r.files.items()
                    },
                }
                for name, r in self.results.items()
            },
        }


def _resolve_engine(
    engine: EngineSpec | None, params: Mapping[str, Any] | None
) -> tuple[EngineSpec, str, dict[str, Any]]:
    """(engine, its name, its parameters): the product default when ``engine`` is None;
    fails fast on an unknown engine or a bad parameter."""
    from analytics.core.engines.defaults import DEFAULT_ENGINE, DEFAULT_PARAMS

    if engine is None:
        engine = DEFAULT_ENGINE
        params = dict(DEFAULT_PARAMS) if params is None else dict(params)
    if isinstance(engine, AnomalyDetectionEngine):
        return engine, engine.name, dict(engine.params)
    params = dict(params or {})
    _make_engine(engine, params)
    return engine, engine, params


def evaluate(
    data: str | Path | Dataset,
    engine: EngineSpec | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    threshold: float | None = None,
    files: str | None = None,
    results_dir: str | Path | None = None,
    jobs: int = 1,
) -> EvaluationReport:
    """Run ``engine`` (a registered name or an engine instance to copy; the product
    default from :mod:`analytics.core.engines.defaults` when None) on every file and
    score it under every profile of the data set."""
    started = time.perf_counter()
    dataset = data if isinstance(data, Dataset) else load_dataset(data, files)
    engine, engine_name, params = _resolve_engine(engine, params)

    scores, engine_seconds = run_corpus(dataset, engine, params, jobs)

    results: dict[str, CorpusScore] = {}
    pairs = {f.name: (scores[f.name], f.labels) for f in dataset.files}
    for name, profile in dataset.profiles.items():
        if threshold is None:
            chosen, _ = sweep_thresholds(pairs.values(), profile).best()
        else:
            chosen = threshold
        results[name] = score_corpus(pairs, profile, chosen)

    if results_dir is not None:
        write_results(results_dir, dataset, scores)

    report = EvaluationReport(
        engine=engine_name,
        params=params,
        data=str(dataset.root),
        files=[f.name for f in dataset.files],
        rows=dataset.rows,
        windows=dataset.windows,
        fixed_threshold=threshold,
        results=results,
        engine_seconds=engine_seconds,
        wall_seconds=time.perf_counter() - started,
        scores=scores,
    )
    if results_dir is not None:
        with open(Path(results_dir) / "summary.json", "w", encoding="utf-8") as handle:
            json.dump(report.to_dict(), handle, indent=2, default=_json_default)
            handle.write("\n")
    return report


@dataclass
class CrossValidationReport:
    engine: str
    data: str
    candidates: list[Candidate]
    results: dict[str, ProfileCV]  # per profile
    engine_seconds: float
    wall_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "data": self.data,
            "candidates": [dict(c.params) for c in self.candidates],
            "engine_seconds": round(self.engine_seconds, 3),
            "wall_seconds": round(self.wall_seconds, 3),
            "profiles": cv_to_dict(self.results, self.candidates),
        }


def search_grid(base: Mapping[str, Any], search: Mapping[str, Sequence[Any]] | None) -> list[dict[str, Any]]:
    """Parameter sets: ``base`` updated with every combination of the ``search`` values
    (``{"name": [v1, v2], ...}``), in order; just ``base`` without a search."""
    grid = [dict(base)]
    for name, values in (search or {}).items():
        if isinstance(values, str) or not isinstance(values, Sequence) or not values:
            raise ValueError(f"search: {name} needs a non-empty list of values")
        grid = [{**params, name: value} for params in grid for value in values]
    return grid


def cross_validate_engine(
    data: str | Path | Dataset,
    engine: EngineSpec | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    search: Mapping[str, Sequence[Any]] | None = None,
    threshold: float | None = None,
    files: str | None = None,
    jobs: int = 1,
) -> CrossValidationReport:
    """Leave-one-category-out cross-validation (:mod:`.crossval`): every parameter set of
    the ``search`` grid is scored on every file once; each fold chooses the set and the
    threshold (unless ``threshold`` is fixed) on the other categories."""
    started = time.perf_counter()
    dataset = data if isinstance(data, Dataset) else load_dataset(data, files)
    engine, engine_name, params = _resolve_engine(engine, params)
    grid = search_grid(params, search)
    specs = [type(engine)(**p) if isinstance(engine, AnomalyDetectionEngine) else engine for p in grid]
    for spec, candidate_params in zip(specs, grid, strict=True):
        _make_engine(spec, candidate_params)  # every set valid before the first run
    candidates = []
    seconds = 0.0
    for spec, candidate_params in zip(specs, grid, strict=True):
        scores, spent = run_corpus(dataset, spec, candidate_params, jobs)
        candidates.append(Candidate(candidate_params, scores))
        seconds += spent
    labels = {f.name: f.labels for f in dataset.files}
    results = cross_validate(candidates, labels, dataset.profiles, threshold)
    return CrossValidationReport(engine_name, str(dataset.root), candidates, results, seconds,
                                 time.perf_counter() - started)


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_results(results_dir: str | Path, dataset: Dataset, scores: Mapping[str, np.ndarray]) -> None:
    """One CSV per data file at the same relative path: ``timestamp,anomaly_score``,
    the file's own timestamps, rows in file order."""
    out = Path(results_dir)
    for nab_file in dataset.files:
        target = out / nab_file.name
        target.parent.mkdir(parents=True, exist_ok=True)
        frame = pd.DataFrame({"timestamp": nab_file.raw_timestamps, "anomaly_score": scores[nab_file.name]})
        frame.to_csv(target, index=False)


def format_report(report: EvaluationReport, *, per_file: bool = False) -> str:
    lines = [
        f"engine: {report.engine}  params: {json.dumps(report.params, sort_keys=True)}",
        f"data: {report.data}  files: {len(report.files)}  rows: {report.rows}  windows: {report.windows}",
        f"run time: {report.wall_seconds:.1f} s wall ({report.engine_seconds:.1f} s in the engine)",
        "threshold: " + ("fixed" if report.fixed_threshold is not None else "one per profile, maximising the total"),
        "",
        f"{'profile':<20} {'score':>7} {'threshold':>10} {'TP':>4} {'FN':>4} {'FPev':>5} {'FPdet':>6}"
        f" {'prec':>6} {'recall':>6} {'F1':>6}",
    ]
    for name, r in report.results.items():
        lines.append(
            f"{name:<20} {r.score:7.2f} {r.threshold:10.6g} {r.tp_windows:4d} {r.fn_windows:4d} {r.fp_events:5d}"
            f" {r.fp_detections:6d} {r.precision:6.3f} {r.recall:6.3f} {r.f1:6.3f}"
        )
    if per_file and report.results:
        name, r = next(iter(report.results.items()))
        lines += ["", f"per file ({name} profile, threshold {r.threshold:.6g}):"]
        lines.append(f"{'file':<58} {'win':>3} {'TP':>3} {'FPev':>5} {'FPdet':>6} {'raw':>8}")
        for fname, s in r.files.items():
            lines.append(
                f"{fname:<58} {s.tp_windows + s.fn_windows:3d} {s.tp_windows:3d} {s.fp_events:5d}"
                f" {s.fp_detections:6d} {s.raw:8.3f}"
            )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evaluate",
        description="Score an anomaly engine on a labelled data set in NAB layout with NAB's scoring method.",
    )
    parser.add_argument("--data", required=True, help="data set root: data/, labels/combined_windows.json[, config/]")
    parser.add_argument("--engine", help="registered engine name (default: the product default engine)")
    parser.add_argument("--params", help="engine parameters as a JSON object (default: the product defaults "
                        "for the default engine, the engine's own defaults otherwise)")
    parser.add_argument("--results-dir", help="write OUT/<category>/<file>.csv (timestamp,anomaly_score) "
                        "and OUT/summary.json")
    parser.add_argument("--threshold", type=float, help="score at this fixed threshold instead of optimising it")
    parser.add_argument("--cv", choices=["category"], help="cross-validate: leave one category out; the threshold "
                        "(and the --search parameters) are chosen on the other categories in every fold")
    parser.add_argument("--search", help="with --cv: a JSON object of parameter -> list of values; every "
                        "combination is scored and each fold picks one on its training categories")
    parser.add_argument("--files", help="only the data files whose path under data/ matches this glob")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes for the engine (default 1)")
    parser.add_argument("--per-file", action="store_true", help="also print the per-file breakdown")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        params = None if args.params is None else _json_object(args.params, "params")
        if args.jobs < 1:
            raise ValueError("jobs: must be >= 1")
        if args.search is not None and args.cv is None:
            raise ValueError("search: only with --cv (a search scored in-sample would flatter)")
        if args.cv is not None:
            return _main_cv(args, params)
        report = evaluate(
            args.data,
            args.engine,
            params,
            threshold=args.threshold,
            files=args.files,
            results_dir=args.results_dir,
            jobs=args.jobs,
        )
    except ValueError as exc:
        print(f"evaluate: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=_json_default))
    else:
        print(format_report(report, per_file=args.per_file))
    return 0


def _json_object(text: str, name: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{name}: must be a JSON object")
    return value


def _main_cv(args: argparse.Namespace, params: dict[str, Any] | None) -> int:
    search = None if args.search is None else _json_object(args.search, "search")
    report = cross_validate_engine(args.data, args.engine, params, search=search, threshold=args.threshold,
                                   files=args.files, jobs=args.jobs)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=_json_default))
    else:
        print(f"engine: {report.engine}  data: {report.data}  candidates: {len(report.candidates)}")
        print(f"run time: {report.wall_seconds:.1f} s wall ({report.engine_seconds:.1f} s in the engine)")
        print(format_cv(report.results, report.candidates))
    return 0


if __name__ == "__main__":
    sys.exit(main())
