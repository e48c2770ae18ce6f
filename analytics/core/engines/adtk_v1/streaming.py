"""The v1 engine's scores, streamed: block summaries advanced point by point.

The components of :func:`.transforms.deviations` computed from per-block summaries kept
in a :class:`~.state.StreamState`, so an incremental call costs in proportion to its new
points and equals one call over all of them (to rounding of the likelihood block sums).
See the package docstring for the method.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import bottleneck as bn
import numpy as np

from analytics.core.engines import calibration
from analytics.core.engines.adtk_v1.state import StreamState
from analytics.core.engines.adtk_v1.transforms import parse_scales, trailing_mean
from analytics.core.engines.alarms import AlarmRules, postprocess
from analytics.core.engines.calibration import MEAN_ABS_TO_SIGMA
from analytics.core.engines.parameters import parse_duration
from analytics.core.engines.profiles import infer_step_seconds


class StreamScorer:
    """The streamed statistics of one engine configuration (``params``)."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = params

    def scale_points(self) -> list[int]:
        return parse_scales(self.params["scales"])

    def seasonal_lag_points_for(self, step_seconds: float) -> int:
        return max(1, int(round(parse_duration(self.params["seasonal_lag"]).total_seconds() / step_seconds)))

    def ring_size(self) -> int:
        return max(1, int(round(self.params["baseline_points"] / self.params["block_points"])))

    def likelihood_ring_size(self) -> int:
        return max(1, int(round(self.params["likelihood_window"] / self.params["likelihood_block"])))

    def new_stream(self, ts: np.ndarray) -> StreamState:
        """An empty stream; the step is the median spacing of the first
        ``min_fit_points`` points (what a product knows from the metric's configuration)."""
        step = infer_step_seconds(ts[: self.params["min_fit_points"]])
        lag = 0
        if self.params["seasonal"] != "off" and self.params["seasonal_weight"] > 0:
            p = self.seasonal_lag_points_for(step)
            lag = p if p >= 2 else 0
        tail = max(max(self.scale_points()) - 1, self.params["spike_points"])
        return StreamState(
            step_seconds=step, lag=lag, lag_buffer=np.full(lag, np.nan),
            tail_x=np.full(tail, np.nan), tail_dev=np.full(tail, np.nan), tail_stats=np.full((tail, 2), np.nan),
            tail_u=np.full(self.params["likelihood_short"] - 1, np.nan),
        )

    def slot_reference(self, st: StreamState, ts: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Seasonal reference by time of period: the slot of a point is its offset in
        the (epoch-aligned) ``seasonal_lag`` period in steps; its reference is the last
        earlier value seen in the same slot (one period ago on regular data, equal to
        the ``lag``-point difference; still aligned on gappy or jittered data).
        ``st.lag_buffer[slot]`` holds the last value per slot."""
        step_ns = int(round(st.step_seconds * 1e9))
        slots = ((ts % (st.lag * step_ns)) // step_ns).astype(np.int64)
        slots = np.minimum(slots, st.lag - 1)
        order = np.argsort(slots, kind="stable")
        ss = slots[order]
        ref_sorted = np.empty(len(x))
        same = np.zeros(len(x), dtype=bool)
        same[1:] = ss[1:] == ss[:-1]
        xs = x[order]
        ref_sorted[1:] = np.where(same[1:], xs[:-1], np.nan)
        ref_sorted[~same] = st.lag_buffer[ss[~same]]
        ref = np.empty(len(x))
        ref[order] = ref_sorted
        last = np.ones(len(x), dtype=bool)
        last[:-1] = ss[1:] != ss[:-1]
        st.lag_buffer = st.lag_buffer.copy()
        st.lag_buffer[ss[last]] = xs[last]
        return ref

    def close_block(self, st: StreamState) -> None:
        """The open block is complete: summarise it into the rings, refresh the stats."""
        k = self.ring_size()
        bx, bsd = st.open_x, st.open_sd
        base, sbase = st.stats[0], st.stats[2]
        ref = base if math.isfinite(base) else float(np.median(bx))
        br = st.open_r[np.isfinite(st.open_r)]
        row = [float(np.median(bx)), float(np.abs(bx - ref).sum()), float(len(bx)), float(bx.min()), float(bx.max()),
               float(np.abs(br).sum()), float(br.size)]
        st.ring_level = np.vstack([st.ring_level, row])[-k:]
        fin = bsd[np.isfinite(bsd)]
        if fin.size:
            smed = float(np.median(fin))
            sref = sbase if math.isfinite(sbase) else smed
            srow = [smed, float(np.abs(fin - sref).sum()), float(fin.size)]
        else:
            srow = [math.nan, 0.0, 0.0]
        hold = self.params["seasonal_hold"]
        sscale = st.stats[3]
        if (hold > 0 and fin.size and math.isfinite(sbase) and math.isfinite(sscale)
                and float(np.median(np.abs(fin - sbase))) > hold * sscale
                and (st.held_blocks + 1) * len(bx) <= st.lag):
            st.held_blocks += 1  # an anomalous block does not teach the seasonal baseline (for up to a period)
        else:
            st.held_blocks = 0
            st.ring_seasonal = np.vstack([st.ring_seasonal, srow])[-k:]
        st.open_x, st.open_sd, st.open_r = np.zeros(0), np.zeros(0), np.zeros(0)
        # refresh
        h_min = self.params["baseline_min_points"]
        stats = np.full(5, np.nan)
        ring = st.ring_level
        cnt = ring[:, 2].sum()
        rng = float(ring[:, 4].max() - ring[:, 3].min())
        if cnt >= h_min:
            med = float(np.median(ring[:, 0]))
            mad = float(ring[:, 1].sum() / cnt)
            stats[0] = med
            floor = max(self.params["range_floor"] * rng, self.params["relative_scale_floor"] * abs(med) + 1e-9)
            stats[1] = max(MEAN_ABS_TO_SIGMA * mad, floor)
            rcnt = ring[:, 6].sum()
            if rcnt >= h_min:
                stats[4] = max(MEAN_ABS_TO_SIGMA * float(ring[:, 5].sum() / rcnt), floor)
        sring = st.ring_seasonal
        have = sring[:, 2] > 0
        scnt = sring[have, 2].sum()
        if scnt >= h_min:
            stats[2] = float(np.median(sring[have, 0]))
            smad = float(sring[have, 1].sum() / scnt)
            stats[3] = max(MEAN_ABS_TO_SIGMA * smad, self.params["range_floor"] * rng, 1e-9)
        st.stats = stats

    def refresh_likelihood(self, st: StreamState, close: bool) -> None:
        if close:
            st.ring_likelihood = np.vstack([st.ring_likelihood, st.lik_open])[-self.likelihood_ring_size():]
            st.lik_open = np.zeros(5)
        tot = st.ring_likelihood.sum(axis=0) + st.lik_open
        if tot[2] >= self.params["likelihood_min_points"]:
            mean = tot[0] / tot[2]
            st.lik_mean = float(mean)
            st.lik_std = float(math.sqrt(max(tot[1] / tot[2] - mean * mean, 0.0)))
            smean = tot[3] / tot[2]
            st.spike_mean = float(smean)
            st.spike_std = float(math.sqrt(max(tot[4] / tot[2] - smean * smean, 0.0)))


    def advance(self, st: StreamState, ts: np.ndarray, x: np.ndarray) -> dict[str, np.ndarray]:
        """Score new points ``x`` (after ``st.cursor_ns``) and advance ``st`` in place.
        Returns per-point arrays: level, seasonal (deviations in sigmas), d, u, z. The
        same numbers however the points are split into calls (to rounding of the
        likelihood block sums)."""
        x = np.asarray(x, dtype=np.float64)
        n = len(x)
        direction = self.params["direction"]
        g0 = st.points
        sd = self._seasonal_difference(st, ts, x)
        # one-point residual against the median of the few points before (ADTK's PersistAD)
        w = self.params["spike_points"]
        ext_x = np.concatenate([st.tail_x, x])
        t = len(st.tail_x)
        if w > 0:  # median of the w points before each new point (exact: a selection)
            r = x - bn.move_median(ext_x[t - w:t - 1 + n], w, min_count=1)[w - 1:]
        else:
            r = np.full(n, np.nan)
        stats = self._feed_blocks(st, x, sd, r)
        _, _, sbase, sscale, rscale = stats.T  # the level uses the statistics in force m - 1 points earlier
        with np.errstate(invalid="ignore", divide="ignore"):
            level = np.full(n, np.nan)
            # scale m compares the mean of the last m points with the statistics in force
            # at the first of them (the baseline then holds none of the m points)
            ext_stats = np.concatenate([st.tail_stats, stats[:, :2]])
            if self.params["level_weight"] > 0:
                for m in self.scale_points():
                    bs = ext_stats[t - m + 1:t - m + 1 + n]
                    diff = trailing_mean(ext_x, m, n) - bs[:, 0]
                    level = np.fmax(level, np.fmax(_signed(diff, direction), 0.0) / bs[:, 1])
            dev = sd - sbase
            dev = np.abs(dev) if direction == "both" else np.where(np.isnan(dev), np.nan, np.fmax(
                _signed(dev, direction), 0.0))
            ext_dev = np.concatenate([st.tail_dev, dev])
            seasonal = np.full(n, np.nan)
            if st.lag > 0:
                for m in self.scale_points():
                    seasonal = np.fmax(seasonal, trailing_mean(ext_dev, m, n) / sscale)
            spike = np.fmax(_signed(r, direction), 0.0) / rscale
            d = self.params["level_weight"] * np.nan_to_num(level, nan=0.0)
            d = np.fmax(d, self.params["seasonal_weight"] * np.nan_to_num(seasonal, nan=0.0))
            u = np.log1p(np.fmax(d, 0.0))
            ext_u = np.concatenate([st.tail_u, u])
            short = trailing_mean(ext_u, self.params["likelihood_short"], n)
        if t:
            st.tail_x, st.tail_dev, st.tail_stats = ext_x[-t:], ext_dev[-t:], ext_stats[-t:]
        if len(st.tail_u):
            st.tail_u = ext_u[-len(st.tail_u):]
        z = self._likelihood(st, u, spike, short)
        st.points = g0 + n
        if n:
            st.cursor_ns = int(ts[-1])
        return {"level": level, "seasonal": seasonal, "spike": spike, "d": d, "u": u, "z": z}

    def _seasonal_difference(self, st: StreamState, ts: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``x_t - x_(t - lag)`` (lag in points), or against the slot's last value."""
        n = len(x)
        lag = st.lag
        if lag <= 0:
            return np.full(n, np.nan)
        if self.params["seasonal_reference"] == "time":
            sd = x - self.slot_reference(st, ts, x)
        else:
            ext = np.concatenate([st.lag_buffer, x])
            sd = x - ext[:n]
            st.lag_buffer = ext[-lag:]
        cycles = self.params["seasonal_lag_cycles"]
        if cycles > 0:
            sd = np.where(st.points + np.arange(n) >= cycles * lag, sd, np.nan)
        return np.asarray(sd, dtype=np.float64)

    def _feed_blocks(self, st: StreamState, x: np.ndarray, sd: np.ndarray, r: np.ndarray) -> np.ndarray:
        """The statistics in force at each new point; closes the blocks that complete."""
        n = len(x)
        b = self.params["block_points"]
        g0 = st.points
        stats = np.empty((n, 5))
        i = 0
        while i < n:
            j = min(n, i + b - (g0 + i) % b)
            stats[i:j] = st.stats
            st.open_x = np.concatenate([st.open_x, x[i:j]])
            st.open_sd = np.concatenate([st.open_sd, sd[i:j]])
            st.open_r = np.concatenate([st.open_r, r[i:j]])
            if (g0 + j) % b == 0:
                self.close_block(st)
            i = j
        return stats

    def _likelihood(self, st: StreamState, u: np.ndarray, spike: np.ndarray, short: np.ndarray) -> np.ndarray:
        """z of the recent surprise against the likelihood window (refreshed every
        ``likelihood_refresh`` points), with the spike's one-point path."""
        n = len(u)
        g0 = st.points
        lb = self.params["likelihood_block"]
        mu = np.empty(n)
        sdv = np.empty(n)
        smu = np.empty(n)
        ssd = np.empty(n)
        us = np.log1p(np.nan_to_num(spike, nan=0.0))
        i = 0
        r = self.params["likelihood_refresh"]
        while i < n:
            j = min(n, i + r - (g0 + i) % r)
            mu[i:j], sdv[i:j] = st.lik_mean, st.lik_std
            smu[i:j], ssd[i:j] = st.spike_mean, st.spike_std
            seg, sseg = u[i:j], us[i:j]
            st.lik_open = st.lik_open + np.array([seg.sum(), (seg * seg).sum(), float(j - i), sseg.sum(),
                                                  (sseg * sseg).sum()])
            if (g0 + j) % r == 0:
                self.refresh_likelihood(st, close=(g0 + j) % lb == 0)
            i = j
        k = self.params["likelihood_short"]
        with np.errstate(invalid="ignore", divide="ignore"):
            z = (short - mu) / np.fmax(sdv / math.sqrt(k), 1e-6)
            gain = self.params["spike_gain"]
            if gain > 0:
                z = np.fmax(z, gain * (us - smu) / np.fmax(ssd, 1e-6))
        z = np.nan_to_num(z, nan=0.0)
        z[g0 + np.arange(n) < self.params["min_fit_points"]] = 0.0
        return np.asarray(z, dtype=np.float64)

    def score_stream(
        self, st: StreamState, ts: np.ndarray, x: np.ndarray, rules: AlarmRules
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
        """Advance ``st`` over new points; returns (arrays incl. the evidence, scores,
        alarms, confirmed)."""
        out = self.advance(st, ts, x)
        evidence = calibration.likelihood_to_score(out["z"])
        scores, alarms, confirmed, st.alarm = postprocess(
            evidence, ts, rules, suppress_points=int(self.params["suppress_points"]), carry=st.alarm,
        )
        out["evidence"] = evidence
        return out, scores, alarms, confirmed


def _signed(values: np.ndarray, direction: str) -> np.ndarray:
    """The deviations that count in ``direction`` (both: their size)."""
    if direction == "both":
        return np.asarray(np.abs(values), dtype=np.float64)
    return np.asarray(values if direction == "up" else -values, dtype=np.float64)
