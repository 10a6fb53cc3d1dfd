"""Where batches of simulations run: in this process, on a local Dask cluster, or on an existing one.

Inference particles, sensitivity designs and counterfactual sweeps are lists of independent batches.
:class:`Cluster` runs them with Dask distributed: by default a local cluster with one worker process per
core, started here and closed with the cluster; with a scheduler address (the ``scheduler`` argument or
the ``RELIABILITY_SCHEDULER`` environment variable, which notebooks read) the same batches go to an
existing cluster. ``workers=0`` runs them in this process, one after the other (doctests, small runs).

Results come back in the order the batches were given, whatever order workers finish them in, and each
batch carries its own seed, so the same work gives the same numbers on any number of workers.

The validation tables (notebooks 02 and 05) use the same cluster for their independent simulations:
:func:`run_batches` runs them here or on the workers, :func:`start_batches` sends them and returns at
once (the caller works out its model meanwhile), :meth:`Cluster.submit` does so for one call, and
:func:`startable` gives a function written that way a ``start`` twin. Their local cluster forks its
workers (``start_method="fork"``: ready in about a second instead of the three a fresh interpreter
takes to import the package).

Examples
--------
>>> with Cluster(workers=0) as cluster:
...     cluster.map(pow, [2, 3], [10, 2])
[1024, 9]
>>> Cluster(workers=0)
Cluster(in this process)
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Any, Callable, Iterable

__all__ = ["Cluster", "START_METHODS", "SCHEDULER_VARIABLE", "check_cluster", "run_batches", "scheduler_address",
           "start_batches", "startable"]

#: How a local cluster starts its worker processes: ``"spawn"`` (a fresh interpreter that imports the
#: package: about 3 s before the first batch, and the memory settings of :data:`MALLOC_THRESHOLDS` apply)
#: or ``"fork"`` (a copy of this process: under 0.1 s, for the short simulations of the validation
#: notebooks; the copies inherit this process's memory settings).
START_METHODS = ("spawn", "fork")

#: The environment variable naming an existing Dask scheduler (``tcp://host:8786``) for notebooks.
SCHEDULER_VARIABLE = "RELIABILITY_SCHEDULER"


def scheduler_address(scheduler: str | None = None) -> str | None:
    """The scheduler to use: ``scheduler`` if given, else ``$RELIABILITY_SCHEDULER``, else None (local)."""
    if scheduler is None:
        scheduler = os.environ.get(SCHEDULER_VARIABLE) or None
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
        raise TypeError(f"scheduler must be an address such as 'tcp://host:8786', got {scheduler!r}")
    return scheduler.strip() if scheduler else None


def _quiet(prefix: str) -> dict[str, int]:
    """Set ``prefix`` and its child loggers to WARNING; return their levels to restore."""
    names = [prefix] + [n for n in logging.root.manager.loggerDict if n.startswith(prefix + ".")]
    levels = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.WARNING)
    return levels


#: glibc's thresholds in the local workers. Dask's default (``MALLOC_TRIM_THRESHOLD_=65536``) hands
#: freed memory back to the system at once; a model that allocates and frees megabyte arrays every
#: step then spends most of its time in page faults (measured: 4 min of system time in a 5 min
#: inference). Larger thresholds keep the freed arrays for the next step, at the price of up to
#: 256 MiB of freed memory a worker may hold on to.
MALLOC_THRESHOLDS = {"MALLOC_TRIM_THRESHOLD_": 256 * 2**20, "MALLOC_MMAP_THRESHOLD_": 64 * 2**20}


#: Dask's background work, slowed for a local cluster on a small machine: the event-loop health tick
#: (every 20 ms by default) and the resource monitor (every 0.5 s) in the scheduler, each nanny and each
#: worker took 7.5 % of a core in this process and 3.3 % in each worker while the cluster sat idle
#: (measured on 2 cores: 2.6 % and 1.0 % with these), CPU the workers' batches then lacked.
QUIET_LOOPS = {"distributed.admin.tick.interval": "1s", "distributed.admin.system-monitor.interval": "5s"}
#: Every task sent to a worker at once, run there in the order sent. With the scheduler's queue (the
#: default saturation, 1.1) only large groups of tasks wait in it; a call of a few tasks skips it and
#: runs before the large ones sent earlier, so a notebook that sends every table's runs at its top
#: waited for nearly all of them before its first table (measured: 4.5 s against 2.5 s alone).
IN_ORDER = {"distributed.scheduler.worker-saturation": "inf"}


def _worker_environment() -> dict:
    import dask

    return {**dask.config.get("distributed.nanny.pre-spawn-environ", default={}), **MALLOC_THRESHOLDS}


def _check_workers(workers) -> int | None:
    if workers is None:
        return None
    if isinstance(workers, bool) or not isinstance(workers, int) and not hasattr(workers, "__index__"):
        raise TypeError(f"workers must be a whole number >= 0, got {workers!r}")
    workers = int(workers)
    if not 0 <= workers <= 256:
        raise ValueError(f"workers must be between 0 (this process) and 256, got {workers!r}")
    return workers


class Cluster:
    """Run batches in this process (``workers=0``), on a local Dask cluster, or at ``scheduler``.

    Parameters
    ----------
    scheduler : str, optional
        Address of an existing Dask scheduler; default ``$RELIABILITY_SCHEDULER``, else a local cluster.
    workers : int, optional
        Worker processes of the local cluster (default: one per core); 0 runs everything here.
    timeout : float
        Seconds to wait for a scheduler to answer before a ``ValueError`` naming its address.
    start_method : {"spawn", "fork"}
        How a local cluster starts its workers (:data:`START_METHODS`); ignored with a scheduler.
    """

    def __init__(self, scheduler: str | None = None, workers: int | None = None, timeout: float = 10.0,
                 start_method: str = "spawn"):
        self.address = scheduler_address(scheduler)
        self._workers = _check_workers(workers)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 600:
            raise ValueError(f"timeout must be a number of seconds in (0, 600], got {timeout!r}")
        if not isinstance(start_method, str) or start_method not in START_METHODS:
            raise ValueError(f"start_method must be one of {list(START_METHODS)}, got {start_method!r}")
        self._start_method = start_method
        self._client = self._local = None
        self._shared: dict[int, Any] = {}
        if self.address is not None:
            self._client = self._connect(self.address, float(timeout))
        elif self._workers != 0:
            self._client = self._start_local(self._workers or os.cpu_count() or 1)

    @staticmethod
    def _connect(address, timeout):
        from distributed import Client

        try:
            return Client(address, timeout=f"{timeout}s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ValueError(f"scheduler {address!r} did not answer within {timeout:g} s "
                             f"(is a Dask scheduler running there?): {exc}") from None

    def _start_local(self, workers):
        import dask
        from distributed import Client, LocalCluster

        # Dask logs every start and close at INFO on stderr, which would fill the reports: quiet it
        # while this cluster lives, and give the logger back its level when it closes.
        self._log_levels = _quiet("distributed")
        # One single-threaded process per worker: the models are numpy-bound and hold the GIL. The
        # scheduler always serves HTTP (health, metrics): on a free port, so several runs never collide.
        with dask.config.set({"distributed.nanny.pre-spawn-environ": _worker_environment(),
                              "distributed.worker.multiprocessing-method": self._start_method,
                              "distributed.worker.profile.enabled": False, **QUIET_LOOPS, **IN_ORDER}):
            self._local = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", silence_logs=40)
        # loggers first created while the cluster started (scheduler, nanny...) are quieted too
        self._log_levels = {**_quiet("distributed"), **self._log_levels}
        return Client(self._local, set_as_default=False)

    @property
    def workers(self) -> int:
        """Worker processes the batches are spread over (0: this process)."""
        if self._client is None:
            return 0
        return len(self._client.scheduler_info().get("workers", {}))

    def share(self, value: Any) -> Any:
        """``value`` sent once to every worker (a scenario, say); pass what this returns to :meth:`map`."""
        if self._client is None:
            return value
        key = id(value)
        if key not in self._shared:
            self._shared[key] = (value, self._client.scatter(value, broadcast=True, hash=False))
        return self._shared[key][1]

    def map(self, function: Callable, *iterables: Iterable) -> list:
        """``[function(*args) for args in zip(*iterables)]``, spread over the workers, in the given order."""
        return start_batches(self, function, *iterables)()

    def submit(self, function: Callable, *args: Any, **kwargs: Any) -> Callable[[], Any]:
        """Start ``function(*args, **kwargs)`` on a worker now; returns a function that waits for its result.

        In this process (``workers=0``) the call runs when its result is asked for.

        Examples
        --------
        >>> result = Cluster(workers=0).submit(pow, 2, 10)
        >>> result()
        1024
        """
        if self._client is None:
            return lambda: function(*args, **kwargs)
        return self._client.submit(function, *args, pure=False, fifo_timeout=_IN_ORDER, **kwargs).result

    def close(self) -> None:
        """Close the client, and the local cluster if this object started it."""
        if self._client is not None:
            self._client.close()
        if self._local is not None:
            self._local.close()
            for name, level in self._log_levels.items():
                logging.getLogger(name).setLevel(level)
        self._client = self._local = None
        self._shared.clear()

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._client is None:
            return "Cluster(in this process)"
        where = self.address or "a local cluster"
        return f"Cluster({where}, {self.workers} workers)"


#: Dask runs the calls sent within ``fifo_timeout`` of each other (100 ms by default) at one
#: priority, interleaving their tasks: a caller that sends several tables' runs at once would then
#: wait for all of them before its first. Each call of its own priority runs them in the order sent.
_IN_ORDER = "0 ms"


def run_batches(cluster: Cluster | None, function: Callable, *iterables: Iterable) -> list:
    """``cluster.map(function, *iterables)``, or the calls here one after the other when ``cluster`` is None.

    For functions whose batches are independent and each seeded by its own identity: the results
    are the same, in the same order, wherever they run.

    Examples
    --------
    >>> run_batches(None, pow, [2, 3], [10, 2])
    [1024, 9]
    """
    return start_batches(cluster, function, *iterables)()


def start_batches(cluster: Cluster | None, function: Callable, *iterables: Iterable) -> Callable[[], list]:
    """Send the batches of :func:`run_batches` to ``cluster`` now; returns a function that waits for them.

    The caller does its own work while the workers run (a model beside its simulations), then
    calls what this returns for the results, in order. Without a cluster, or with one that runs in
    this process, the batches run when their results are asked for.

    Examples
    --------
    >>> results = start_batches(None, pow, [2, 3], [10, 2])
    >>> results()
    [1024, 9]
    """
    client = check_cluster(cluster)._client if cluster is not None else None
    if client is None:
        return lambda: [function(*args) for args in zip(*iterables)]
    futures = client.map(function, *[list(items) for items in iterables], pure=False, fifo_timeout=_IN_ORDER)
    return lambda: client.gather(futures)


def startable(steps: Callable) -> Callable:
    """Give a function that sends batches to a cluster a ``start`` twin that returns before they finish.

    ``steps`` is written as a generator: it checks its arguments, sends its batches
    (:func:`start_batches`), yields once, then collects them and returns its result. The function
    returned runs it to the end; its ``start`` attribute runs it to the ``yield`` and returns a
    function that finishes it, so that a caller can work (draw a model, say) while the batches run.
    Arguments are checked at ``start``.

    Examples
    --------
    >>> @startable
    ... def squares(values, cluster=None):
    ...     pending = start_batches(cluster, pow, values, [2] * len(values))
    ...     yield
    ...     return sum(pending())
    >>> squares([1, 2, 3])
    14
    >>> finish = squares.start([1, 2, 3])
    >>> finish()
    14
    """
    @functools.wraps(steps)
    def run(*args, **kwargs):
        return start(*args, **kwargs)()

    def start(*args, **kwargs) -> Callable[[], Any]:
        generator = steps(*args, **kwargs)
        next(generator)  # up to the batches sent
        done: list = []

        def finish():
            if not done:
                try:
                    next(generator)
                except StopIteration as end:
                    done.append(end.value)
                else:
                    raise RuntimeError(f"{steps.__name__} must yield once, after sending its batches")
            return done[0]

        return finish

    start.__doc__ = f"Start :func:`{steps.__name__}` and return a function that waits for its result."
    run.start = start
    return run


def check_cluster(cluster: Cluster | None) -> Cluster | None:
    """``cluster`` if it is a :class:`Cluster` or None; a ``TypeError`` naming it otherwise."""
    if cluster is not None and not isinstance(cluster, Cluster):
        raise TypeError(f"cluster must be a reliability.Cluster or None, got {type(cluster).__name__}")
    return cluster
