"""Retry amplification: how many attempts a request makes when attempts fail independently.

:func:`expected_attempts` for one retrying client and :func:`layered_amplification` for a
stack of retrying layers (each retries the calls of the one above it).
"""

from __future__ import annotations

import numpy as np

from .._validate import ArgumentTypeError, as_array, broadcast, describe, is_scalar, output, probability, whole

__all__ = ["expected_attempts", "expected_attempts_kernel", "layered_amplification", "MAX_RETRIES"]

#: Most retries a policy or layer may allow: a cap beyond it is a mistake, and its attempt
#: counts (``max_retries + 1`` at ``p_fail = 1``) stay exact as floats.
MAX_RETRIES = 10**9


def _expected_attempts(p: np.ndarray, r: np.ndarray) -> np.ndarray:
    """sum_{k=0}^{r} p^k on validated, broadcast arrays (no warnings at p = 0 or p = 1)."""
    n = r + 1.0
    out = np.array(n, dtype=np.float64, copy=True)  # the p = 1 limit
    inner = (p > 0.0) & (p < 1.0)
    if inner.any():
        log_p = np.log(p[inner])
        # (1 - p^n) / (1 - p) with both differences from expm1: no cancellation as p -> 1
        out[inner] = np.expm1(n[inner] * log_p) / np.expm1(log_p)
    out[p == 0.0] = 1.0
    return out


def expected_attempts_kernel(p: np.ndarray, r) -> np.ndarray:
    """:func:`expected_attempts` without validation, for the inner loop of a model that checked its
    inputs once: ``p`` float array in [0, 1], ``r`` whole numbers >= 0 broadcasting against it.

    The same values as :func:`expected_attempts`, bit for bit, without its masks (a model calls it
    every time step): ``expm1(n log p) / expm1(log p)`` where p < 1 (at p = 0, log p = -inf gives
    -1 / -1 = 1) and ``n = r + 1`` at p = 1.

    Examples
    --------
    >>> expected_attempts_kernel(np.array([0.0, 0.5, 1.0]), np.array([3.0, 3.0, 3.0]))
    array([1.   , 1.875, 4.   ])
    """
    n = r + 1.0
    with np.errstate(divide="ignore", invalid="ignore"):  # log 0, and 0 / 0 in the branch p = 1 discards
        log_p = np.log(p)
        return np.where(p < 1.0, np.expm1(n * log_p) / np.expm1(log_p), n)


def expected_attempts(p_fail, max_retries):
    """Expected attempts per request when each attempt fails independently.

    With at most ``r`` retries a request makes attempt ``k + 1`` only if its first ``k``
    attempts failed, so ``E[attempts] = sum_{k=0}^{r} p^k = (1 - p^(r+1)) / (1 - p)``,
    and ``r + 1`` at ``p = 1``. Evaluated as ``expm1((r+1) log p) / expm1(log p)``, which keeps
    full precision as ``p -> 1``.

    Parameters
    ----------
    p_fail : float or array_like
        Probability that one attempt fails, in [0, 1].
    max_retries : int or array_like of int
        Retries allowed after the first attempt, ``r >= 0``.

    Returns
    -------
    float or ndarray
        Expected attempts, between 1 and ``r + 1``.

    Examples
    --------
    >>> expected_attempts(0.5, 3)
    1.875
    >>> expected_attempts(1.0, 3)
    4.0
    >>> expected_attempts([0.0, 0.1], 2)
    array([1.  , 1.11])
    """
    scalar = is_scalar(p_fail, max_retries)
    p = probability("p_fail", p_fail)
    r = as_array("max_retries", max_retries, minimum=0.0, integer=True)
    p, r = broadcast(p_fail=p, max_retries=r)
    return output(_expected_attempts(p, r), scalar)


def layered_amplification(p_fail, max_retries_per_layer):
    """Expected attempts reaching the bottom service through several retrying layers.

    Layer ``i`` (listed top first) retries each call up to ``r_i`` times. A failure starts at
    the bottom (each bottom attempt fails independently with probability ``p``) and travels up:
    a call into the last layer fails only if all its ``r_n + 1`` attempts fail, so the layer
    above sees ``p_n = p^(r_n + 1)``, and so on. By Wald's identity (a layer's number of calls is
    a stopping time of the i.i.d. calls below it) the expected bottom attempts per top request
    are the product ``prod_i E[attempts](p_i, r_i)``; at ``p = 1`` it is ``prod_i (r_i + 1)``:
    three layers of 4 attempts send 64 attempts to a dead backend for every user request.

    Parameters
    ----------
    p_fail : float or array_like
        Failure probability of one attempt at the bottom service, in [0, 1].
    max_retries_per_layer : sequence of int
        Retries of each layer, top first (the order does not change the product at ``p = 1``
        but does for ``p < 1``).

    Examples
    --------
    >>> layered_amplification(1.0, [3, 3, 3])
    64.0
    >>> layered_amplification(0.0, [3, 3, 3])
    1.0
    >>> round(layered_amplification(0.5, [3]), 12) == expected_attempts(0.5, 3)
    True
    """
    given = max_retries_per_layer
    if isinstance(given, (list, tuple)) or (isinstance(given, np.ndarray) and given.ndim == 1):
        layers = list(given)
    else:
        raise ArgumentTypeError(f"max_retries_per_layer must be a sequence of whole numbers, got {describe(given)}")
    if not layers:
        raise ValueError(f"max_retries_per_layer must be a non-empty sequence of whole numbers, got {describe(given)}")
    retries = [whole(f"max_retries_per_layer[{i}]", value, maximum=MAX_RETRIES) for i, value in enumerate(layers)]
    scalar = is_scalar(p_fail)
    p = probability("p_fail", p_fail)
    total = np.ones_like(p)
    failing = p
    for r in reversed(retries):  # bottom layer first: it sees the raw failure probability
        r_array = np.full_like(failing, float(r))
        total = total * _expected_attempts(failing, r_array)
        with np.errstate(under="ignore"):  # a tiny p to a power: 0 is the answer
            failing = failing ** (r + 1)
    return output(total, scalar)
