"""The package's one whole-number bisection and one real bisection.

Every inverse question in the package ("least servers with ...", "largest load with ...",
"the surge at which ...") is a monotone predicate searched here. Each search comes as a
plain-Python twin for one point at a time (a sizing loop, where numpy's fixed cost per call
would dominate) beside its vectorised version over arrays of independent problems.

Whole numbers
    :func:`least_whole_between` / :func:`least_whole` (one point) and
    :func:`least_whole_between_array` / :func:`least_whole_array` (arrays).
Real numbers
    :func:`bisect_real` (scalars or arrays) with :func:`least_real`, :func:`greatest_real` and
    :func:`crossing` built on it.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "least_whole_between",
    "least_whole",
    "least_whole_between_array",
    "least_whole_array",
    "bisect_real",
    "least_real",
    "greatest_real",
    "crossing",
    "MAX_HALVINGS",
]

# Halving any finite float64 bracket reaches adjacent doubles within about 2,150 steps
# (1,024 binary orders of magnitude above 1, 1,074 below, 53 bits of mantissa); the bound
# makes every search finite even for a predicate that misbehaves.
MAX_HALVINGS = 2200
# Doubling the margin of a whole-number bracket 1,100 times passes any float64 value (2^1024 ~ 1.8e308).
_MAX_DOUBLINGS = 1100


def least_whole_between(predicate, low: int, high: int) -> int:
    """Least whole ``n`` in ``(low, high]`` with ``predicate(n)``, for a monotone predicate true at ``high``.

    ``predicate`` is never asked at ``low`` (it may stand for "below the range", e.g. -1).

    Examples
    --------
    >>> least_whole_between(lambda n: n * n >= 50, 0, 100)
    8
    """
    while high - low > 1:
        mid = (low + high) // 2
        if predicate(mid):
            high = mid
        else:
            low = mid
    return high


def least_whole(predicate, low: int, start: int, limit: int | None = None) -> int:
    """Least whole ``n > low`` with ``predicate(n)``, for a monotone predicate false at ``low``.

    The bracket grows from ``start`` (a guess at the answer), the margin above the last
    failing point doubling each time, until the predicate holds; :func:`least_whole_between`
    then closes it. ``limit``, a whole number where the predicate is known to hold (the
    caller's proven bound), caps the growth; without it the growth stops after
    ``_MAX_DOUBLINGS`` steps.

    Examples
    --------
    >>> least_whole(lambda n: 2 ** n >= 10 ** 6, 0, 3)
    20
    >>> least_whole(lambda n: n >= 10 ** 6, 0, 3, limit=10 ** 6)
    1000000
    """
    high = max(start, low + 1) if limit is None else min(max(start, low + 1), limit)
    for _ in range(_MAX_DOUBLINGS):
        if predicate(high):
            return least_whole_between(predicate, low, high)
        if limit is not None and high >= limit:
            break
        # The guess fell short: it becomes the lower end, and the margin above it doubles.
        low, high = high, high + 2 * (high - low)
        if limit is not None:
            high = min(high, limit)
    raise RuntimeError(f"no whole number in ({low}, {high}] meets the predicate")  # a caller's bound was wrong


def least_whole_between_array(predicate, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Elementwise least whole ``n`` in ``(low, high]`` with the predicate true, by one bisection.

    ``predicate(n, mask)`` answers for the elements selected by the boolean ``mask`` (``n``
    holds just those elements) and must be monotone in ``n``, false at ``low`` and true at
    ``high``. Elements whose bracket has closed are not asked again.

    Examples
    --------
    >>> need = np.array([10.0, 50.0, 1000.0])
    >>> least_whole_between_array(lambda n, m: n * n >= need[m], np.zeros(3), np.full(3, 64.0))
    array([ 4.,  8., 32.])
    """
    low = np.array(low, dtype=np.float64)
    high = np.array(high, dtype=np.float64)
    for _ in range(MAX_HALVINGS):
        # a bracket whose midpoint is no whole float (beyond 2**53) has closed as far as floats go
        open_ = (high - low > 1) & (np.floor(0.5 * low + 0.5 * high) > low)
        if not open_.any():
            return high
        mid = np.floor(0.5 * low[open_] + 0.5 * high[open_])
        ok = np.asarray(predicate(mid, open_), dtype=bool)
        high[open_] = np.where(ok, mid, high[open_])
        low[open_] = np.where(ok, low[open_], mid)
    return high


def least_whole_array(predicate, low: np.ndarray, start: np.ndarray, limit: np.ndarray | None = None) -> np.ndarray:
    """Elementwise least whole ``n > low`` with the predicate true: :func:`least_whole` over arrays.

    ``predicate(n, mask)`` as in :func:`least_whole_between_array`; ``start`` is a guess at
    the answer from which each element's bracket grows until the predicate holds, never
    beyond ``limit`` (where the predicate is known to hold), if given.

    Examples
    --------
    >>> need = np.array([10.0, 1e6])
    >>> least_whole_array(lambda n, m: 2.0 ** n >= need[m], np.zeros(2), np.full(2, 3.0))
    array([ 4., 20.])
    """
    low = np.array(low, dtype=np.float64)
    high = np.maximum(start, low + 1)
    if limit is not None:
        high = np.minimum(high, limit)
    for _ in range(_MAX_DOUBLINGS):
        ok = np.asarray(predicate(high, np.ones(high.shape, bool)), dtype=bool)
        if ok.all():
            return least_whole_between_array(predicate, low, high)
        if limit is not None and (high[~ok] >= limit[~ok]).any():
            break
        # Where the guess fell short it becomes the lower end, and the margin above it doubles.
        low, high = np.where(ok, low, high), np.where(ok, high, high + 2 * (high - low))
        if limit is not None:
            high = np.minimum(high, limit)
    raise RuntimeError("no upper bound found for the search")  # a caller's bound was wrong


def bisect_real(upper_side, low, high, *, relative_precision: float = 0.0):
    """Shrink ``[low, high]`` around where the monotone ``upper_side`` turns true; returns ``(low, high)``.

    Works on one point (``low`` and ``high`` floats, ``upper_side(x)`` a bool) or on arrays of
    independent brackets (``upper_side(x)`` a boolean array for the whole array ``x``).
    Halving stops once ``high - low <= relative_precision * max(1, |high|)`` or the bracket's
    ends are adjacent doubles (``relative_precision = 0``, the default: full precision), and
    after :data:`MAX_HALVINGS` steps at most.

    Examples
    --------
    >>> low, high = bisect_real(lambda x: x * x >= 2.0, 0.0, 2.0)
    >>> high, high - low <= 2.3e-16
    (1.4142135623730951, True)
    >>> bisect_real(lambda x: x >= 0.3, 0.0, 1.0, relative_precision=1e-3)[1]
    0.30078125
    """
    if np.ndim(low) == 0 and np.ndim(high) == 0:
        return _bisect_real_scalar(upper_side, float(low), float(high), relative_precision)
    low, high = np.broadcast_arrays(np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64))
    low, high = low.copy(), high.copy()
    for _ in range(MAX_HALVINGS):
        mid = 0.5 * low + 0.5 * high  # not (low + high) / 2: that overflows near 1.8e308
        done = (mid <= low) | (mid >= high)
        if relative_precision > 0:
            done |= high - low <= relative_precision * np.maximum(1.0, np.abs(high))
        if done.all():
            break
        above = np.asarray(upper_side(mid), dtype=bool)
        high = np.where(above & ~done, mid, high)
        low = np.where(~above & ~done, mid, low)
    return low, high


