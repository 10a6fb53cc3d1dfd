"""The ABC-SMC proposal kernels: proposals stay in the prior box, and their densities are exact.

The importance weights are prior / proposal density, so the density must be the sampler's: in two
dimensions each kernel's density is integrated over a grid fine near the box's edges (where the logit
kernel piles up), must integrate to 1, and must predict how often the sampler lands in each block of
the box within five binomial standard errors. A wrong truncation, Jacobian or normalisation fails both.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from reliability.incident.kernels import ComponentKernels, Kernels, LogitKernels, ModelKernel, log_mixture

LOW, HIGH = np.array([0.0, -2.0]), np.array([1.0, 2.0])


def _populations():
    rng = np.random.default_rng(3)
    n = 150
    flat = LOW + rng.random((n, 2)) * (HIGH - LOW)
    # correlated, and pressed against the lower edge of both dimensions
    base = np.abs(rng.standard_normal(n))
    edge = np.column_stack([0.05 * base + 0.01 * np.abs(rng.standard_normal(n)),
                            -2.0 + 0.3 * base + 0.05 * np.abs(rng.standard_normal(n))])
    return {"flat": flat, "correlated at an edge": np.clip(edge, LOW, HIGH)}


def _grid(points=600):
    """Cell edges uniform in the logit of the box (fine where a logit kernel piles up near an edge), mapped
    to the box, and the cell midpoints."""
    u = np.linspace(-25.0, 25.0, points + 1)
    share = np.concatenate([[0.0], 1.0 / (1.0 + np.exp(-u[1:-1])), [1.0]])
    edges = [LOW[d] + (HIGH[d] - LOW[d]) * share for d in range(2)]
    mids = [(e[1:] + e[:-1]) / 2 for e in edges]
    return edges, mids


def _cell_masses(log_density):
    """The density integrated over each cell of the grid (midpoint rule on the box coordinates)."""
    edges, mids = _grid()
    x, y = np.meshgrid(mids[0], mids[1], indexing="ij")
    density = np.exp(log_density(np.column_stack([x.ravel(), y.ravel()]))).reshape(x.shape)
    return density * np.diff(edges[0])[:, None] * np.diff(edges[1])[None, :], edges


def _check(sample, log_density):
    assert np.all((sample >= LOW) & (sample <= HIGH))
    masses, edges = _cell_masses(log_density)
    # the density integrates to 1 over the box
    assert masses.sum() == pytest.approx(1.0, abs=2e-3)
    # and the sampler draws what it says: frequencies in 8 x 8 blocks of about equal prior area
    # (block boundaries on the grid's cell edges, so the masses add up over whole cells)
    blocks = [np.searchsorted(e, np.linspace(lo, hi, 9)) for e, lo, hi in zip(edges, LOW, HIGH)]
    counts, _, _ = np.histogram2d(sample[:, 0], sample[:, 1], bins=[e[b] for e, b in zip(edges, blocks)])
    expected = np.add.reduceat(np.add.reduceat(masses, blocks[0][:-1], axis=0), blocks[1][:-1], axis=1)
    frequency = counts / len(sample)
    sigma = np.sqrt(expected * (1 - expected) / len(sample)) + 1e-4
    assert np.max(np.abs(frequency - expected) / sigma) < 5.0, (frequency, expected)


@pytest.mark.parametrize("name", ["flat", "correlated at an edge"])
@pytest.mark.parametrize("kind", [ComponentKernels, LogitKernels])
def test_each_kernel_density_is_exact_and_stays_in_the_box(name, kind):
    z = _populations()[name]
    model, weight = np.zeros(len(z), dtype=int), np.full(len(z), 1.0 / len(z))
    kernel = kind(z, model, weight, np.array([0]), LOW, HIGH)
    _check(kernel.sample(np.random.default_rng(11), 0, 100_000), lambda points: kernel.log_density(points, 0))


@pytest.mark.parametrize("name", ["flat", "correlated at an edge"])
def test_the_mixture_density_is_exact(name):
    z = _populations()[name]
    kernels = Kernels(z, np.zeros(len(z), dtype=int), np.full(len(z), 1.0 / len(z)), np.ones(1), LOW, HIGH)
    sample, _ = kernels.sample(np.random.default_rng(12), 100_000)
    _check(sample, lambda points: kernels.log_density(points, np.zeros(len(points), dtype=int)))


def test_models_share_the_kernels_by_their_probabilities():
    z = _populations()["correlated at an edge"]
    rng = np.random.default_rng(5)
    model = rng.integers(0, 2, len(z))
    kernels = Kernels(z, model, np.full(len(z), 1.0 / len(z)), np.array([0.4, 0.6, 0.0]), LOW, HIGH)
    _, proposed = kernels.sample(rng, 100_000)
    assert not np.any(proposed == 2)  # a dead model is never proposed
    # each model's density integrates to its model-kernel probability
    for m in (0, 1):
        masses, _ = _cell_masses(lambda points: kernels.log_density(points, np.full(len(points), m)))
        assert masses.sum() == pytest.approx(np.exp(kernels.models.log_density(np.array([m])))[0], abs=2e-3)


def test_the_model_kernel_draws_what_its_density_says():
    kernel = ModelKernel(np.array([0.5, 0.0, 0.3, 0.2]))
    draws = kernel.sample(np.random.default_rng(2), 400_000)
    frequencies = np.bincount(draws, minlength=4) / len(draws)
    expected = np.exp(kernel.log_density(np.arange(4)))
    assert frequencies[1] == 0.0 and expected[1] == 0.0
    np.testing.assert_allclose(frequencies, expected, atol=0.003)
    assert expected.sum() == pytest.approx(1.0)


def test_log_mixture_equals_the_direct_sum():
    rng = np.random.default_rng(1)
    y, centres, offset = rng.standard_normal((50, 4)), rng.standard_normal((30, 4)), rng.standard_normal(30)
    direct = np.log(np.exp(offset[None, :] - 0.5 * ((y[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)).sum(axis=1))
    np.testing.assert_allclose(log_mixture(y, centres, offset, chunk=7), direct, rtol=1e-12)
