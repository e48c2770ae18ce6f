"""The previous default engine, registered as "adtk_v1" for comparison: causal,
per-series calibrated, streamed.

ADTK detectors return labels, and their ``fit`` learns thresholds from the whole series
it is given, so using them as published would look into the future. This engine keeps
ADTK's statistics (:func:`.transforms.deviations` re-implements them exactly in
numpy/bottleneck; tests check it equals ADTK's transforms) and adds what a corpus-wide
threshold needs: a per-series "anomaly likelihood" and alarm suppression counted in
points. The hot path computes the same statistics from **per-block summaries** kept in the
state, so an incremental call costs in proportion to its new points (below).
Windows are counted in POINTS (sampling steps differ by an order of magnitude between
metrics; a "15min" window is 15 points on one metric and less than one on another).

**Components** (``d``: deviation in robust sigmas, all causal), for every point t. The
baseline statistics are refreshed every ``block_points`` (B = 50) points from summaries of
the last ``baseline_points / B`` (20) complete blocks, H = 1000 points:

  ============ ================================================================ ==========
  component    statistic (exact ADTK transform it approximates)                 parameter
  ============ ================================================================ ==========
  level        for each m in ``scales`` (1, 5, 20 points):                      scales,
               ``|mean(x[t-m+1..t]) - med| / s`` with ``med`` = median of the   baseline_points,
               block medians and ``s`` the scale below, both as in force at      block_points
               point t-m+1 (so they hold none of the m points)
               (``DoubleRollingAggregate(agg=("median", "mean"),
               window=(H, m), center=False, diff="diff")``)
  seasonal     the same on the seasonal difference ``sd = x_t - x_(t-P)``,     seasonal_lag,
               P = one ``seasonal_lag`` in points at the step: ``mean over m     seasonal_reference
               points of |sd - med'| / s'`` (``Series.diff(P)``,
               ``RollingAggregate``); ``seasonal_reference="time"`` subtracts
               the last value in the same time-of-period slot instead (aligned
               on gappy data)
  spike        ``|x_t - median(x[t-w..t-1])| / s''``, w = ``spike_points`` (5)  spike_points,
               (ADTK's ``PersistAD``); feeds only the one-point path below      spike_gain
  ============ ================================================================ ==========

  A block whose median seasonal deviation exceeds ``seasonal_hold`` (5) seasonal sigmas
  is left out of the seasonal baseline (for at most one period of consecutive blocks), so
  a day whose shape changed keeps alarming instead of being learnt within hours.
  Scales: ``s = max(1.2533 * mean |x - med in force|`` over the blocks, ``range_floor``
  (1%) of the blocks' range (max of block maxima - min of block minima),
  ``relative_scale_floor`` (1e-3) of ``|med|``); ``s'`` the same on ``sd`` (range floor
  of x), ``s''`` on the spike residuals. The range floor keeps flat, stepped and
  quantised series from turning ordinary steps into hundreds of sigmas.
  ``d = max`` over level and seasonal components and scales (weighted by
  ``level_weight`` / ``seasonal_weight``; signed by ``direction``).

**Per-series likelihood** (HTM's anomaly likelihood): ``u = log1p(d)``; ``mu``, ``sd`` =
mean and std of ``u`` over the last ``likelihood_window`` (10000) points, from sums kept
per ``likelihood_block`` (500) points plus the open block, refreshed every
``likelihood_refresh`` (50) points (scores are 0 until ``likelihood_min_points`` (200)
and ``min_fit_points`` (200) points were seen);
``z = (mean(u over the last likelihood_short points) - mu) / (sd / sqrt(likelihood_short))``.
**One-point path**: with ``us = log1p(spike)`` and its own mean/std over the same window,
``z = max(z, spike_gain * (us - mean) / std)`` (``spike_gain`` 0.6): an extreme single
point is not diluted by the ``likelihood_short`` average. ``score =
calibration.likelihood_to_score(z)`` (``z / (z + 3.8)``: 0.5 at z = 3.8, the NAB-optimal
operating point, see calibration.py).

**Alarms**: a point alarms at ``score >= threshold`` (0.5; k-of-n via the common
``min_alarm_points``); the ``suppress_points`` (150) points after an alarm's first point
are suppressed: their scores are set to 0 and they start no new alarm
(:func:`analytics.core.engines.alarms.suppress_following_points`). Suppressed points that still pass the threshold
stay ``confirmed``, so ``detect()`` reports a sustained anomaly as one episode.

**Explanations** use an ADTK-fitted seasonal profile: at fit time, periods among
``seasonal_periods`` (daily, weekly) whose autocorrelation passes ``seasonal_min_acf`` are
learnt with ADTK's ``ClassicSeasonalDecomposition`` (on a regular grid, smoothed over
``seasonal_smoothing``, stored epoch-aligned); ``expected = profile + median of the
deseasonalised past spike_window``, ``seasonal_expected`` the same over
``seasonal_level_window``, and the quoted sigma is learnt by ADTK's
``InterQuartileRangeAD(c=3)`` on the spike statistic (IQR / 1.349, floored).

**State** (:class:`~.state.AdtkFittedState`): the explanation fit
(sampling step, profiles, sigma; refitted when older than ``refit_age`` and the call holds
``history_points_for_fit`` points) and the streamed scoring statistics
(:class:`~.state.StreamState`: the last P values (1,440 at one-minute
data, float32 in JSON), 20 block summaries each for x, the seasonal difference and the
spike residuals, 20 likelihood blocks, tails of 19 points for the m-point means, the
suppression counter, the last alarm). The scores do not depend on the explanation fit.

**Full runs without a state** (``score(series)``, what the NAB harness calls and a run over
an explicit range does) stream the statistics from the series' first point (the step is
the median spacing of the first ``min_fit_points`` points) and fit the explanation
profiles on the past as production would (first after ``min_fit_points`` points, again
when the data doubles or ``refit_age`` passed). Scores are strictly causal. The returned
state holds the statistics at the series' end. ``history_points_for_fit`` (14 days at
one-minute data: ``fit_window``; the scores' warm-up alone is 12,490 points, see
:meth:`.engine.AdtkV1Engine.warmup_points_for`) is the context such a call wants.

**Incremental runs**: ``score(tail, state)`` scores the points of ``tail`` after the
state's cursor (its last scored point) by advancing a copy of its statistics, and returns
the advanced state; points at or before the cursor are context (score 0). The scores
equal those of one call over all the points (to rounding of the likelihood block sums;
through JSON to the float32 rounding of the seasonal lag), so chained 5-point calls
reproduce a stateless full run. The context ``history_points`` (120 points at one-minute
data) is only what the explanations look back over (``seasonal_level_window``).

Modules: :mod:`.transforms` (the exact numpy/bottleneck statistics), :mod:`.streaming`
(the block summaries advanced point by point), :mod:`.explanations` (the ADTK fits
explanations quote), :mod:`.state` (what is kept between runs), :mod:`.engine`.
"""
