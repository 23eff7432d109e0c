"""The improved cross-entropy method (iCEM) of Pinneri et al., CoRL 2020, "Sample-efficient Cross-Entropy Method for
Real-time Planning", for every planner of the package.

Its changes to CEM (:mod:`sb3_poplin.common.cem`):

- samples are coloured noise along the horizon, with power spectrum ``1 / f^beta`` (``beta = 0``: CEM's white noise;
  larger: smoother sequences). For POPLIN-P ``sep`` the noise of each policy parameter is coloured over the imagined
  steps; a noise without a time axis (PETS-style sequences have one, POPLIN-P ``uni`` does not) stays white;
- a share of the elites is kept: those of each iteration join the next iteration's candidates, and those of a plan's
  last iteration join the next plan's first one, shifted by the executed step like the warm-start mean;
- the population shrinks by a factor ``decay`` per iteration, to no fewer than twice the elites;
- the last iteration scores the distribution's mean too, and the best candidate of every iteration is what a plan
  executes by default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch as th

from sb3_poplin.common.cem import standard_normal_
from sb3_poplin.common.optimizers import (
    Evaluate,
    Optimizer,
    OptimizerResult,
    candidate_bounds,
    rank_candidates,
    register_optimizer,
)
from sb3_poplin.common.options import Option, real


def coloured_noise_scale(steps: int, beta: float, device: th.device | str = "cpu") -> th.Tensor:
    """The factor of each real-FFT frequency of a length-``steps`` white noise that colours it with spectrum
    ``1 / f^beta``, normalised so that every sample of the coloured noise has unit variance.

    The amplitude ``f^(-beta / 2)`` is held at the lowest non-zero frequency ``1 / steps`` below it (the constant term
    would be infinite otherwise). A real signal's spectrum counts each frequency between 0 and Nyquist twice, so the
    variance of the inverse transform is ``(s_0^2 + 2 sum s_k^2 [+ s_nyquist^2]) / steps``.

    :param steps: length of the noise along time
    :param beta: the spectrum's exponent (0: white)
    :param device: device of the result
    :return: ``[steps // 2 + 1]``
    """
    frequencies = th.fft.rfftfreq(steps, device=device).clamp(min=1.0 / steps)
    scale = frequencies.pow(-beta / 2.0)
    counts = th.full_like(scale, 2.0)
    counts[0] = 1.0
    if steps % 2 == 0:
        counts[-1] = 1.0
    variance = (counts * scale.square()).sum() / steps
    return scale / variance.sqrt()


def colouring_matrix(steps: int, beta: float, device: th.device | str = "cpu") -> th.Tensor:
    """The linear map along time that colours white noise with spectrum ``1 / f^beta``: the real-FFT filter of
    :func:`coloured_noise_scale` (a circular convolution) written as a ``[steps, steps]`` matrix.

    As a matrix the colouring is one batched product on the planners' layout ``[..., steps, block]``, where the transform
    would need the time axis last (two transposed copies of POPLIN-P's large samples) and complex intermediates.

    :param steps: length of the noise along time
    :param beta: the spectrum's exponent (0: the identity)
    :param device: device of the result
    :return: ``colouring`` ``[steps, steps]``: ``coloured[t] = sum_s colouring[t, s] * white[s]``
    """
    impulses = th.eye(steps, device=device)  # row s: an impulse at step s
    responses = th.fft.irfft(th.fft.rfft(impulses, dim=-1) * coloured_noise_scale(steps, beta, device), n=steps, dim=-1)
    return responses.T.contiguous()


def coloured_normal(
    shape: tuple[int, ...],
    steps: int,
    beta: float,
    generator: th.Generator | None = None,
    device: th.device | str = "cpu",
    colouring: th.Tensor | None = None,
) -> th.Tensor:
    """Standard normal noise coloured along time.

    :param shape: the leading dimensions ``(..., steps * block)``: the last one holds ``steps`` consecutive blocks, one
        per time step (the planners' layout)
    :param steps: how many time steps the last dimension holds
    :param beta: the spectrum's exponent (0: white noise, drawn as is)
    :param generator: random generator
    :param device: device of the result
    :param colouring: :func:`colouring_matrix` of ``steps`` and ``beta``, where the caller keeps it (None: computed here)
    :return: ``shape``; every number has unit variance, and each of the ``block`` coordinates is correlated over time
    """
    # split into seeded streams over threads when large, as CEM's draws (the numbers of th.randn when small)
    white = standard_normal_(th.empty(shape, device=device), generator)
    if beta == 0.0 or steps < 2:
        return white
    *lead, dim = shape
    colouring = colouring_matrix(steps, beta, device) if colouring is None else colouring
    # [steps, steps] @ [..., steps, block]: each block coordinate filtered over the steps
    return th.matmul(colouring, white.view(*lead, steps, dim // steps)).view(shape)


def first_population_for(evaluations: int, n_elites: int, n_iterations: int, decay: float = 1.25) -> int:
    """The first population whose shrinking populations score closest to ``evaluations`` candidates per step (the
    smaller one on a tie): iCEM at CEM's budget of ``population x iterations``.

    :param evaluations: candidates per env and step to match
    :param n_elites: the elites (the populations shrink to no fewer than twice them)
    :param n_iterations: iterations per step
    :param decay: the population's shrink factor per iteration
    """

    def total(first: int) -> int:
        return sum(ICEMOptimizer(first, min(n_elites, first), n_iterations, decay=decay).populations())

    candidates = range(max(1, n_elites), max(n_elites, evaluations) + 1)
    return min(candidates, key=lambda first: (abs(total(first) - evaluations), first))


@register_optimizer
class ICEMOptimizer(Optimizer):
    """iCEM (Pinneri et al., 2020); see the module's docstring.

    The distribution's update is CEM's smoothed one (``mean <- alpha * mean + (1 - alpha) * elite_mean``, the same for
    the variance). Samples are clipped to the bounds, not truncated at two standard deviations.

    :param population_size: candidates per environment of the first iteration
    :param n_elites: candidates kept to refit the distribution
    :param n_iterations: refits per planning step
    :param alpha: weight of the previous distribution in the smoothed update
    :param beta: exponent of the noise's spectrum along the horizon (0: white)
    :param keep_elites: share of the elites kept: for the next iteration, and (shifted) for the next plan
    :param decay: the population of iteration ``i`` is ``population_size / decay^i``, at least ``2 * n_elites``
    :param min_var: floor on the variance
    """

    name = "icem"
    default_execute = "best"
    options = (
        Option("icem_noise_beta", 2.0, "float", "iCEM: exponent of the noise's power spectrum along the horizon, "
               "``1 / f^beta`` (0: CEM's white noise; larger: smoother plans; Pinneri et al. set it per task, from 0.25 "
               "to 3.5)", real(0.0)),
        Option("icem_keep_elites", 0.3, "float", "iCEM: share of the elites kept for the next iteration and, shifted by "
               "the executed step, for the next plan", real(0.0, 1.0)),
        Option("icem_population_decay", 1.25, "float", "iCEM: the population shrinks by this factor per iteration, to "
               "no fewer than twice the elites", real(1.0)),
    )  # fmt: skip

    def __init__(
        self,
        population_size: int = 500,
        n_elites: int = 50,
        n_iterations: int = 5,
        alpha: float = 0.1,
        beta: float = 2.0,
        keep_elites: float = 0.3,
        decay: float = 1.25,
        min_var: float = 1e-8,
    ) -> None:
        super().__init__(population_size, n_elites, n_iterations)
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"alpha must be in [0, 1), got {alpha}")
        if not beta >= 0.0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        if not 0.0 <= keep_elites <= 1.0:
            raise ValueError(f"keep_elites must be in [0, 1], got {keep_elites}")
        if not decay >= 1.0:
            raise ValueError(f"decay must be >= 1, got {decay}")
        self.alpha = alpha
        self.beta = beta
        self.keep_elites = keep_elites
        self.decay = decay
        self.min_var = min_var

    @classmethod
    def from_options(cls, values: Mapping[str, Any], seed: int | None) -> ICEMOptimizer:
        return cls(
            values["population_size"],
            values["n_elites"],
            values["cem_iterations"],
            values["cem_alpha"],
            beta=values["icem_noise_beta"],
            keep_elites=values["icem_keep_elites"],
            decay=values["icem_population_decay"],
        )

    @property
    def n_carried(self) -> int:
        return int(self.keep_elites * self.n_elites)

    def populations(self) -> list[int]:
        """Candidates per env of each iteration."""
        floor = min(self.population_size, 2 * self.n_elites)
        return [max(floor, int(self.population_size / self.decay**i)) for i in range(self.n_iterations)]

    def optimize(
        self,
        evaluate: Evaluate,
        mean: th.Tensor,
        var: th.Tensor,
        lower: th.Tensor | None = None,
        upper: th.Tensor | None = None,
        generator: th.Generator | None = None,
        steps: int = 1,
        carried: th.Tensor | None = None,
    ) -> OptimizerResult:
        """Run the iCEM iterations (see :meth:`Optimizer.optimize`).

        :param carried: the previous plan's kept elites, already shifted ``[n_envs, n_carried, dim]``; rows of NaN (an
            env whose episode just started) are fresh samples instead
        """
        n_envs, dim = mean.shape
        populations = self.populations()
        kept = self.n_carried
        # The same for every iteration: the colouring [steps, steps], and the bounds [.., 1, dim] (broadcast over candidates)
        colouring = colouring_matrix(steps, self.beta, mean.device) if self.beta != 0.0 and steps > 1 else None
        bounds = candidate_bounds(lower, upper, mean)
        best = best_return = elites = elite_returns = None
        for i, population in enumerate(populations):
            std = var.clamp(min=self.min_var).sqrt().unsqueeze(1)
            normals = coloured_normal((n_envs, population, dim), steps, self.beta, generator, mean.device, colouring)
            samples = th.addcmul(mean.unsqueeze(1), normals, std, out=normals)  # mean + std * z [n_envs, population, dim]
            # The kept candidates take the last slots: the previous plan's (shifted) at the first iteration, this plan's
            # previous elites after it; the mean takes the very last slot of the last iteration.
            n_kept = min(kept, population - 1)
            previous = carried if i == 0 else (elites[:, :n_kept] if elites is not None else None)
            if previous is not None and n_kept > 0:
                slots = samples[:, population - 1 - n_kept : population - 1]
                slots.copy_(th.where(th.isfinite(previous[:, :n_kept]), previous[:, :n_kept], slots))
            if i == len(populations) - 1:
                samples[:, -1] = mean
            if bounds is not None:
                samples.clamp_(*bounds)
            returns = th.nan_to_num(evaluate(samples), nan=-th.inf)  # a diverging model's NaN ranks last
            elites, elite_returns, best, best_return = rank_candidates(samples, returns, self.n_elites, best, best_return)
            elite_mean = elites.mean(dim=1)
            elite_var = (elites - elite_mean.unsqueeze(1)).square_().mean(dim=1)
            mean = self.alpha * mean + (1.0 - self.alpha) * elite_mean
            var = self.alpha * var + (1.0 - self.alpha) * elite_var
        assert best is not None and elites is not None and elite_returns is not None
        return OptimizerResult(
            mean=mean,
            var=var,
            best=best,
            elites=elites,
            elite_returns=elite_returns,
            iterations=len(populations),
            evaluations=sum(populations),
            carried=elites[:, :kept] if kept > 0 else None,
        )


__all__ = ["ICEMOptimizer", "coloured_noise_scale", "coloured_normal", "colouring_matrix", "first_population_for"]
