"""Hostile-input sweep of the public API: every argument of every call replaced by each hostile value.

A script, not a test module (pytest does not collect it: its name does not start with ``test_``).
Each call runs in a forked child (after one import) with warnings raised as errors and a time
limit. Outcome classes: ok, named-error (ValueError/TypeError whose message names the argument),
unnamed-error, other-exception, warning, nan (a NaN in a numeric result), hang. A call that
returned ok although a bool, string, None, complex, list of strings or dict stood where a number
belongs (and the argument does not take that value by design) is also counted as
"accepted silently".

Names are looked up in the new layout first and then where the original flat modules kept them,
so the same script measures the code before and after the restructure:

    python tests/hostile_sweep.py --group mine
    PYTHONPATH=/tmp/head_x python tests/hostile_sweep.py --group mine     # the original code
    python tests/hostile_sweep.py --only erlang_b,mmck --limit 20 --json out.json
"""
from __future__ import annotations

import argparse
import collections
import importlib
import json
import math
import os
import pickle
import select
import signal
import sys
import warnings

import numpy as np

import reliability as r

HOSTILE = {
    "nan": float("nan"), "inf": float("inf"), "-inf": float("-inf"), "neg": -1.0, "zero": 0.0,
    "bool": True, "str": "abc", "numstr": "5", "None": None, "complex": 3 + 0j,
    "complex_arr": np.array([10 + 3j]), "empty": np.array([]), "ragged": [[1.0, 2.0], [3.0]],
    "zero_d": np.array(5.0), "big": 1e308, "tiny": 1e-308, "int70": 2 ** 70, "int400": 10 ** 400,
    "nan_in_arr": np.array([1.0, float("nan"), 2.0]), "str_list": ["5", "6"], "dict": {"a": 1},
    "frac": 2.7,
    # added to the original list: a bool array, a None inside a list, and (built per call in
    # `attacks`) a shape that does not broadcast with another array argument
    "bool_arr": np.array([True, False]), "none_in_list": [1.0, None],
}
#: Values that are not numbers: a call that returns ok with one of them accepted it silently.
NOT_NUMBERS = {"bool", "str", "numstr", "None", "complex", "complex_arr", "str_list", "dict", "bool_arr",
               "none_in_list"}


def _find(*paths):
    """The first of ``module.attribute`` paths that exists (new layout first, original second)."""
    home = os.path.dirname(r.__file__)
    for path in paths:
        module, _, attribute = path.rpartition(".")
        try:
            target = importlib.import_module(f"reliability.{module}" if module else "reliability")
        except ImportError:
            continue
        # an editable install may map a module missing here to another checkout: not this code
        if os.path.dirname(os.path.abspath(target.__file__)).startswith(home) and hasattr(target, attribute):
            return getattr(target, attribute)
    return None


def _valid_trace():
    import pandas as pd
    return pd.DataFrame({"time": [0.0, 10.0, 20.0, 30.0], "failure_fraction": [0.9, 1.0, 0.2, 0.1]})


# name -> (callable, kwargs of a valid call, {argument: hostile names it takes by design}).
def queue_cases():
    return {
        "erlang_b": (r.erlang_b, dict(servers=10, load=5.0), {}),
        "erlang_c": (r.erlang_c, dict(servers=10, load=5.0), {}),
        "erlang_a": (r.erlang_a, dict(servers=14, arrival_rate=10.0, service_rate=1.0, abandonment_rate=0.2), {}),
        "engset": (r.engset, dict(servers=10, sources=50, source_load=0.1), {}),
        "mmck": (r.mmck, dict(servers=5, capacity=10, load=4.0), {}),
        "wait_sf": (r.wait_sf, dict(servers=11, load=10.0, wait_time=0.1, service_rate=1.0), {}),
        "response_time_sf": (r.response_time_sf, dict(servers=11, load=10.0, time=0.1, service_rate=1.0), {}),
        "mean_wait": (r.mean_wait, dict(servers=11, load=10.0, service_rate=1.0), {}),
        "wait_quantile": (r.wait_quantile, dict(servers=11, load=10.0, quantile=0.9, service_rate=1.0), {}),
        "servers_for_blocking": (r.servers_for_blocking, dict(load=10.0, target=0.01), {}),
        "servers_for_wait": (r.servers_for_wait, dict(load=10.0, target=0.2, wait_time=0.0, service_rate=1.0), {}),
        "max_load_for_blocking": (r.max_load_for_blocking, dict(servers=10, target=0.01), {}),
        "max_load_for_wait": (r.max_load_for_wait, dict(servers=15, target=0.1, wait_time=0.0, service_rate=1.0), {}),
        "halfin_whitt_p_wait": (r.halfin_whitt_p_wait, dict(beta=1.0), {}),
        "halfin_whitt_beta": (r.halfin_whitt_beta, dict(target=0.2), {}),
        "square_root_staffing": (r.square_root_staffing, dict(load=10.0, target=0.2), {}),
    }


