"""Model predictive path integral control (MPPI: Williams et al., ICRA 2016 and 2017) in the form PDDM (Nagabandi et al.,
CoRL 2019) planned with, for every planner of the package.

Where CEM (:mod:`sb3_poplin.common.cem`) refits a Gaussian to its elites, MPPI moves the mean to the average of all the
candidates, each weighed by the exponential of its predicted return:

- ``mean <- sum_k w_k x_k`` with ``w_k = exp(gamma * R_k) / sum_j exp(gamma * R_j)``; the noise's scale stays the
  initial one (``init_sigma``) for every iteration;
- the noise can be filtered along the horizon, ``n_t = b * u_t + (1 - b) * n_(t-1)`` from ``n_(-1) = 0`` with ``u_t``
  white, so consecutive steps are correlated (``b = 1``, the default: white noise). For POPLIN-P ``sep`` each policy
  parameter's noise is filtered over the imagined steps; a noise without a time axis (POPLIN-P ``uni``) stays white;
- the plan executes the weighted mean.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch as th

from sb3_poplin.common.optimizers import (
    Evaluate,
    Optimizer,
    OptimizerResult,
    candidate_bounds,
    rank_candidates,
    register_optimizer,
)
from sb3_poplin.common.options import Option, real


def filtered_normal(
    shape: tuple[int, ...], steps: int, keep: float, generator: th.Generator | None = None, device: th.device | str = "cpu"
) -> th.Tensor:
    """Standard normal noise low-pass filtered along time: ``n_t = keep * u_t + (1 - keep) * n_(t-1)``, ``n_(-1) = 0``.

    :param shape: the leading dimensions ``(..., steps * block)``: the last one holds ``steps`` consecutive blocks, one
        per time step (``steps = 1``: no time axis, the noise is returned white)
    :param steps: number of time steps
    :param keep: weight of the fresh noise in each step (1: white)
    :param generator: random generator
    :param device: device of the result
    """
    white = th.randn(shape, generator=generator, device=device)
    if keep == 1.0 or steps <= 1:
        return white
    *lead, dim = shape
    over_time = white.view(*lead, steps, dim // steps)
    filtered = th.empty_like(over_time)
    previous = th.zeros_like(over_time[..., 0, :])
    for t in range(steps):  # a short recursion (the horizon): a loop costs less than a scan here
        previous = keep * over_time[..., t, :] + (1.0 - keep) * previous
        filtered[..., t, :] = previous
    return filtered.view(shape)


@register_optimizer
class MPPIOptimizer(Optimizer):
    """MPPI (see the module's docstring).

    :param population_size: candidates per environment and iteration
    :param n_elites: the best candidates reported (:attr:`OptimizerResult.elites`); MPPI's update weighs all of them
    :param n_iterations: updates of the mean per planning step
    :param gamma: the weights' inverse temperature: a candidate whose return is 1 lower weighs ``exp(-gamma)`` as much
    :param keep: weight of the fresh noise at each step of the filtered noise (1: white)
    :param min_var: floor on the noise's variance
    """

    name = "mppi"
    default_execute = "mean"
    options = (
        Option("mppi_gamma", 10.0, "float", "MPPI: the candidates are averaged with weights ``exp(mppi_gamma * return)``: "
               "a candidate whose predicted return is 1 lower weighs ``exp(-mppi_gamma)`` as much (larger: closer to "
               "the best candidate alone)", real(0.0, strict_minimum=True)),
        Option("mppi_noise_filter", 1.0, "float", "MPPI: weight of the fresh noise at each imagined step, "
               "``n_t = b * u_t + (1 - b) * n_(t-1)`` (1, the default: white noise; smaller: smoother plans, as PDDM "
               "samples)",
               real(0.0, 1.0, strict_minimum=True)),
    )  # fmt: skip

    def __init__(
        self,
        population_size: int = 500,
        n_elites: int = 50,
        n_iterations: int = 5,
        gamma: float = 10.0,
        keep: float = 1.0,
        min_var: float = 1e-8,
    ) -> None:
        super().__init__(population_size, n_elites, n_iterations)
        if not gamma > 0.0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        if not 0.0 < keep <= 1.0:
            raise ValueError(f"keep must be in (0, 1], got {keep}")
        self.gamma = gamma
        self.keep = keep
        self.min_var = min_var

    @classmethod
    def from_options(cls, values: Mapping[str, Any], seed: int | None) -> MPPIOptimizer:
        return cls(
            values["population_size"],
            values["n_elites"],
            values["cem_iterations"],
            gamma=values["mppi_gamma"],
            keep=values["mppi_noise_filter"],
        )

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
        """Run the MPPI iterations (see :meth:`Optimizer.optimize`)."""
        n_envs, dim = mean.shape
        std = var.clamp(min=self.min_var).sqrt().unsqueeze(1)  # [n_envs, 1, dim], the same for every iteration
        bounds = candidate_bounds(lower, upper, mean)
        best = best_return = elites = elite_returns = None
        for _ in range(self.n_iterations):
            noise = filtered_normal((n_envs, self.population_size, dim), steps, self.keep, generator, mean.device)
            samples = mean.unsqueeze(1) + std * noise  # [n_envs, population, dim]
            if bounds is not None:
                samples.clamp_(*bounds)
            returns = th.nan_to_num(evaluate(samples), nan=-th.inf)  # a diverging model's NaN weighs nothing
            weights = th.softmax(self.gamma * returns, dim=1)  # [n_envs, population]
            # An env whose every candidate diverged keeps its mean (its weights are NaN).
            scored = th.isfinite(returns.max(dim=1).values).unsqueeze(1)
            mean = th.where(scored, (weights.unsqueeze(-1) * samples).sum(dim=1), mean)
            elites, elite_returns, best, best_return = rank_candidates(samples, returns, self.n_elites, best, best_return)
        assert best is not None and elites is not None and elite_returns is not None
        return OptimizerResult(
            mean,
            var,
            best,
            elites,
            elite_returns,
            iterations=self.n_iterations,
            evaluations=self.population_size * self.n_iterations,
        )


__all__ = ["MPPIOptimizer", "filtered_normal"]
