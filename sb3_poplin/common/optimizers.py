"""The interface every trajectory optimizer of the planners implements, and the registry that names them.

An optimizer searches a flat noise vector per candidate (what the noise means is the planner's business, see
:mod:`sb3_poplin.common.planners`) for the highest predicted return. The optimizers of the package are CEM
(:mod:`sb3_poplin.common.cem`), iCEM (:mod:`sb3_poplin.common.icem`) and MPPI (:mod:`sb3_poplin.common.mppi`); an
algorithm picks one by name with its ``optimizer`` option. A new optimizer is a subclass of :class:`Optimizer` in its own
module, registered with :func:`register_optimizer`, whose module :mod:`sb3_poplin.common.engine` imports.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import torch as th

if TYPE_CHECKING:
    from sb3_poplin.common.options import Option

#: maps candidates ``[n_envs, population, dim]`` to their predicted returns ``[n_envs, population]``
Evaluate = Callable[[th.Tensor], th.Tensor]


@dataclass
class OptimizerResult:
    """Outcome of one optimisation.

    :param mean: final mean of the sampling distribution ``[n_envs, dim]`` (warm start of the next plan)
    :param var: final variance ``[n_envs, dim]``
    :param best: the best candidate ``[n_envs, dim]`` (CEM: of the last iteration; iCEM: of every iteration)
    :param elites: elite candidates of the last iteration ``[n_envs, n_elites, dim]``, best first
    :param elite_returns: their predicted returns ``[n_envs, n_elites]``
    :param iterations: how many iterations ran (fewer than ``n_iterations`` when stopped early)
    :param evaluations: how many candidates per env were scored (the search's budget, in model rollouts)
    :param carried: the candidates the optimizer carries to the next plan ``[n_envs, n_carried, dim]`` (None: none)
    """

    mean: th.Tensor
    var: th.Tensor
    best: th.Tensor
    elites: th.Tensor
    elite_returns: th.Tensor
    iterations: int = 0
    evaluations: int = 0
    carried: th.Tensor | None = None


class Optimizer(ABC):
    """A population-based optimizer of the planning noise.

    :param population_size: candidates per environment in the (first) iteration
    :param n_elites: candidates kept to refit the sampling distribution
    :param n_iterations: refits per planning step
    """

    #: the name the ``optimizer`` option gives it
    name: ClassVar[str] = ""
    #: the options that only this optimizer takes (declared in its module; the shared ones are in
    #: :data:`sb3_poplin.common.options.PLANNING_OPTIONS`)
    options: ClassVar[tuple[Option, ...]] = ()
    #: what a plan executes when ``cem_execute`` is not given: ``mean`` or ``best``
    default_execute: ClassVar[str] = "mean"

    def __init__(self, population_size: int, n_elites: int, n_iterations: int) -> None:
        if not 1 <= n_elites <= population_size:
            raise ValueError(f"n_elites must be in [1, population_size={population_size}], got {n_elites}")
        if n_iterations < 1:
            raise ValueError(f"n_iterations must be >= 1, got {n_iterations}")
        self.population_size = population_size
        self.n_elites = n_elites
        self.n_iterations = n_iterations

    @classmethod
    @abstractmethod
    def from_options(cls, values: Mapping[str, Any], seed: int | None) -> Optimizer:
        """The optimizer an algorithm's checked option values describe.

        :param values: every option's value, by option name
        :param seed: the algorithm's seed (for state derived from it, like CEM's noise table)
        """

    @property
    def capturable(self) -> bool:
        """Whether a plan can be captured in a CUDA graph (a fixed number of iterations, read without the host)."""
        return True

    def check_noise_dim(self, dim: int) -> None:
        """Refuse settings that cannot search a noise of ``dim`` numbers per candidate (checked when a model is built,
        not at its first plan); nothing to refuse by default."""
        return None

    @property
    def n_carried(self) -> int:
        """How many candidates of a plan join the next plan's (shifted by the executed step, as the warm-start mean): the
        planner keeps them in its warm-start state, so that a plan depends on its inputs alone."""
        return 0

    @abstractmethod
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
        """Search the noise for the highest predicted return.

        :param evaluate: maps candidates ``[n_envs, population, dim]`` to predicted returns ``[n_envs, population]``
        :param mean: initial mean ``[n_envs, dim]``
        :param var: initial variance ``[n_envs, dim]``
        :param lower: lower bound of the samples (broadcastable to ``[n_envs, dim]``), or None for unbounded
        :param upper: upper bound of the samples, or None for unbounded
        :param generator: random generator for the samples
        :param steps: how many time steps the noise spans: ``dim`` is ``steps`` blocks of ``dim // steps`` numbers, one
            per imagined step (1: the noise has no time axis)
        :param carried: the previous plan's :attr:`OptimizerResult.carried`, shifted ``[n_envs, n_carried, dim]``, with
            rows of NaN where there is none (the start of an episode); None when :attr:`n_carried` is 0
        """


def select_candidates(samples: th.Tensor, index: th.Tensor) -> th.Tensor:
    """The candidates ``index [n_envs, k]`` of each env's ``samples [n_envs, population, dim]``, as ``[n_envs, k, dim]``.

    Rows of the flat ``[n_envs * population, dim]`` view: index_select copies whole rows, where gather with an expanded
    index reads an index per number (POPLIN-P sep: H x |theta| numbers per row).
    """
    n_envs, population, dim = samples.shape
    rows = index + th.arange(n_envs, device=index.device).unsqueeze(1) * population
    return samples.reshape(-1, dim).index_select(0, rows.view(-1)).view(n_envs, index.shape[1], dim)


def candidate_bounds(lower: th.Tensor | None, upper: th.Tensor | None, mean: th.Tensor) -> tuple[th.Tensor, th.Tensor] | None:
    """The bounds of candidates ``[n_envs, population, dim]`` as ``[..., 1, dim]`` (broadcast over the population), in
    the dtype and on the device of ``mean``; None when unbounded."""
    if lower is None or upper is None:
        return None

    def broadcast(bound: th.Tensor) -> th.Tensor:
        return th.as_tensor(bound, dtype=mean.dtype, device=mean.device).unsqueeze(-2)

    return broadcast(lower), broadcast(upper)


def rank_candidates(
    samples: th.Tensor, returns: th.Tensor, n_elites: int, best: th.Tensor | None = None, best_return: th.Tensor | None = None
) -> tuple[th.Tensor, th.Tensor, th.Tensor, th.Tensor]:
    """One iteration's elites, and the best candidate of every iteration so far.

    :param samples: the iteration's candidates ``[n_envs, population, dim]``
    :param returns: their returns ``[n_envs, population]`` (NaN already ranked last)
    :param n_elites: how many elites
    :param best: the best candidate of the earlier iterations ``[n_envs, dim]`` (None at the first)
    :param best_return: its return ``[n_envs]``
    :return: the elites ``[n_envs, n_elites, dim]`` and their returns ``[n_envs, n_elites]``, best first, then the best
        candidate and its return, replaced where this iteration's best scores higher
    """
    elite_returns, elite_idx = th.topk(returns, n_elites, dim=1)
    elites = select_candidates(samples, elite_idx)
    if best is None or best_return is None:
        return elites, elite_returns, elites[:, 0], elite_returns[:, 0]
    better = elite_returns[:, 0] > best_return
    return (
        elites,
        elite_returns,
        th.where(better.unsqueeze(1), elites[:, 0], best),
        th.where(better, elite_returns[:, 0], best_return),
    )


OptimizerType = TypeVar("OptimizerType", bound=type[Optimizer])
#: every registered optimizer, by name
OPTIMIZERS: dict[str, type[Optimizer]] = {}


def register_optimizer(cls: OptimizerType) -> OptimizerType:
    """Class decorator: make ``cls`` available as ``optimizer=cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a name to be registered")
    if cls.name in OPTIMIZERS and OPTIMIZERS[cls.name] is not cls:
        raise ValueError(f"an optimizer named {cls.name!r} is already registered ({OPTIMIZERS[cls.name].__name__})")
    OPTIMIZERS[cls.name] = cls
    return cls


def optimizer_options() -> tuple[Option, ...]:
    """The options of every registered optimizer, in registration order."""
    return tuple(option for cls in OPTIMIZERS.values() for option in cls.options)


def optimizer_class(name: str) -> type[Optimizer]:
    """The optimizer registered as ``name`` (case-insensitive); a ValueError names the registered ones."""
    key = str(name).lower()
    if key not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {name!r}")
    return OPTIMIZERS[key]
