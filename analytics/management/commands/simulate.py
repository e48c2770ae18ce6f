"""Simulate a fleet: send its metrics to Fleetwatch and/or write a labelled NAB-layout copy.

Examples::

    # 3 days of history for 2 clusters x 4 nodes, ending now, through the real API
    python manage.py simulate --api-key KEY --days 3
    # then keep sending live at wall-clock pace for 10 minutes
    python manage.py simulate --api-key KEY --days 3 --live --duration 600
    # 60x accelerated: 10 hours of data in 10 minutes (ending at the wall clock)
    python manage.py simulate --api-key KEY --live --speed 60 --duration 600
    # only a labelled copy for the evaluation harness (no server needed)
    python manage.py simulate --nab-out var/simfleet --days 7 --start 2026-01-05T00:00:00Z
    python -m analytics.core.evaluation.harness --data var/simfleet

Timeline: history covers ``--days`` ending at the last step boundary before now (or,
with ``--live``, ending where live sending starts). Live sending at ``--speed K`` runs
simulated time over [now - duration * (K - 1), now + duration), so it never sends a
point from the future (the server refuses points more than 5 minutes ahead) and
catches up with the wall clock when it ends. Points older than the tenant's hot
retention are refused by the server, so the history is trimmed to
``--retention-days`` minus 10 minutes. Without ``--days``, the fleet's clock starts
``clean_days`` before the live period (unsent), so anomalies can occur while live.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from analytics.simulator.export import write_nab, write_truth
from analytics.simulator.fleet import Fleet, generate
from analytics.simulator.sender import HttpSender, IngestError, send_history, send_live
from analytics.simulator.spec import DAY, DEFAULT_METRICS, FleetSpec

RETENTION_MARGIN_SECONDS = 600


def _metrics(value: str) -> tuple[str, ...]:
    names = tuple(m.strip() for m in value.split(",") if m.strip())
    unknown = [m for m in names if m not in DEFAULT_METRICS]
    if not names or unknown:
        raise CommandError(f"--metrics: expected a comma-separated subset of {','.join(DEFAULT_METRICS)}, got {value!r}")
    return names


def _start(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--start: not an ISO 8601 timestamp: {value!r}") from None
    if parsed.tzinfo is None:
        raise CommandError("--start: needs a UTC offset, e.g. 2026-01-05T00:00:00Z")
    return parsed.astimezone(UTC)


class Command(BaseCommand):
    help = "Simulate a fleet of node metrics with labelled anomalies; send them to the API and/or write a NAB copy."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="server base URL")
        parser.add_argument("--api-key", help="tenant API key (required unless only writing files)")
        parser.add_argument("--clusters", type=int, default=2)
        parser.add_argument("--nodes", type=int, default=4, help="nodes per cluster")
        parser.add_argument("--metrics", type=_metrics, default=DEFAULT_METRICS,
                            help=f"comma-separated subset of {','.join(DEFAULT_METRICS)}")
        parser.add_argument("--days", type=float, help="history: send N days ending now (or where --live starts)")
        parser.add_argument("--live", action="store_true", help="send points as time passes")
        parser.add_argument("--speed", type=float, default=1.0, help="live: simulated seconds per wall-clock second")
        parser.add_argument("--duration", type=float, default=600.0, help="live: wall-clock seconds to run")
        parser.add_argument("--step", type=int, default=60, help="seconds between points")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--anomaly-rate", type=float, default=0.1, help="anomalies per series per day")
        parser.add_argument("--incident-rate", type=float, default=0.15, help="cluster incidents per cluster per day")
        parser.add_argument("--propagation", action="store_true",
                            help="incidents start on one node's metric and spread to others 5-30 min later")
        parser.add_argument("--batch-points", type=int, default=10_000, help="points per POST")
        parser.add_argument("--retention-days", type=float, default=7.0, help="the tenant plan's hot retention")
        parser.add_argument("--start", type=_start, help="files only: fleet start (default: --days ending now)")
        parser.add_argument("--nab-out", help="write the fleet in NAB layout with labels to this directory")
        parser.add_argument("--truth-out", help="write the ground truth (JSON) to this file")

    def handle(self, *args, **opts):
        sending = _check(opts)
        timeline = self.timeline(opts, sending)
        step = opts["step"]
        days = max(step, math.ceil((timeline.end - timeline.start) / step) * step) / DAY
        try:
            spec = FleetSpec(
                tenants=1, clusters_per_tenant=opts["clusters"], nodes_per_cluster=opts["nodes"],
                metrics=opts["metrics"], start=datetime.fromtimestamp(timeline.start, UTC), days=days, step_seconds=step,
                anomaly_rate=opts["anomaly_rate"], incident_rate=opts["incident_rate"], seed=opts["seed"],
                propagation=opts["propagation"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        fleet = generate(spec)
        self.stdout.write(
            f"fleet: {len(fleet)} series ({opts['clusters']} clusters x {opts['nodes']} nodes x {len(spec.metrics)} metrics), "
            f"{spec.start:%Y-%m-%d %H:%M} .. {fleet.when(fleet.n_points - 1):%Y-%m-%d %H:%M} UTC every {step}s, "
            f"{len(fleet.ground_truth)} labelled anomalies (seed {spec.seed})"
        )
        self.write_files(fleet, opts)
        if sending:
            self.send(fleet, opts, timeline)

    def timeline(self, opts: dict, sending: bool) -> _Timeline:
        """Where history and live sending start and end (epoch seconds, on step boundaries)."""
        step = opts["step"]
        now = time.time()
        if opts["live"]:  # simulated time: [now - duration * (speed - 1), now + duration)
            live_start = math.ceil((now - opts["duration"] * (opts["speed"] - 1)) / step) * step
            live_end = now + opts["duration"]
        else:  # history ends at the last step boundary at or before now
            live_start = live_end = math.floor(now / step) * step + step
        history_points = int((opts["days"] if opts["days"] is not None else (0.0 if sending else 7.0)) * DAY // step)
        if sending:
            oldest = now - opts["retention_days"] * DAY + RETENTION_MARGIN_SECONDS  # what the server still accepts
            if live_start < oldest:
                raise CommandError("--speed x --duration reaches past the hot retention: lower them")
            fits = int((live_start - oldest) // step)
            if history_points > fits:
                self.stderr.write(f"--days {opts['days']:g} reaches past the hot retention "
                                  f"({opts['retention_days']:g} days); sending {fits * step / DAY:.3f} days")
                history_points = fits
        if opts["start"] is not None:
            start = int(opts["start"].timestamp()) // step * step
            end = start + history_points * step
        elif history_points:
            start, end = live_start - history_points * step, live_end
        else:  # live only: an unsent clean history precedes the live period
            start, end = live_start - math.ceil(2 * DAY / step) * step, live_end
        return _Timeline(start, end, live_start, history_points)

    def write_files(self, fleet: Fleet, opts: dict) -> None:
        if opts["truth_out"]:
            write_truth(fleet, opts["truth_out"])
            self.stdout.write(f"ground truth: {opts['truth_out']}")
        if opts["nab_out"]:
            with _bar(fleet.total_points, "nab") as bar:
                write_nab(fleet, opts["nab_out"], progress=bar.update)
            self.stdout.write(f"NAB layout: {opts['nab_out']} "
                              f"(score with: python -m analytics.core.evaluation.harness --data {opts['nab_out']})")

    def send(self, fleet: Fleet, opts: dict, timeline: _Timeline) -> None:
        step, live_start = opts["step"], timeline.live_start
        sender = HttpSender(opts["url"], opts["api_key"])
        try:
            if timeline.history_points:
                i0, i1 = fleet.index_range(timeline.start, live_start)
                with _bar((i1 - i0) * len(fleet), "history") as bar:
                    report = send_history(fleet, sender, t1=live_start, batch_points=opts["batch_points"], progress=bar.update)
                self.stdout.write(f"history: {report.accepted} points accepted in {report.batches} batches, "
                                  f"{report.new_series} new series")
            if opts["live"]:
                i0, i1 = fleet.index_range(live_start, live_start + opts["duration"] * opts["speed"])
                self.stdout.write(f"live: {opts['duration']:g}s at {opts['speed']:g}x from "
                                  f"{datetime.fromtimestamp(live_start, UTC):%Y-%m-%d %H:%M:%S} UTC (Ctrl-C stops)")
                with _bar((i1 - i0) * len(fleet), "live") as bar:
                    report = send_live(fleet, sender, sim_start=live_start, duration=opts["duration"],
                                       speed=opts["speed"], batch_points=opts["batch_points"], progress=bar.update,
                                       tick_seconds=min(1.0, max(0.05, step / opts["speed"] / 2)))
                self.stdout.write(f"live: {report.accepted} points accepted in {report.batches} batches")
        except IngestError as exc:
            raise CommandError(f"the server refused a batch (HTTP {exc.status}): {exc.body}") from None
        except KeyboardInterrupt:
            self.stderr.write("interrupted")
            sys.exit(130)
        finally:
            sender.close()


def _check(opts: dict) -> bool:
    """Refuse contradictory or out-of-range options; whether points are to be sent."""
    files = bool(opts["nab_out"] or opts["truth_out"])
    sending = bool(opts["live"] or (opts["days"] is not None and (opts["api_key"] or not files)))
    if sending and not opts["api_key"]:
        raise CommandError("--api-key is required to send (use --nab-out/--truth-out alone to only write files)")
    if not sending and not files:
        raise CommandError("nothing to do: give --days and/or --live (with --api-key), or --nab-out/--truth-out")
    if opts["start"] and sending:
        raise CommandError("--start is for writing files only (sent data ends now)")
    for name in ("clusters", "nodes", "step", "batch_points"):
        if opts[name] < 1:
            raise CommandError(f"--{name.replace('_', '-')}: must be at least 1")
    if opts["speed"] <= 0 or opts["duration"] < 0 or (opts["days"] is not None and opts["days"] < 0):
        raise CommandError("--speed must be positive, --duration and --days not negative")
    return sending


@dataclass(frozen=True)
class _Timeline:
    start: float  # the fleet's first point (epoch seconds)
    end: float  # past its last point
    live_start: int  # where history ends and live sending starts
    history_points: int  # per series, sent before live_start


def _bar(total: int, desc: str):
    return tqdm(total=total, desc=desc, unit="pt", unit_scale=True, dynamic_ncols=True)
