"""ABC-SMC with model choice, vectorised: whole batches of particles are proposed, simulated and weighted.

The algorithm is that of Toni et al. (2009, J. R. Soc. Interface 6:187) with the adaptive kernels of
Beaumont et al. (2009, Biometrika 96:983) and the conventions of pyabc's ``ABCSMC``: a model index
perturbed by a kernel that keeps it with probability 0.7 (pyabc's ``ModelPerturbationKernel``), the
parameters of the chosen model drawn from that model's population and moved by twice its weighted
(co)variance (:mod:`reliability.incident.kernels`: half the proposals component-wise, truncated to the
prior box, half multivariate in the box's logit), weights ``prior / proposal`` normalised within each
model, model probabilities the share of the unnormalised weights, and each threshold the weighted median
of the previous generation's distances (pyabc's ``MedianEpsilon``).

The prior is uniform on a box in a latent space (the caller maps it: logarithms for log-scale priors,
rounding for whole numbers, floor for choices), so the prior density is one constant. No proposal
leaves the box, and every kernel density is exact (truncation and logit included): with twenty
unknowns, rejecting proposals outside the box instead would reject nearly all of them.

Why not pyabc itself: pyabc evaluates one particle per model call, and one call of an incident model
for one particle costs about 190 times a particle's share of a batch of 512 (numpy's fixed cost per time
step dominates), so the 16,384 simulations of the first three generations of a default inference would
take about 3 h through single calls (``benchmarks/inference_bench.py`` measures both, runs pyabc's
``ABCSMC`` on the same model, and compares the two samplers' posteriors on problems with exact answers).

Every batch of proposals has an identity (generation, batch) from which its random numbers are drawn,
and batches are accepted in identity order, so the result does not depend on how many workers ran
them or in which order they finished.

Examples
--------
A normal mean with a known answer: prior uniform on (-5, 5), data mean 1.0 of 10 points with sd 1, so
the posterior is close to N(1.0, 1/10); the distance is ``|simulated mean - 1.0|``.

>>> import numpy as np
>>> def simulate(batches):
...     out = []
...     for z, model, seed in batches:
...         rng = np.random.default_rng(seed)
...         means = z[:, 0] + rng.standard_normal(len(z)) / np.sqrt(10)
...         out.append((np.abs(means - 1.0), {}))
...     return out
>>> result = abc_smc(simulate, np.array([-5.0]), np.array([5.0]), 1, particles=400, seed=1,
...                  target_epsilon=0.05)
>>> posterior_mean = float(np.sum(result.final.weight * result.final.z[:, 0]))
>>> abs(posterior_mean - 1.0) < 0.1
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
from scipy.special import logsumexp

from .kernels import MODEL_STAY, Kernels

__all__ = ["Population", "SMCResult", "abc_smc", "weighted_quantile", "MODEL_STAY"]

# Batches: the unit of work (and of randomness) sent to a worker.
_MAX_BATCHES_PER_ROUND = 32


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q) -> np.ndarray:
    """Quantiles ``q`` (0-1) of ``values`` with ``weights``: the inverse of the weighted CDF (step form)."""
    order = np.argsort(values, kind="stable")
    values, weights = np.asarray(values)[order], np.asarray(weights)[order]
    cumulative = np.cumsum(weights)
    cumulative /= cumulative[-1]
    index = np.searchsorted(cumulative, np.atleast_1d(q), side="left")
    return values[np.minimum(index, len(values) - 1)]


@dataclass(frozen=True)
class Population:
    """One generation: particles (latent values, model index), weights summing to one, and bookkeeping.

    ``evaluations`` counts simulated proposals (every draw: the kernels never leave the prior box),
    ``failures`` simulations that failed (rejected, counted), ``log_evidence`` the log of the estimated
    prior probability that a simulation lands within ``epsilon`` (all models together).
    """

    z: np.ndarray
    model: np.ndarray
    weight: np.ndarray
    distance: np.ndarray
    outputs: Mapping[str, np.ndarray]
    identity: np.ndarray
    epsilon: float
    evaluations: int
    failures: int
    model_probabilities: np.ndarray
    log_evidence: float
    # Distances and log(prior/proposal) of every simulated proposal, for evidence at other thresholds.
    all_distance: np.ndarray = field(repr=False, default=None)
    all_log_ratio: np.ndarray = field(repr=False, default=None)
    all_model: np.ndarray = field(repr=False, default=None)

    @property
    def acceptance(self) -> float:
        return len(self.weight) / max(self.evaluations, 1)

    @property
    def ess(self) -> float:
        """Effective sample size of the weights (Kish)."""
        return float(1.0 / np.sum(self.weight ** 2))

    def log_evidence_at(self, epsilon: float, model: int | None = None) -> float:
        """Log prior probability that a simulation (of ``model``, or any) lands within ``epsilon`` (at most this
        generation's threshold: the proposals beyond it are not weighed)."""
        if epsilon > self.epsilon:
            raise ValueError(f"evidence is known up to this generation's threshold {self.epsilon:g}, "
                             f"not at {epsilon!r}")
        keep = self.all_distance <= epsilon
        if model is not None:
            keep &= self.all_model == model
        if not keep.any():
            return -math.inf
        return float(logsumexp(self.all_log_ratio[keep]) - math.log(self.evaluations))


@dataclass(frozen=True)
class SMCResult:
    """Every generation of one run, and why it stopped; ``abandoned`` counts the simulations of a
    generation given up (too few accepted), which :attr:`evaluations` includes."""

    generations: tuple[Population, ...]
    models: int
    stopped: str
    converged: bool
    shifts: tuple[float, ...]
    abandoned: int = 0

    @property
    def final(self) -> Population:
        return self.generations[-1]

    @property
    def evaluations(self) -> int:
        return sum(g.evaluations for g in self.generations) + self.abandoned


def _check_whole(name, value, least, most):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a whole number, got {value!r}")
    if not least <= value <= most:
        raise ValueError(f"{name} must be between {least} and {most}, got {value!r}")
    return int(value)


def _prior_batch(rng, low, high, models, n):
    return low + rng.random((n, len(low))) * (high - low), rng.integers(0, models, size=n)


def _generation(simulate, kernels, low, high, models, particles, epsilon, seed, t, batch, max_evaluations,
                min_acceptance, acceptance=0.5):
    """Propose in rounds of batches until ``particles`` are accepted (or the evaluation cap is reached);
    ``acceptance`` is the rate expected (it sizes the first round)."""
    kept, evaluations, failures, index = [], 0, 0, 0
    records = []
    while sum(len(k[0]) for k in kept) < particles and evaluations < max_evaluations:
        missing = particles - sum(len(k[0]) for k in kept)
        count = int(np.clip(math.ceil(1.2 * missing / max(acceptance, 1e-3) / batch), 1, _MAX_BATCHES_PER_ROUND))
        jobs = []
        for b in range(index, index + count):
            rng = np.random.default_rng([seed, t, b])
            z, model = _prior_batch(rng, low, high, models, batch) if kernels is None else kernels.sample(rng, batch)
            jobs.append((z, model, [seed, t, b, 1]))
        index += count
        results = simulate(jobs)
        for (z, model, _), (distance, outputs), b in zip(jobs, results, range(index - count, index)):
            distance = np.asarray(distance, dtype=float)
            failed = np.isnan(distance)
            failures += int(failed.sum())
            evaluations += len(z)
            ok = ~failed & (distance <= epsilon)
            records.append((z, model, np.where(failed, np.inf, distance)))
            ident = np.column_stack([np.full(len(z), t), np.full(len(z), b), np.arange(len(z))])
            kept.append((z[ok], model[ok], distance[ok], {k: np.asarray(v)[ok] for k, v in outputs.items()}, ident[ok]))
        accepted = sum(len(k[0]) for k in kept)
        acceptance = max(accepted / max(evaluations, 1), 1e-3)
        # A generation that accepts under min_acceptance after ten populations' worth of runs would
        # take hundreds of thousands more: stop it here (the run then stops, and says so).
        if evaluations >= 10 * particles and accepted < min_acceptance * evaluations:
            break
    z = np.concatenate([k[0] for k in kept])[:particles]
    model = np.concatenate([k[1] for k in kept])[:particles]
    distance = np.concatenate([k[2] for k in kept])[:particles]
    outputs = {key: np.concatenate([k[3][key] for k in kept])[:particles] for key in (kept[0][3] if kept else {})}
    identity = np.concatenate([k[4] for k in kept])[:particles]
    all_z = np.concatenate([r[0] for r in records])
    all_model = np.concatenate([r[1] for r in records])
    all_distance = np.concatenate([r[2] for r in records])
    return z, model, distance, outputs, identity, evaluations, failures, all_z, all_model, all_distance


def _weigh(kernels, z, model, log_prior, models):
    """log(prior / proposal) of each particle (the prior is uniform on the box: one constant)."""
    if kernels is None:  # generation 0 is drawn from the prior itself
        return np.zeros(len(z))
    return log_prior - kernels.log_density(z, model)


def _population(simulate, kernels, low, high, models, particles, epsilon, seed, t, batch, max_evaluations,
                min_acceptance=0.0, acceptance=0.5):
    width = high - low
    log_prior = -math.log(models) - float(np.sum(np.log(width)))
    (z, model, distance, outputs, identity, evaluations, failures, all_z, all_model,
     all_distance) = _generation(simulate, kernels, low, high, models, particles, epsilon, seed, t, batch,
                                 max_evaluations, min_acceptance, acceptance)
    if not len(z) or (kernels is not None and len(z) < particles):  # given up: the caller counts them
        return evaluations
    log_w = _weigh(kernels, z, model, log_prior, models)
    # Evidence is asked for at thresholds up to this one: weigh only the proposals within it (the
    # accepted particles, and those beyond the population's size in the last round).
    finite = all_distance <= epsilon
    all_log_ratio = np.full(len(all_z), -np.inf)
    all_log_ratio[finite] = _weigh(kernels, all_z[finite], all_model[finite], log_prior, models)
    unnormalised = np.exp(log_w - log_w.max())
    probabilities = np.array([unnormalised[model == m].sum() for m in range(models)])
    probabilities /= probabilities.sum()
    weight = np.zeros(len(z))
    for m in range(models):
        mine = model == m
        if mine.any():
            weight[mine] = probabilities[m] * unnormalised[mine] / unnormalised[mine].sum()
    keep = all_distance <= epsilon
    log_evidence = (float(logsumexp(all_log_ratio[keep]) - math.log(evaluations)) if keep.any() else -math.inf)
    return Population(z, model, weight, distance, outputs, identity, float(epsilon), evaluations,
                      failures, probabilities, log_evidence, all_distance, all_log_ratio, all_model)


def _shift(old: Population, new: Population, width) -> float:
    """How far the posterior moved: the largest change of a 5/50/95 % quantile, in units of the new
    5-95 % width of that parameter (at least a thousandth of its prior), or of a model probability."""
    q = (0.05, 0.5, 0.95)
    moves = [float(np.max(np.abs(new.model_probabilities - old.model_probabilities)))]
    for d in range(new.z.shape[1]):
        now, before = weighted_quantile(new.z[:, d], new.weight, q), weighted_quantile(old.z[:, d], old.weight, q)
        spread = max(float(now[2] - now[0]), 1e-3 * width[d])
        moves.append(float(np.max(np.abs(now - before))) / spread)
    return max(moves)


def abc_smc(simulate: Callable[[Sequence[tuple]], list], low: np.ndarray, high: np.ndarray, models: int, *,
            particles: int = 1000, seed: int = 0, max_generations: int = 12, batch: int = 128,
            min_acceptance: float = 0.01, max_evaluations: int = 200_000, tolerance: float = 0.1,
            target_epsilon: float = 0.0, snap: float = 0.0) -> SMCResult:
    """Run ABC-SMC with model choice until the posterior stops moving.

    ``simulate(jobs)`` takes a list of ``(z, model, seed)`` batches (latent values n x d, model indices n,
    a seed that is the batch's identity) and returns one ``(distance, outputs)`` per batch, in order:
    ``distance`` n floats (NaN where the simulation failed), ``outputs`` a dict of n-arrays kept for the
    accepted particles. It stops (``converged``) after the generation whose threshold reached
    ``target_epsilon`` (one within ``snap`` of it is taken as it), or when the threshold stopped falling
    (under 10 % a generation) and, in that last generation, no 5/50/95 % quantile moved more than
    ``tolerance`` of that parameter's 5-95 % width, nor a model probability more than ``tolerance``;
    else at ``max_generations``, at an acceptance rate under ``min_acceptance``, or after
    ``max_evaluations`` simulations in one generation.
    """
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    if low.ndim != 1 or low.shape != high.shape or not np.all(np.isfinite(low) & np.isfinite(high)):
        raise ValueError(f"the prior box must be two finite vectors of one length, got {low!r} and {high!r}")
    if not np.all(high > low):
        raise ValueError(f"every prior range must have high > low, got low={low.tolist()} high={high.tolist()}")
    models = _check_whole("models", models, 1, 10_000)
    particles = _check_whole("particles", particles, 10, 1_000_000)
    max_generations = _check_whole("max_generations", max_generations, 1, 1000)
    batch = _check_whole("batch", batch, 1, 100_000)
    width = high - low
    first = _population(simulate, None, low, high, models, particles, math.inf, seed, 0, batch, max_evaluations)
    if not isinstance(first, Population) or len(first.z) < particles:
        if not isinstance(first, Population):
            raise ValueError(f"every one of the {first:,} simulations from the prior failed: nothing to infer from")
        return SMCResult((first,), models, "too few simulations from the prior succeeded", False, ())
    generations, shifts, stopped, converged, abandoned = [first], [], "max_generations", False, 0
    while len(generations) < max_generations:
        previous = generations[-1]
        epsilon = float(weighted_quantile(previous.distance, previous.weight, 0.5)[0])
        below = previous.distance < previous.epsilon
        if epsilon >= previous.epsilon and below.any():
            # More than half the weight tied at the last threshold (a model plateau): the median cannot
            # fall, so take the median of the distances strictly below it.
            epsilon = float(weighted_quantile(previous.distance[below], previous.weight[below], 0.5)[0])
        if epsilon <= target_epsilon + snap:
            epsilon = target_epsilon  # closer than ``snap``: the target itself, a generation sooner
        kernels = Kernels(previous.z, previous.model, previous.weight, previous.model_probabilities, low, high)
        # the last generation's acceptance sizes the first round (a lower threshold accepts fewer: later
        # rounds make up the rest)
        new = _population(simulate, kernels, low, high, models, particles, epsilon, seed, len(generations), batch,
                          max_evaluations, min_acceptance, previous.acceptance)
        if not isinstance(new, Population):
            abandoned = new
            stopped = (f"acceptance under {min_acceptance:g} (or {max_evaluations:,} simulations) at threshold "
                       f"{epsilon:.3g} ({abandoned:,} simulations given up): the previous generation is the posterior")
            break
        generations.append(new)
        shifts.append(_shift(previous, new, width))
        if epsilon <= target_epsilon:
            # the posterior at the target threshold is the answer; later generations would only add noise
            stopped, converged = f"the threshold reached its target {target_epsilon:g}", True
            break
        stalled = math.isfinite(previous.epsilon) and epsilon > 0.9 * previous.epsilon
        if stalled and shifts[-1] <= tolerance:
            stopped, converged = "the threshold stopped falling and the posterior stopped moving", True
            break
        if new.acceptance < min_acceptance:
            stopped = f"acceptance {new.acceptance:.2g} under {min_acceptance:g}"
            break
    return SMCResult(tuple(generations), models, stopped, converged, tuple(shifts), abandoned)