def simulate_cases():
    schedule = r.Schedule((0.0, 10.0), (2.0, 4.0))
    estimate = _find("simulate.estimate")
    policy = r.FixedRetries(2)
    family = dict(customers=200, replications=3, seed=1)
    optional = {"warmup": {"None"}, "seed": {"None"}}
    run = _find("simulate.simulate_retrying_queue")(5, 1.0, 2.0, timeout=2.0, horizon=20.0, seed=1)
    short = r.simulate_mmc(2, 1.0, 1.0, customers=200, replications=3, wait_times=[0.5], seed=1)
    retrying = dict(servers=5, service_rate=1.0, arrival_rate=2.0, timeout=2.0, policy=policy, horizon=50.0,
                    interval=1.0, queue_limit=None, initial_backlog=0, setup_time=0.0, new_connection_fraction=0.0,
                    retry_new_connection=True, clients=1, max_arrival_rate=None, seed=1)
    retrying_allows = {"queue_limit": {"None"}, "max_arrival_rate": {"None"}, "seed": {"None"},
                       "policy": {"None"}, "retry_new_connection": {"bool"}}
    pool = {k: v for k, v in retrying.items() if k not in ("servers", "queue_limit")}
    return {
        "simulate_mmc": (r.simulate_mmc, dict(servers=2, arrival_rate=1.0, service_rate=1.0, **family), optional),
        "simulate_mmcc": (r.simulate_mmcc, dict(servers=2, arrival_rate=1.0, service_rate=1.0, **family), optional),
        "simulate_mmc_abandonment": (r.simulate_mmc_abandonment,
                                     dict(servers=2, arrival_rate=1.0, service_rate=1.0, abandonment_rate=0.5,
                                          **family), optional),
        "simulate_mmck": (r.simulate_mmck, dict(servers=2, capacity=4, arrival_rate=1.0, service_rate=1.0,
                                                wait_times=[0.5], level=0.9, **family), optional),
        "simulate_engset": (r.simulate_engset, dict(servers=2, sources=5, source_load=0.2, transitions=500,
                                                    replications=3, seed=1), optional),
        "simulate_retrying_queue": (r.simulate_retrying_queue, retrying, retrying_allows),
        "simulate_connection_pool": (r.simulate_connection_pool, dict(connections=5, **pool), retrying_allows),
        "Schedule": (r.Schedule, dict(times=(0.0, 10.0), values=(2.0, 4.0)), {}),
        "Schedule.constant": (r.Schedule.constant, dict(value=1.0), {}),
        "Schedule.surge": (r.Schedule.surge, dict(base=2.0, multiple=3.0, start=10.0, duration=5.0), {}),
        "Schedule.call": (lambda t: schedule(t), dict(t=5.0), {}),
        "Schedule.integral": (lambda start, end: schedule.integral(start, end), dict(start=0.0, end=20.0), {}),
        "Schedule.maximum": (lambda start, end: schedule.maximum(start, end), dict(start=0.0, end=20.0), {}),
        "estimate": (estimate, dict(samples=[0.3, 0.32, 0.34], level=0.95), {}) if estimate else None,
        "QueueSimulation.wait_sf_at": (lambda wait_time: short.wait_sf_at(wait_time), dict(wait_time=0.5), {}),
        "RetrySimulation.window": (lambda start, end: run.window(start, end), dict(start=0.0, end=10.0),
                                   {"end": {"None"}}),
    }