def _bisect_real_scalar(upper_side, low: float, high: float, relative_precision: float):
    for _ in range(MAX_HALVINGS):
        if high - low <= relative_precision * max(1.0, abs(high)):
            break
        mid = 0.5 * low + 0.5 * high  # not (low + high) / 2: that overflows near 1.8e308
        if mid <= low or mid >= high:
            break
        if upper_side(mid):
            high = mid
        else:
            low = mid
    return low, high


def least_real(predicate, low, high, *, relative_precision: float = 0.0):
    """Least real ``x`` in ``[low, high]`` with the monotone ``predicate(x)``; a point where it holds.

    Examples
    --------
    >>> least_real(lambda x: x ** 3 >= 8.0, 0.0, 4.0)
    2.0
    """
    return bisect_real(predicate, low, high, relative_precision=relative_precision)[1]


def greatest_real(predicate, low, high, *, relative_precision: float = 0.0):
    """Greatest real ``x`` in ``[low, high]`` with ``predicate(x)``, given it holds at ``low`` and is monotone.

    Examples
    --------
    >>> greatest_real(lambda x: x ** 3 <= 8.0, 0.0, 4.0)
    2.0
    """
    if np.ndim(low) == 0 and np.ndim(high) == 0:
        return bisect_real(lambda x: not predicate(x), low, high, relative_precision=relative_precision)[0]
    return bisect_real(lambda x: ~np.asarray(predicate(x), dtype=bool), low, high,
                       relative_precision=relative_precision)[0]


def crossing(excess, low, high):
    """Where the increasing ``excess`` crosses zero in ``[low, high]``, to full double precision.

    The midpoint of the final bracket of :func:`bisect_real` on ``excess(x) > 0``; scalars or arrays.

    Examples
    --------
    >>> crossing(lambda x: x * x - 2.0, np.zeros(1), np.full(1, 2.0))
    array([1.41421356])
    """
    low, high = bisect_real(lambda x: excess(x) > 0, low, high)
    return 0.5 * low + 0.5 * high
