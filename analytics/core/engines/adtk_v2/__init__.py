"""The ``adtk`` engine (the product default): an alarm needs a point that is both
surprising for its series and rare in its recent history.

Pipeline, every step causal and streamed (an incremental call advances a copy of the
state and equals one call over all the points):

0. **Scale** (``log_values``): a series whose first day is positive with noise in
   proportion to its level (request rates, latencies, throughputs) is scored on
   ``log(x)`` from then on (:func:`.engine.log_floor`; the first day is scored on x and
   kept in the state until decided), so the noise is the same at the daily peak and at
   night and a dip counts as much as a rise of the same factor.
1. **Components** (:mod:`.components`): level, seasonal (one day and one week ago, and
   with ``seasonal_cycles`` > 1 the median of several periods back, :mod:`.seasonal`) and
   spike deviations in robust sigmas of the series, from baselines refreshed every
   ``block_points`` from block summaries (:mod:`.blocks`). They are ADTK's transforms
   (``DoubleRollingAggregate``, ``Series.diff`` + ``RollingAggregate``, ``PersistAD``),
   computed incrementally.
2. **Two views** (:mod:`.likelihood`), each a per-series likelihood: *surprise* (HTM's anomaly
   likelihood of the largest deviation, with a one-point path for extreme values) and
   *rarity* (an empirical tail probability of every
   component over the recent ``rarity_window``, at least two days of points, so recurring
   events are not rare).
3. **Score** (:func:`analytics.core.engines.calibration.combined_score`): the geometric
   mean of the two views' odds relative to the alarm level, ``r``, and ``score =
   r**2 / (1 + r**2)``: 0.5 is the alarm level, and the score keeps growing with the
   evidence.
4. **Alarms** (:mod:`analytics.core.engines.alarms`): a point at ``threshold`` starts an
   alarm; the ``suppress_points`` points after it start none (their scores are set to 0)
   but stay *confirmed*, so a sustained anomaly is one episode.
5. **Episode scores** (:func:`analytics.core.engines.calibration.episode_score`): an
   episode's highest evidence weighed by its largest deviation (``magnitude``: level,
   seasonal or spike, in sigmas, measured as a ratio to the level's median where that is
   positive, :func:`analytics.core.engines.calibration.ratio_sigmas`), so results rank by
   size as well as by surprise.

Explanations quote an ADTK seasonal profile and the level scale (:mod:`.explanations`).
The state (:mod:`.state`) holds the block summaries, a week of seasonal slots, the two
views' references and the alarm carry; its size does not grow with the series.
"""
