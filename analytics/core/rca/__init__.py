"""Root-cause hints (no Django): which series of a cluster moved first in a window, which
moved together, and one sentence about it.

- ``onsets``: the series on one grid, their deviation from a baseline, a causal change
  point (CUSUM) per series;
- ``comovement``: lagged correlation of the deviations, groups within a cluster;
- ``hint``: the result dataclasses;
- ``text``: the sentences;
- ``analysis``: ``analyse_window(series, start, end)`` puts them together.
"""
