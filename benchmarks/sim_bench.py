"""The M/M/c simulator against ciw and simpy: customers per second, with agreeing estimates.

All three simulate the same FCFS M/M/c queue (``servers``, ``arrival_rate``, ``service_rate``)
from empty, drop the first 10 % of each replication's customers as warm-up and estimate
P(wait) (share of customers whose time in queue is > 0) and the mean time in queue, each as
a mean over independent replications with a 95 % Student-t interval. The estimates must
agree -- every peer's interval must overlap reliability's, for both quantities -- before any
speed is reported; otherwise :class:`~benchmarks.common.AgreementError` is raised.

Speed is customers simulated (warm-up included) per second of wall time: for ciw and simpy
the median over their replications (one run each), for reliability, whose replications
advance together in numpy arrays, the median of three whole runs spread before, between and after
the peers' runs.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import stats

import reliability
from reliability.simulate import simulate_mmc
from benchmarks.common import AgreementError, Config, Timing, optional_import

ciw = optional_import("ciw")
simpy = optional_import("simpy")

LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float

    def overlaps(self, other: "Interval") -> bool:
        return self.low <= other.high and other.low <= self.high

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high

    def __str__(self) -> str:
        return f"{self.value:.4f} [{self.low:.4f}, {self.high:.4f}]"


def t_interval(samples) -> Interval:
    samples = np.asarray(samples, dtype=float)
    mean = float(samples.mean())
    half = float(stats.t.ppf(0.5 + LEVEL / 2, samples.size - 1)) * float(samples.std(ddof=1)) / math.sqrt(samples.size)
    return Interval(mean, mean - half, mean + half)


@dataclass
class SimulatorRow:
    name: str
    version: str
    setup: str  # customers x replications
    customers: int  # simulated per timed unit
    timing: Timing | None
    p_wait: Interval | None
    mean_wait: Interval | None
    note: str = ""


def _ciw_replication(servers, arrival_rate, service_rate, customers, warmup, seed):
    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(rate=arrival_rate)],
        service_distributions=[ciw.dists.Exponential(rate=service_rate)],
        number_of_servers=[servers],
    )
    ciw.seed(seed)
    simulation = ciw.Simulation(network)
    # Stop once `customers` have left; records are per finished customer, put in arrival order.
    simulation.simulate_until_max_customers(customers, method="Finish")
    records = sorted(simulation.get_all_records(), key=lambda r: r.arrival_date)
    waits = np.array([r.waiting_time for r in records[warmup:]])
    return float((waits > 0).mean()), float(waits.mean())


def _simpy_replication(servers, arrival_rate, service_rate, customers, warmup, seed):
    rng = np.random.default_rng(seed)
    inter = rng.exponential(1.0 / arrival_rate, customers)
    service = rng.exponential(1.0 / service_rate, customers)
    waits = np.empty(customers)
    env = simpy.Environment()
    pool = simpy.Resource(env, capacity=servers)  # FIFO queue of requests

    def customer(i):
        arrival = env.now
        with pool.request() as request:
            yield request
            waits[i] = env.now - arrival
            yield env.timeout(service[i])

    def source():
        for i in range(customers):
            yield env.timeout(inter[i])
            env.process(customer(i))

    env.process(source())
    env.run()
    w = waits[warmup:]
    return float((w > 0).mean()), float(w.mean())


def _peer(name, module, replication, config: Config, log) -> SimulatorRow:
    from benchmarks.common import version_of

    n, r = config.peer_sim_customers, config.peer_sim_replications
    setup = f"{r} x {n:,} customers"
    if module is None:
        return SimulatorRow(name, "not installed", setup, n, None, None, None, "not installed")
    log(f"simulator: {name}, {setup}")
    warmup = n // 10
    p_wait, mean_wait, seconds = [], [], []
    for i in range(r):
        start = time.perf_counter()
        pw, mw = replication(config.sim_servers, config.sim_arrival_rate, config.sim_service_rate, n, warmup,
                             config.seed + i)
        seconds.append(time.perf_counter() - start)
        p_wait.append(pw)
        mean_wait.append(mw)
    timing = Timing(seconds=statistics.median(seconds), items=n, repetitions=r)
    return SimulatorRow(name, version_of(name), setup, n, timing, t_interval(p_wait), t_interval(mean_wait))


def bench_simulators(config: Config, *, simulate: Callable = simulate_mmc,
                     log: Callable[[str], None] = print) -> tuple[list[SimulatorRow], dict[str, float]]:
    """reliability.simulate_mmc, ciw and simpy on one M/M/c model; raises AgreementError if they disagree."""
    c, lam, mu = config.sim_servers, config.sim_arrival_rate, config.sim_service_rate
    n, r = config.sim_customers, config.sim_replications
    log(f"simulator: reliability, {r} x {n:,} customers")
    run = lambda: simulate(c, lam, mu, customers=n, replications=r, warmup=n // 10, seed=config.seed)  # noqa: E731
    seconds = []

    def timed_run():
        start = time.perf_counter()
        outcome = run()
        seconds.append(time.perf_counter() - start)
        return outcome

    # reliability's runs are spread before, between and after the peers' so all see the same load.
    result = timed_run()
    ciw_row = _peer("ciw", ciw, _ciw_replication, config, log)
    timed_run()
    simpy_row = _peer("simpy", simpy, _simpy_replication, config, log)
    timed_run()
    timing = Timing(seconds=statistics.median(seconds), items=n * r, repetitions=len(seconds))
    ours = SimulatorRow(
        "reliability.simulate_mmc", reliability.__version__, f"{r} x {n:,} customers", n * r, timing,
        Interval(result.p_wait.value, result.p_wait.low, result.p_wait.high),
        Interval(result.mean_wait.value, result.mean_wait.low, result.mean_wait.high),
    )
    rows = [ours, ciw_row, simpy_row]
    for row in rows[1:]:
        if row.timing is None:
            continue
        for quantity in ("p_wait", "mean_wait"):
            mine, theirs = getattr(ours, quantity), getattr(row, quantity)
            if not mine.overlaps(theirs):
                raise AgreementError(
                    f"M/M/{c} with arrival_rate={lam:g}, service_rate={mu:g}: {quantity} of {ours.name} {mine} "
                    f"and of {row.name} {theirs} do not overlap"
                )
    # The exact values, for the reader (the simulator itself never sees them).
    exact = {
        "p_wait": reliability.erlang_c(c, lam / mu),
        "mean_wait": reliability.mean_wait(c, lam / mu, mu),
    }
    return rows, exact


# ----------------------------------------------------------------------------------------
# The retrying queue against ciw
# ----------------------------------------------------------------------------------------
#: The retrying-queue model timed against ciw: 20 servers, mu = 1, load 0.75, timeout 3 s.
RETRY_MODEL = dict(servers=20, arrival_rate=15.0, service_rate=1.0, timeout=3.0)


def _ciw_late_share(customers: int, seed: int) -> float:
    """ciw on the retrying queue without retries: the share of customers whose response exceeds the timeout.

    Without retries the retrying queue is an M/M/c queue whose clients stop waiting after the
    timeout while their attempt is still served, so its failure fraction is P(W + S > T): the
    same model, which ciw simulates as a plain M/M/c.
    """
    m = RETRY_MODEL
    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(rate=m["arrival_rate"])],
        service_distributions=[ciw.dists.Exponential(rate=m["service_rate"])],
        number_of_servers=[m["servers"]],
    )
    ciw.seed(seed)
    simulation = ciw.Simulation(network)
    simulation.simulate_until_max_customers(customers, method="Finish")
    records = sorted(simulation.get_all_records(), key=lambda r: r.arrival_date)[customers // 10:]
    return float(np.mean([r.waiting_time + r.service_time > m["timeout"] for r in records]))


def _ours_late_share(horizon: float, seed: int, policy=None) -> tuple[float, int]:
    """reliability's retrying queue: (failure fraction after a 10 % warm-up, attempts simulated)."""
    m = RETRY_MODEL
    run = reliability.simulate_retrying_queue(m["servers"], m["service_rate"], m["arrival_rate"], timeout=m["timeout"],
                                              policy=policy, horizon=horizon, interval=horizon / 10, seed=seed)
    return run.window(horizon / 10).failure_fraction, int(run.series.attempts.sum())