def series_cases():
    values = np.tile([1.0] * 3 + [0.2] * 9, 10)
    wave = 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * np.arange(360.0) / 30.0))
    recovery = _find("series.recovery_time", "dynamics.recovery_time")
    trace = _find("series.trace_recovery_time", "validation.recovery_time")
    states = _find("series.alternation_states")
    alternation = _find("series.alternation")
    runs = _find("series.alternation_runs", "dynamics.alternation_runs")
    period = _find("series.dominant_period", "dynamics.dominant_period")
    cases = {
        "recovery_time": (recovery, dict(times=[0, 60, 120, 180], failure_fraction=[0.5, 0.0, 0.3, 0.0],
                                         threshold=0.01, after=0.0), {}),
        "trace_recovery_time": (lambda after, threshold: trace(_valid_trace(), after, threshold),
                                dict(after=0.0, threshold=0.5), {}) if trace else None,
        "trace_recovery_time.trace": (lambda trace_: trace(trace_), dict(trace_=_valid_trace()), {})
        if trace else None,
        "alternation_states": (states, dict(values=values, down_threshold=0.9, up_threshold=0.6), {}),
        "alternation_runs": (runs, dict(values=values, down_threshold=0.9, up_threshold=0.6), {}),
        "alternation": (alternation, dict(values=values, time_step=10.0, down_threshold=0.9, up_threshold=0.6), {}),
        "dominant_period": (period, dict(values=wave, time_step=1.0, min_period=4.0, max_period=100.0),
                            {"min_period": {"None"}, "max_period": {"None"}}),
    }
    return {k: v for k, v in cases.items() if v is not None and v[0] is not None}


def validation_cases():
    table = _find("validation.validation_table")
    meta = _find("validation.simulated_metastability")
    size = _find("validation.ValidationSize")
    size_kwargs = dict(customers=400, replications=3, monte_carlo_requests=1000, monte_carlo_replications=3,
                       retry_replications=2, retry_horizon=100.0, retry_short_horizon=50.0, retry_warmup=10.0)
    return {
        "validation_table": (table, dict(size="smoke", seed=1, level=0.95, mpmath_rtol=1e-10,
                                         models=["expected_attempts"], analytic_factor=None),
                             {"analytic_factor": {"None"}, "models": {"None"}}),
        "simulated_metastability": (meta, dict(servers=10, service_rate=1.0, timeout=3.0, load_shares=[0.2],
                                               max_retries=[1], horizon=30.0, threshold=0.5, seed=1), {}),
        "ValidationSize": (size, size_kwargs, {}),
        # its errors name the notebook parameter, here "x", whichever argument is wrong
        "check_parameter": (r.check_parameter, dict(name="x", value=3.0, minimum=0.0, maximum=10.0),
                            {"minimum": {"None"}, "maximum": {"None"}, "name": {"str", "numstr"}}),
    }


GROUPS = {"queues": queue_cases, "simulate": simulate_cases, "series": series_cases,
          "validation": validation_cases}


def other_cases():
    """Calls owned by the second pass (retry, headroom): in the sweep, not in ``--group mine``."""
    b = r.Backoff(0.1, 20.0, "full")
    q = r.RetryingQueue(10, 1.0, 2.0, 3)
    return {
        "expected_attempts": (r.expected_attempts, dict(p_fail=0.5, max_retries=3), {}),
        "layered_amplification": (r.layered_amplification, dict(p_fail=0.5, max_retries_per_layer=[1, 2]), {}),
        "FixedRetries": (r.FixedRetries, dict(max_retries=3), {}),
        "RetryBudget": (r.RetryBudget, dict(ratio=0.1), {}),
        "Backoff.delay": (lambda retry_index, previous_delay, rng: b.delay(retry_index, previous_delay, rng),
                          dict(retry_index=3, previous_delay=1.0, rng=np.random.default_rng(0)), {}),
        "RetryingQueue.equilibria": (lambda arrival_rate: q.equilibria(arrival_rate), dict(arrival_rate=5.0), {}),
        "split_failure": (r.split_failure, dict(old_servers=60, new_servers=60, offered_load=100.0, new_share=0.5,
                                                surge=1.5), {}),
    }


def cases(groups):
    out = {}
    for group in groups:
        out.update({k: v for k, v in (other_cases() if group == "other" else GROUPS[group]()).items() if v})
    return out


def attacks(base):
    """(arguments a message may name, hostile name, kwargs) for every argument and hostile value, and
    unbroadcastable pairs (whose error may name either argument: a scalar-only call names the first)."""
    for arg in base:
        for name, value in HOSTILE.items():
            yield (arg,), name, {**base, arg: value}
        # a shape (2,) against another numeric argument made (3,): they cannot broadcast
        others = [k for k in base if k != arg and isinstance(base[k], (int, float)) and not isinstance(base[k], bool)]
        if others and isinstance(base[arg], (int, float)) and not isinstance(base[arg], bool):
            yield (arg, others[0]), "unbroadcastable", {**base, arg: np.full(2, base[arg]),
                                                         others[0]: np.full(3, base[others[0]])}


