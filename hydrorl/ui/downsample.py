"""What a plot draws of a long curve: a few points per pixel column, a y range outliers do not set.

Pure numpy, no plotting: the monitor draws what these functions pick.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def minmax_indices(x: np.ndarray, y: np.ndarray, buckets: int) -> np.ndarray:
    """Indices of the points that draw the line ``y(x)`` the same at ``buckets`` pixel columns.

    Each column (an equal share of ``x``'s span) keeps its first and last point (in the
    order given) and its lowest and highest finite one: M4 (Jugel et al., "M4: a
    visualization-oriented time series data aggregation", VLDB 2014), which draws the same
    pixels as every point at that width, spikes included.  At most ``4 * buckets`` indices,
    sorted; all of them when there are no more than that.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D and of one length, not {x.shape} and {y.shape}")
    if buckets < 1:
        raise ValueError(f"buckets must be at least 1, not {buckets}")
    n = len(x)
    if n <= 4 * buckets:
        return np.arange(n)
    lo, hi = float(np.min(x)), float(np.max(x))
    column = np.zeros(n, dtype=np.int64)
    if hi > lo:
        column = np.clip(((x - lo) / (hi - lo) * buckets).astype(np.int64), 0, buckets - 1)
    finite = np.isfinite(y)
    by_position = np.argsort(column, kind="stable")  # (within a column, the order given)
    # Sorted by column then value: a column's first entry is its lowest, last its highest
    # (a non-finite value sorts after every finite one, so it is picked only if it is all).
    by_value = np.lexsort((np.where(finite, y, np.inf), column))
    by_value_desc = np.lexsort((np.where(finite, -y, np.inf), column))
    sorted_columns = column[by_position]
    starts = np.flatnonzero(np.r_[True, sorted_columns[1:] != sorted_columns[:-1]])
    ends = np.r_[starts[1:], n] - 1
    picked = np.concatenate(
        [by_position[starts], by_position[ends], by_value[starts], by_value_desc[starts]]
    )
    return np.unique(picked)


def robust_range(
    values: Iterable[np.ndarray],
    keep: Iterable[float] = (),
    percentiles: tuple[float, float] = (1.0, 99.0),
    pad: float = 0.05,
) -> tuple[float, float] | None:
    """A y range over ``values`` that a few extreme points do not stretch.

    It spans the ``percentiles`` of the finite values pooled, widened to take in every
    value of ``keep`` (reference lines: always in view), padded by ``pad`` of its span on
    each side.  None when there is nothing finite to show.
    """
    pooled = [np.ravel(np.asarray(v, dtype=float)) for v in values]
    points = np.concatenate(pooled) if pooled else np.empty(0)
    points = points[np.isfinite(points)]
    fixed = np.asarray(list(keep), dtype=float)
    fixed = fixed[np.isfinite(fixed)]
    if points.size == 0 and fixed.size == 0:
        return None
    lo, hi = np.inf, -np.inf
    if points.size:
        lo, hi = (float(p) for p in np.percentile(points, percentiles))
    if fixed.size:
        lo, hi = min(lo, float(fixed.min())), max(hi, float(fixed.max()))
    span = hi - lo
    if span <= 0:  # one level: a band around it
        span = abs(hi) * 0.1 or 1.0
        return lo - span, hi + span
    return lo - pad * span, hi + pad * span
