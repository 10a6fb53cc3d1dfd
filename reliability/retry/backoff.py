"""Exponential backoff with jitter: how long a client waits before each retry.

Examples
--------
>>> Backoff(0.1, 2.0, "none").delay(3)
0.4
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._validate import ArgumentTypeError, as_array, describe, is_scalar, number, output, whole

__all__ = ["Backoff"]


def _set_number(policy, name: str, *, strict: bool = False) -> None:
    """Check a numeric field of the frozen record and store it as a float."""
    object.__setattr__(policy, name, number(f"{type(policy).__name__}.{name}", getattr(policy, name), minimum=0.0,
                                            strict=strict))


_JITTERS = ("none", "full", "equal", "decorrelated")
#: Most delays one call of Backoff.sample draws (one float64 array of 800 MB).
_MAX_SAMPLES = 10**8


def _generator(rng):
    """``rng`` if it draws uniforms as a numpy Generator does; TypeError naming it otherwise."""
    if not callable(getattr(rng, "uniform", None)):
        raise ArgumentTypeError(f"rng must be a numpy Generator, got {describe(rng)}")
    return rng


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter (AWS Architecture Blog, "Exponential Backoff And Jitter").

    The un-jittered delay before retry ``i`` (``i = 1`` first retry) is
    ``d_i = min(cap, base * 2^(i-1))`` (:meth:`unjittered`). Jitter:

    * ``"none"``: ``d_i``;
    * ``"full"``: ``U(0, d_i)``, mean ``d_i / 2``;
    * ``"equal"``: ``d_i / 2 + U(0, d_i / 2)``, mean ``3 d_i / 4``;
    * ``"decorrelated"``: ``min(cap, U(base, 3 * previous))`` with ``previous = base`` before the
      first retry; it depends on the previous delay, so it has no per-index closed-form mean.

    Backoff delays spread retries in time; they do not change the steady-state attempt rates of
    the mean-field models (a retry delayed is still a retry), only the transients.

    Examples
    --------
    >>> Backoff(0.1, 2.0, "none").delay(3)
    0.4
    >>> Backoff(0.1, 2.0, "equal").mean(10)  # capped at 2.0
    1.5
    """

    base: float = 0.1
    cap: float = 20.0
    jitter: str = "full"

    def __post_init__(self):
        _set_number(self, "base", strict=True)
        _set_number(self, "cap", strict=True)
        if self.cap < self.base:
            raise ValueError(f"Backoff.cap must be >= base ({self.base!r}), got {self.cap!r}")
        if not isinstance(self.jitter, str):
            raise ArgumentTypeError(f"Backoff.jitter must be one of {_JITTERS}, got {describe(self.jitter)}")
        if self.jitter not in _JITTERS:
            raise ValueError(f"Backoff.jitter must be one of {_JITTERS}, got {self.jitter!r}")

    def unjittered(self, retry_index):
        """The un-jittered delay ``min(cap, base * 2^(i-1))`` before retry ``i``, without overflow for any ``i``.

        Examples
        --------
        >>> Backoff(0.5, 3.0, "full").unjittered([1, 2, 3, 4]).tolist()
        [0.5, 1.0, 2.0, 3.0]
        """
        i = as_array("retry_index", retry_index, minimum=1.0, integer=True)
        # beyond this exponent the cap binds; clamping keeps base * 2^k finite (ldexp: no 2^k overflow)
        doublings = math.ceil(math.log2(self.cap) - math.log2(self.base)) + 1  # cap / base may overflow
        exponent = np.minimum(i - 1.0, doublings).astype(np.int64)
        with np.errstate(over="ignore"):  # only for cap within a factor 4 of the largest float: min() takes cap
            return np.minimum(self.cap, np.ldexp(self.base, exponent))

    def mean(self, retry_index):
        """Mean delay before retry ``retry_index`` (none, full and equal jitter)."""
        if self.jitter == "decorrelated":
            raise ValueError(
                "Backoff.jitter='decorrelated' has no closed-form mean per retry index "
                "(each delay depends on the previous one); use sample()"
            )
        scalar = is_scalar(retry_index)
        d = self.unjittered(retry_index)
        factor = {"none": 1.0, "full": 0.5, "equal": 0.75}[self.jitter]
        return output(factor * d, scalar)

    def delay(self, retry_index: int, previous_delay: float | None = None, rng=None) -> float:
        """One delay before retry ``retry_index``; ``previous_delay`` is used by decorrelated jitter."""
        d = float(self.unjittered(whole("retry_index", retry_index, minimum=1)))
        if self.jitter == "none":
            return d
        if rng is None:
            raise ArgumentTypeError(f"rng must be a numpy Generator for jitter={self.jitter!r}, got None")
        rng = _generator(rng)
        if self.jitter == "full":
            return float(rng.uniform(0.0, d))
        if self.jitter == "equal":
            return float(d / 2.0 + rng.uniform(0.0, d / 2.0))
        previous = self.base if previous_delay is None else number("previous_delay", previous_delay, minimum=0.0)
        high = 3.0 * previous  # a Python float: inf beyond the float range, never an exception
        if high <= self.base or math.isfinite(high - self.base):
            return float(min(self.cap, rng.uniform(self.base, max(self.base, high))))
        # U(base, 3 previous) overflows numpy's range: draw the same uniform, scale it in floats
        return float(min(self.cap, self.base + (high - self.base) * rng.uniform(0.0, 1.0)))

    def sample(self, retry_index: int, rng, size: int) -> np.ndarray:
        """``size`` independent delays before retry ``retry_index``.

        For decorrelated jitter each sample runs its own chain of ``retry_index`` delays from
        ``previous = base``.
        """
        size = whole("size", size)
        if size > _MAX_SAMPLES:
            raise ValueError(f"size must be at most {_MAX_SAMPLES:,} delays per call, got {size!r}")
        retry_index = whole("retry_index", retry_index, minimum=1)
        if self.jitter == "decorrelated" and retry_index * max(size, 1) > _MAX_SAMPLES:
            raise ValueError(f"retry_index x size must be at most {_MAX_SAMPLES:,} draws for decorrelated jitter "
                             f"(each sample runs a chain of retry_index delays), got retry_index={describe(retry_index)} "
                             f"with size={size}")
        rng = _generator(rng)
        d = float(self.unjittered(retry_index))
        if self.jitter == "none":
            return np.full(size, d)
        if self.jitter == "full":
            return rng.uniform(0.0, d, size)
        if self.jitter == "equal":
            return d / 2.0 + rng.uniform(0.0, d / 2.0, size)
        previous = np.full(size, self.base)
        for _ in range(int(retry_index)):
            previous = np.minimum(self.cap, rng.uniform(self.base, np.maximum(self.base, 3.0 * previous)))
        return previous