#: Names an error may give instead of the argument's own: check_parameter names the parameter it checks.
ALIASES = {r.check_parameter: ("x",)}


def numeric_nan(value, depth=0):
    if depth > 3:
        return False
    if isinstance(value, (float, np.floating)):
        return math.isnan(value)
    if isinstance(value, np.ndarray) and value.dtype.kind in "fc":
        return bool(np.isnan(value).any())
    if isinstance(value, (tuple, list)):
        return any(numeric_nan(v, depth + 1) for v in value[:50])
    if hasattr(value, "__dataclass_fields__"):
        return any(numeric_nan(getattr(value, f), depth + 1) for f in value.__dataclass_fields__)
    return False


def run_one(fn, kwargs, args):
    warnings.simplefilter("error")
    np.seterr(all="warn")
    try:
        result = fn(**kwargs)
    except Warning as w:
        return ("warning", f"{type(w).__name__}: {w}"[:200])
    except (ValueError, TypeError) as e:
        msg = str(e)
        named = any(arg.rstrip("_") in msg for arg in args + ALIASES.get(fn, ()))
        return ("named-error" if named else "unnamed-error", f"{type(e).__name__}: {msg}"[:200])
    except BaseException as e:  # noqa: BLE001
        return ("other-exception", f"{type(e).__name__}: {e}"[:200])
    if numeric_nan(result):
        return ("nan", repr(result)[:200])
    return ("ok", repr(result)[:120])


def in_child(fn, kwargs, args, limit):
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        try:
            out = run_one(fn, kwargs, args)
        except BaseException as e:  # noqa: BLE001
            out = ("other-exception", repr(e)[:200])
        os.write(wfd, pickle.dumps(out))
        os._exit(0)
    os.close(wfd)
    ready, _, _ = select.select([rfd], [], [], limit)
    if not ready:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(rfd)
        return ("hang", f"> {limit} s")
    data = b""
    while True:
        chunk = os.read(rfd, 65536)
        if not chunk:
            break
        data += chunk
    os.close(rfd)
    os.waitpid(pid, 0)
    try:
        return pickle.loads(data)
    except Exception:  # noqa: BLE001
        return ("other-exception", "child died")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=float, default=10.0)
    ap.add_argument("--json")
    ap.add_argument("--only", help="comma-separated call names (exact, or a prefix ending in '*')")
    ap.add_argument("--group", default="mine",
                    help="comma-separated of queues, simulate, series, validation, other; 'mine' = the first four")
    ap.add_argument("--by-call", action="store_true", help="print the counts of every call")
    args = ap.parse_args()
    groups = list(GROUPS) if args.group == "mine" else args.group.split(",")
    wanted = args.only.split(",") if args.only else None
    results = []
    for name, (fn, base, allows) in cases(groups).items():
        if wanted and not any(name == w or (w.endswith("*") and name.startswith(w[:-1])) for w in wanted):
            continue
        for names, hname, kwargs in attacks(base):
            outcome, detail = in_child(fn, kwargs, names, args.limit)
            silent = outcome == "ok" and hname in NOT_NUMBERS and hname not in allows.get(names[0], ())
            results.append(dict(call=name, arg=names[0], value=hname, outcome=outcome, detail=detail, silent=silent))
    report(results, args.by_call)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)


def report(results, by_call):
    counts = collections.Counter(x["outcome"] for x in results)
    silent = sum(x["silent"] for x in results)
    print(f"{len(results)} calls:", dict(sorted(counts.items())), f"accepted silently: {silent}")
    if by_call:
        for call in dict.fromkeys(x["call"] for x in results):
            mine = [x for x in results if x["call"] == call]
            c = collections.Counter(x["outcome"] for x in mine)
            print(f"  {call:28s}", dict(sorted(c.items())), f"silent={sum(x['silent'] for x in mine)}")
    bad = [x for x in results if x["outcome"] in ("other-exception", "warning", "nan", "hang", "unnamed-error")
           or x["silent"]]
    for x in bad[:400]:
        label = "silent" if x["silent"] else x["outcome"]
        print(f"  {label:16s} {x['call']}({x['arg']}={x['value']}): {x['detail'][:110]}")


if __name__ == "__main__":
    sys.exit(main())