def bench_retrying(customers: int = 20_000, replications: int = 10, *, seed: int = 20250109,
                   log: Callable[[str], None] = print) -> list[SimulatorRow]:
    """Customers per second of the retrying-queue simulators and of ciw on the same (retry-free) model.

    Raises :class:`AgreementError` when reliability's failure fraction and ciw's do not overlap.
    The rows with retries (3 fixed retries, and the escape-time loop) have no peer: ciw has no
    clients that give up on an attempt the server still serves and then retry it.
    """
    m = RETRY_MODEL
    horizon = customers / m["arrival_rate"]
    rows = []
    if ciw is not None:
        log(f"retrying queue: ciw, {replications} x {customers:,} customers")
        shares, seconds = [], []
        for i in range(replications):
            start = time.perf_counter()
            shares.append(_ciw_late_share(customers, seed + i))
            seconds.append(time.perf_counter() - start)
        from benchmarks.common import version_of
        rows.append(SimulatorRow("ciw (M/M/c, P(W + S > T))", version_of("ciw"), f"{replications} x {customers:,}",
                                 customers, Timing(statistics.median(seconds), customers, replications),
                                 t_interval(shares), None))
    for name, policy in (("reliability.simulate_retrying_queue, no retries", None),
                         ("reliability.simulate_retrying_queue, 3 retries", reliability.FixedRetries(3))):
        log(f"retrying queue: {name}")
        shares, seconds, attempts = [], [], []
        for i in range(replications):
            start = time.perf_counter()
            share, made = _ours_late_share(horizon, seed + i, policy)
            seconds.append(time.perf_counter() - start)
            shares.append(share)
            attempts.append(made)
        made = int(statistics.median(attempts))
        rows.append(SimulatorRow(name, reliability.__version__, f"{replications} x {made:,} attempts", made,
                                 Timing(statistics.median(seconds), made, replications), t_interval(shares), None))
    start = time.perf_counter()
    escape = reliability.simulate_escape_times(m["servers"], m["service_rate"], 16.0, timeout=m["timeout"], level=140,
                                               policy=reliability.FixedRetries(3), replications=replications,
                                               horizon=horizon, seed=seed)
    elapsed = time.perf_counter() - start
    rows.append(SimulatorRow("reliability.simulate_escape_times, 3 retries, load 0.8", reliability.__version__,
                             f"{replications} runs to tipping, {escape.attempts:,} attempts", escape.attempts,
                             Timing(elapsed, escape.attempts, 1), None, None))
    if ciw is not None:
        theirs, ours = rows[0].p_wait, rows[1].p_wait
        if not theirs.overlaps(ours):
            raise AgreementError(f"retrying queue without retries: P(W + S > T) of ciw {theirs} and of "
                                 f"reliability {ours} do not overlap")
    return rows


if __name__ == "__main__":  # python -m benchmarks.sim_bench: the retrying-queue table
    table = bench_retrying(log=lambda line: None)
    reference = next((r for r in table if r.name.startswith("ciw")), None)
    for row in table:
        rate = row.timing.per_second
        ratio = f"{rate / reference.timing.per_second:.1f}x ciw" if reference is not None else ""
        share = f"failure fraction {row.p_wait}" if row.p_wait is not None else ""
        print(f"{row.name:58s} {row.setup:44s} {rate:12,.0f}/s  {ratio:10s} {share}")
