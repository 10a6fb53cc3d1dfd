"""M/M/c-family kernels: one Python step per customer, numpy across replications.

By the Kiefer-Wolfowitz recursion a FCFS customer goes to the server that frees first; its
start is ``max(arrival, earliest free time)`` and that server's free time becomes ``start +
service``. The recursion is the same for every replication, so ``R`` replications advance
together on an ``R x c`` array ``free`` of server free times (``rows`` is ``arange(R)``).
Each kernel fills its output arrays (``m x R``, one row per customer) in place. For a single
server :func:`lindley_waits` vectorises over customers too.

Examples
--------
>>> arrive = np.array([[0.0], [0.5], [0.6]])
>>> service = np.array([[1.0], [1.0], [1.0]])
>>> start = np.empty((3, 1))
>>> kernel_fcfs(np.zeros((1, 2)), np.arange(1), arrive, service, start)
>>> start.ravel().tolist()   # two servers: the third customer waits for the first to leave
[0.0, 0.5, 1.0]
"""

from __future__ import annotations

import numpy as np

__all__ = ["kernel_fcfs", "kernel_loss", "kernel_abandon", "kernel_finite", "lindley_waits"]


def kernel_fcfs(free, rows, arrive, service, start):
    """FCFS infinite queue: Kiefer-Wolfowitz on the R x c server free times; fills ``start``."""
    maximum = np.maximum
    for i in range(arrive.shape[0]):
        idx = free.argmin(1)
        st = maximum(arrive[i], free[rows, idx], out=start[i])
        free[rows, idx] = st + service[i]


def kernel_loss(free, rows, arrive, service, admitted):
    """Loss system: an arrival is served only if some server is already free; fills ``admitted``."""
    where = np.where
    for i in range(arrive.shape[0]):
        idx = free.argmin(1)
        f = free[rows, idx]
        a = arrive[i]
        ok = f <= a
        admitted[i] = ok
        free[rows, idx] = where(ok, a + service[i], f)


def kernel_abandon(free, rows, arrive, service, patience, start, served):
    """FCFS with impatience: a customer whose wait would exceed its patience leaves unserved.

    The wait a customer would have is fixed by the customers ahead of it that stay, so it is
    known on arrival (FCFS), and a customer who leaves never occupies a server.
    """
    maximum, where = np.maximum, np.where
    for i in range(arrive.shape[0]):
        idx = free.argmin(1)
        f = free[rows, idx]
        a = arrive[i]
        st = maximum(a, f, out=start[i])
        ok = (st - a) <= patience[i]
        served[i] = ok
        free[rows, idx] = where(ok, st + service[i], f)


def kernel_finite(free, slots, rows, arrive, service, start, admitted):
    """FCFS with at most K in the system.

    ``slots`` holds the departure times of the last customer to hold each of the K places in
    the system: an arrival finds room exactly when some slot's departure is already past.
    """
    maximum, where = np.maximum, np.where
    for i in range(arrive.shape[0]):
        a = arrive[i]
        j = slots.argmin(1)
        g = slots[rows, j]
        ok = g <= a
        admitted[i] = ok
        idx = free.argmin(1)
        f = free[rows, idx]
        st = maximum(a, f, out=start[i])
        d = st + service[i]
        free[rows, idx] = where(ok, d, f)
        slots[rows, j] = where(ok, d, g)


def lindley_waits(inter, service, state):
    """Waiting times of a single FCFS server for a block of customers, vectorised over them.

    ``W_k = max(0, W_{k-1} + S_{k-1} - T_k)`` unrolls to ``W_k = X_k - min(-W_0, min_{j<=k} X_j)``
    with ``X`` the cumulated ``S_{k-1} - T_k`` (``X_0 = 0``). ``state`` carries the last
    customer's wait and service between blocks (None before the first block). Returns the
    waits and the state for the next block.

    Examples
    --------
    >>> waits, state = lindley_waits(np.array([[0.0], [0.5]]), np.array([[1.0], [1.0]]), None)
    >>> waits.ravel().tolist()
    [0.0, 0.5]
    """
    m = inter.shape[0]
    if state is None:
        w0 = np.zeros(inter.shape[1])
    else:
        w_last, s_last = state
        w0 = np.maximum(w_last + s_last - inter[0], 0.0)
    x = np.empty(inter.shape)
    x[0] = 0.0
    if m > 1:
        np.cumsum(service[:-1] - inter[1:], axis=0, out=x[1:])
    y = x.copy()
    y[0] = -w0
    wait = x - np.minimum.accumulate(y, axis=0)
    return wait, (wait[-1].copy(), service[-1].copy())
