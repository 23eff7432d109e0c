"""Cross-entropy method over a flat noise tensor, batched over environments and candidates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch as th


@dataclass
class CEMResult:
    """Outcome of one CEM optimisation.

    :param mean: final mean of the sampling distribution ``[n_envs, dim]`` (the plan that is executed)
    :param var: final variance ``[n_envs, dim]``
    :param best: best sample of the last iteration ``[n_envs, dim]``
    :param elites: elite samples of the last iteration ``[n_envs, n_elites, dim]``
    :param elite_returns: their predicted returns ``[n_envs, n_elites]``
    """

    mean: th.Tensor
    var: th.Tensor
    best: th.Tensor
    elites: th.Tensor
    elite_returns: th.Tensor


class CEMOptimizer:
    """Cross-entropy method with PETS' smoothing and truncated sampling.

    At every iteration ``population_size`` samples are drawn from a diagonal Gaussian truncated at two standard
    deviations, the ``n_elites`` best by predicted return are kept and the distribution moves towards their
    mean and variance: ``mean <- alpha * mean + (1 - alpha) * elite_mean`` (same for the variance).

    Note on ``alpha``: the POPLIN paper writes the update as ``(1 - alpha) * mu + alpha * mu_elite`` with
    alpha = 0.1, but the code its results come from (PETS) weights the OLD distribution by alpha; with the
    paper's reading five iterations would barely move the distribution. We follow the code.

    :param population_size: candidates per environment and iteration
    :param n_elites: candidates kept to refit the distribution
    :param n_iterations: refits per planning step
    :param alpha: weight of the previous distribution in the smoothed update
    :param min_var: floor on the variance, so the search never collapses to a point
    """

    def __init__(
        self,
        population_size: int = 500,
        n_elites: int = 50,
        n_iterations: int = 5,
        alpha: float = 0.1,
        min_var: float = 1e-8,
    ) -> None:
        if not 1 <= n_elites <= population_size:
            raise ValueError(f"n_elites must be in [1, population_size={population_size}], got {n_elites}")
        if n_iterations < 1:
            raise ValueError(f"n_iterations must be >= 1, got {n_iterations}")
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"alpha must be in [0, 1), got {alpha}")
        self.population_size = population_size
        self.n_elites = n_elites
        self.n_iterations = n_iterations
        self.alpha = alpha
        self.min_var = min_var

    @staticmethod
    def constrain_var(mean: th.Tensor, var: th.Tensor, lower: th.Tensor | None, upper: th.Tensor | None) -> th.Tensor:
        """Shrink the variance so that two standard deviations stay inside ``[lower, upper]``."""
        if lower is None or upper is None:
            return var
        to_lower = (mean - lower).clamp(min=0.0)
        to_upper = (upper - mean).clamp(min=0.0)
        room = th.minimum(to_lower, to_upper)
        return th.minimum(var, (room / 2.0) ** 2)

    def optimize(
        self,
        evaluate: Callable[[th.Tensor], th.Tensor],
        mean: th.Tensor,
        var: th.Tensor,
        lower: th.Tensor | None = None,
        upper: th.Tensor | None = None,
        generator: th.Generator | None = None,
    ) -> CEMResult:
        """Run the CEM iterations.

        :param evaluate: maps candidates ``[n_envs, population, dim]`` to predicted returns ``[n_envs, population]``
        :param mean: initial mean ``[n_envs, dim]``
        :param var: initial variance ``[n_envs, dim]``
        :param lower: lower bound of the samples (broadcastable to ``[n_envs, dim]``), or None for unbounded
        :param upper: upper bound of the samples, or None for unbounded
        :param generator: random generator for the samples
        """
        n_envs, dim = mean.shape
        samples = mean.new_empty(n_envs, self.population_size, dim)
        bounded = lower is not None and upper is not None
        if bounded:
            # [.., 1, dim]: broadcast over candidates; same dtype as the samples so they can be clamped in place.
            lower_b = th.as_tensor(lower, dtype=samples.dtype, device=samples.device).unsqueeze(-2)
            upper_b = th.as_tensor(upper, dtype=samples.dtype, device=samples.device).unsqueeze(-2)
        elites = best = elite_returns = None
        for _ in range(self.n_iterations):
            constrained = self.constrain_var(mean, var, lower, upper).clamp(min=self.min_var)
            # Standard normal truncated at +-2 by clamping: cheap, and keeps samples inside the bounds above.
            # Every pass below is in place on one buffer: for POPLIN-P sep it holds population x H x |theta| floats.
            th.randn(samples.shape, generator=generator, device=samples.device, dtype=samples.dtype, out=samples)
            samples.clamp_(-2.0, 2.0)
            th.addcmul(mean.unsqueeze(1), samples, constrained.sqrt().unsqueeze(1), out=samples)  # mean + std * z
            if bounded:
                samples.clamp_(min=lower_b, max=upper_b)
            returns = evaluate(samples)
            # A diverging model can produce NaN returns: rank them last instead of poisoning the elites.
            returns = th.nan_to_num(returns, nan=-th.inf)
            elite_returns, elite_idx = th.topk(returns, self.n_elites, dim=1)  # [n_envs, n_elites], best first
            elites = th.gather(samples, 1, elite_idx.unsqueeze(-1).expand(-1, -1, dim))
            best = elites[:, 0]
            elite_mean = elites.mean(dim=1)
            elite_var = elites.var(dim=1, unbiased=False)
            mean = self.alpha * mean + (1.0 - self.alpha) * elite_mean
            var = self.alpha * var + (1.0 - self.alpha) * elite_var
        assert elites is not None and best is not None and elite_returns is not None
        return CEMResult(mean=mean, var=var, best=best, elites=elites, elite_returns=elite_returns)
