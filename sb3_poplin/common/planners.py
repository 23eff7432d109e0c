"""What the CEM noise means: each planner maps a flat noise vector per candidate to the actions of a rollout.

- :class:`ActionSequencePlanner` (PETS): the noise is the action sequence itself.
- :class:`PolicyActionPlanner` (POPLIN-A): the noise is added to the policy's actions, either on a reference
  sequence proposed once by the policy (``init``) or on the policy's action at every imagined state (``replan``).
- :class:`PolicyParameterPlanner` (POPLIN-P): the noise is added to the policy's parameters, one vector for the
  whole horizon (``uni``) or one per step (``sep``); every candidate runs its own weights in one batched matmul.

A planner never imports the algorithm: the algorithm owns the planner and hands it the policy network.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, ClassVar, TypeVar

import torch as th
from torch import nn

from sb3_poplin.common.optimizers import Optimizer
from sb3_poplin.common.policies import PolicyNetwork
from sb3_poplin.common.rollout import ActionFn, ModelRollout

PlannerType = TypeVar("PlannerType", bound="type[Planner]")
#: every registered planner, by name
PLANNERS: dict[str, type[Planner]] = {}


def register_planner(cls: PlannerType) -> PlannerType:
    """Class decorator: make ``cls`` buildable by name (an algorithm's ``planner_name``)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a name to be registered")
    if cls.name in PLANNERS and PLANNERS[cls.name] is not cls:
        raise ValueError(f"a planner named {cls.name!r} is already registered ({PLANNERS[cls.name].__name__})")
    PLANNERS[cls.name] = cls
    return cls


def planner_class(name: str) -> type[Planner]:
    """The planner registered as ``name``; a ValueError names the registered ones."""
    if name not in PLANNERS:
        raise ValueError(f"planner must be one of {sorted(PLANNERS)}, got {name!r}")
    return PLANNERS[name]


@dataclass
class PlanOutput:
    """Result of planning one real step for every env.

    :param action: action to execute, in [-1, 1], ``[n_envs, act_dim]``
    :param mean: the executed plan ``[n_envs, noise_dim]`` (the search's final mean, or its best candidate with
        ``return_mean=False``)
    :param executed_noise: the noise of the executed step ``[n_envs, step_noise_dim]`` (stored in the replay buffer)
    :param elite_returns: predicted returns of the last iteration's elites ``[n_envs, n_elites]``, best first
    :param elite_noise: the elite candidates ``[n_envs, n_elites, noise_dim]``
    :param elite_first_actions: with ``elite_actions > 0``: the first actions of the best elites ``[n_envs, k, act_dim]``
    :param imagined_states: with ``imagine_elites > 0``: the best elites' imagined states ``[n_envs, k, H, obs_dim]``
    :param imagined_actions: and the actions taken there ``[n_envs, k, H, act_dim]`` (hallucinated distillation data)
    :param cem_iterations: how many iterations the optimizer ran (fewer than configured when CEM stopped early)
    :param carried: the candidates the optimizer carries to the next step ``[n_envs, n_carried, noise_dim]`` (iCEM's
        kept elites; None for CEM)
    :param search_mean: what the next step's search starts from ``[n_envs, noise_dim]``, before the shift (the search's
        final mean, or the executed plan with ``warm_from_executed``; None: :attr:`mean`); see
        :meth:`Planner.warm_start_after`
    """

    action: th.Tensor
    mean: th.Tensor
    executed_noise: th.Tensor
    elite_returns: th.Tensor
    elite_noise: th.Tensor
    elite_first_actions: th.Tensor | None = None
    imagined_states: th.Tensor | None = None
    imagined_actions: th.Tensor | None = None
    cem_iterations: int = 0
    carried: th.Tensor | None = None
    search_mean: th.Tensor | None = None


class Planner(ABC):
    """Planning around a parametrisation of the candidates, with a population-based optimizer (CEM, iCEM).

    A plan's warm start (:meth:`warm_start`, :meth:`initial_warm_start`) is one flat tensor per env: the shifted mean
    ``[noise_dim]``, followed by the optimizer's carried candidates ``[n_carried * noise_dim]`` where it carries some
    (NaN where there are none yet). The algorithm threads it from step to step, and ``predict`` through its ``state``, so
    a plan depends on its inputs alone.

    :param rollout: evaluates candidates with the learned model
    :param optimizer: the trajectory optimizer (:mod:`sb3_poplin.common.optimizers`)
    :param act_dim: action size
    :param init_sigma: initial standard deviation of the noise distribution
    :param return_mean: execute the search's final mean (True: POPLIN's and PETS' rule) or its best candidate (False:
        iCEM's and random shooting's); None: the optimizer's own rule
    :param warm_from_executed: start the next step's search from the executed plan (mbrl-lib's rule) instead of the
        search's final mean (PETS' and Pinneri et al.'s); the two differ only when the best candidate is executed
    :param cuda_graph: on a CUDA device, capture the whole plan (every CEM iteration and imagined step) in one CUDA graph
        and replay it, so a planning step costs one launch instead of thousands; ignored on CPU. Random numbers stay
        seeded: the generator is registered with the graph, and a replay draws exactly what the eager plan would.
        The graph is captured again when the shapes, the settings or the tensors it reads (e.g. the ensemble's planning
        weights after a model update) change.
    :param compute_dtype: dtype of the policy network's matrix products while planning (the ensemble's are its
        ``planning_dtype``); states, actions, returns and CEM's statistics stay float32. The executed action (and the
        elites' first actions) are computed in float32: they are what the policy with those parameters does. POPLIN-P's
        perturbed copies stay float32 on a CPU (see :meth:`PolicyParameterPlanner.action_fn`).
    """

    #: the name an algorithm builds it by (:func:`planner_class`)
    name: ClassVar[str] = ""

    def __init__(
        self,
        rollout: ModelRollout,
        optimizer: Optimizer,
        act_dim: int,
        init_sigma: float,
        return_mean: bool | None = None,
        cuda_graph: bool = False,
        compute_dtype: th.dtype = th.float32,
        warm_from_executed: bool = False,
    ) -> None:
        self.rollout = rollout
        self.optimizer = optimizer
        self.act_dim = act_dim
        self.horizon = rollout.horizon
        self.init_sigma = init_sigma
        self.return_mean = optimizer.default_execute == "mean" if return_mean is None else return_mean
        self.warm_from_executed = warm_from_executed
        #: how many of the best elites to roll out once more (mean prediction) for hallucinated distillation data
        self.imagine_elites = 0
        #: how many of the best elites' first actions to output (POPLIN-A's ``bc_elite_actions``); 0 skips the work
        self.elite_actions = 0
        self.cuda_graph = cuda_graph
        self.compute_dtype = compute_dtype
        self._captured: _CapturedPlan | None = None

    @classmethod
    def from_options(
        cls,
        rollout: ModelRollout,
        optimizer: Optimizer,
        act_dim: int,
        values: Mapping[str, Any],
        policy_net: PolicyNetwork | None = None,
    ) -> Planner:
        """The planner an algorithm's checked option values describe.

        :param rollout: evaluates candidates with the learned model
        :param optimizer: the trajectory optimizer
        :param act_dim: action size
        :param values: every option's value, by name
        :param policy_net: the policy network (the planners around one)
        """
        return cls(rollout, optimizer, act_dim, values["init_sigma"])

    def _matmul_dtype(self, data: th.Tensor, dtype: th.dtype | None) -> th.dtype:
        """The dtype of a policy's matrix products on ``data``: ``dtype`` (None: :attr:`compute_dtype`) for float32
        data; data of another precision (a float64 model in a test) is computed in its own."""
        if data.dtype != th.float32:
            return data.dtype
        return self.compute_dtype if dtype is None else dtype

    @property
    def sequential(self) -> bool:
        """True when the noise is a sequence over the horizon that is shifted by one step to warm-start the next plan."""
        return True

    @property
    @abstractmethod
    def step_noise_dim(self) -> int:
        """Size of the noise of one real step (what the replay buffer stores)."""

    @property
    def noise_dim(self) -> int:
        """Size of one candidate's flat noise vector."""
        return self.step_noise_dim * (self.horizon if self.sequential else 1)

    def initial_mean(self, n_envs: int, device: th.device) -> th.Tensor:
        """Mean of the noise distribution at the start of an episode ``[n_envs, noise_dim]``."""
        return th.zeros(n_envs, self.noise_dim, device=device)

    def initial_warm_start(self, n_envs: int, device: th.device) -> th.Tensor:
        """The warm start of an episode's first plan ``[n_envs, noise_dim * (1 + n_carried)]``: the initial mean, and
        NaN for the optimizer's carried candidates (none yet)."""
        mean = self.initial_mean(n_envs, device)
        carried = mean.new_full((n_envs, self.optimizer.n_carried * self.noise_dim), float("nan"))
        return th.cat([mean, carried], dim=1)

    def warm_start(self, mean: th.Tensor, carried: th.Tensor | None = None) -> th.Tensor:
        """Next step's warm start from this step's plan: each of the executed plan and the carried candidates drops the
        executed step and appends a fresh one (the initial mean's), when the noise is a sequence over the horizon.

        :param mean: ``PlanOutput.mean`` ``[n_envs, noise_dim]``
        :param carried: ``PlanOutput.carried`` ``[n_envs, n_carried, noise_dim]``, or None
        :return: ``[n_envs, noise_dim * (1 + n_carried)]``
        """
        n_envs = mean.shape[0]
        plans = mean.unsqueeze(1) if carried is None else th.cat([mean.unsqueeze(1), carried], dim=1)
        if self.sequential:
            fresh = self.initial_mean(n_envs, mean.device)[:, None, : self.step_noise_dim].expand(-1, plans.shape[1], -1)
            plans = th.cat([plans[:, :, self.step_noise_dim :], fresh], dim=2)
        return plans.reshape(n_envs, -1)

    def warm_start_after(self, out: PlanOutput) -> th.Tensor:
        """The next step's warm start after the plan ``out`` (:meth:`warm_start` of its search mean and carried
        candidates).

        Executing the best candidate but starting the next search from the final mean is iCEM's rule (Pinneri et al.):
        a search started from the executed sample would carry that sample's noise into the next step, and in POPLIN-P's
        parameter space the noise of up to ``horizon`` steps adds up on each step's weights.
        """
        return self.warm_start(out.mean if out.search_mean is None else out.search_mean, out.carried)

    def split_warm_start(self, warm: th.Tensor) -> tuple[th.Tensor, th.Tensor | None]:
        """The mean ``[n_envs, noise_dim]`` and the carried candidates ``[n_envs, n_carried, noise_dim]`` (None: none) of a
        warm start (a bare mean, without carried candidates, is accepted too)."""
        mean = warm[:, : self.noise_dim]
        n_carried = (warm.shape[1] - self.noise_dim) // self.noise_dim
        carried = warm[:, self.noise_dim :].view(warm.shape[0], n_carried, self.noise_dim) if n_carried > 0 else None
        return mean, carried

    def prepare(self, obs0: th.Tensor) -> Any:
        """Per-step context shared by all candidates and iterations (e.g. a reference action sequence)."""
        return None

    def bounds(self, obs0: th.Tensor, context: Any) -> tuple[th.Tensor | None, th.Tensor | None]:
        """Bounds of the noise, broadcastable to ``[n_envs, noise_dim]`` (None when unbounded)."""
        return None, None

    @abstractmethod
    def action_fn(self, noise: th.Tensor, context: Any, dtype: th.dtype | None = None) -> ActionFn:
        """Actions of candidates given their noise.

        :param noise: ``[n_envs, K, noise_dim]``
        :param context: what :meth:`prepare` returned
        :param dtype: dtype of a policy network's matrix products (None: :attr:`compute_dtype`); the actions are float32
        :return: ``(t, states [P, n_envs, K, obs_dim]) -> actions [P, n_envs, K, act_dim]`` in [-1, 1]
        """

    def first_actions(self, obs0: th.Tensor, noise: th.Tensor, context: Any) -> th.Tensor:
        """Action at the current real state for each noise vector.

        :param obs0: ``[n_envs, obs_dim]``
        :param noise: ``[n_envs, K, noise_dim]``
        :return: ``[n_envs, K, act_dim]``
        """
        states = obs0.unsqueeze(0).unsqueeze(2).expand(1, -1, noise.shape[1], -1)
        return self.action_fn(noise, context, obs0.dtype)(0, states)[0]

    @th.no_grad()
    def plan(self, obs0: th.Tensor, mean: th.Tensor | None = None, generator: th.Generator | None = None) -> PlanOutput:
        """Plan one real step for every env.

        :param obs0: real observations ``[n_envs, obs_dim]``
        :param mean: warm start (:meth:`warm_start`, already shifted), None at the start of an episode
        :param generator: random generator for CEM samples and sampled propagation
        """
        # Inference mode: no autograd bookkeeping (version counters, view tracking) on the thousands of small ops of a
        # plan, a visible share of a small configuration's step on CPU. The outputs are cloned outside it into normal tensors,
        # which the caller may use anywhere (and which a later graph replay does not overwrite).
        with th.inference_mode():
            out = self._plan_or_replay(obs0, mean, generator)
        return type(out)(**{f.name: _clone(getattr(out, f.name)) for f in fields(out)})

    @th.no_grad()
    def score(self, obs0: th.Tensor, plan: th.Tensor, generator: th.Generator | None = None) -> th.Tensor:
        """The model's return over the horizon of each env's plan, rolled out as the search scored its candidates (see
        :mod:`sb3_poplin.common.exploitation`). Eager, outside a captured plan: one candidate's rollout.

        :param obs0: real observations ``[n_envs, obs_dim]``
        :param plan: the plans ``[n_envs, noise_dim]`` (``PlanOutput.mean``: what is executed)
        :param generator: random generator for sampled propagation
        :return: ``[n_envs]``
        """
        with th.inference_mode():
            action_fn = self.action_fn(plan.unsqueeze(1), self.prepare(obs0))
            return self.rollout.evaluate(obs0, 1, action_fn, generator)[:, 0].clone()

    def _plan_or_replay(self, obs0: th.Tensor, mean: th.Tensor | None, generator: th.Generator | None) -> PlanOutput:
        if self.cuda_graph and obs0.is_cuda and not self.optimizer.capturable:
            # A graph replays a fixed number of iterations; stopping early needs the host to read the shift.
            warnings.warn(
                "cuda_graph needs a fixed number of optimizer iterations: with cem_early_stop_tol > 0 the plan runs "
                "eagerly (set cem_early_stop_tol=0 to capture it)",
                stacklevel=3,
            )
            self.cuda_graph = False
        if self.cuda_graph and obs0.is_cuda:
            if mean is None:
                mean = self.initial_warm_start(obs0.shape[0], obs0.device)
            if self._captured is None or not self._captured.matches(self, obs0, mean, generator):
                self._captured = None  # free the previous graph's memory before capturing the next one
                self._captured = _CapturedPlan.capture(self, obs0, mean, generator)
            if self._captured is not None:
                return self._captured.replay(obs0, mean)
            self.cuda_graph = False  # capture failed (warned): plan eagerly from now on
        return self._plan(obs0, mean, generator)

    def _graph_tensors(self) -> list[th.Tensor]:
        """Every tensor a captured plan reads besides ``obs0`` and ``mean``: weights, normalisers, bounds.

        A graph replays on fixed addresses, so it is valid only while these tensors keep theirs (values may change in
        place, as an optimiser step does). Refreshes the ensemble's derived planning weights first, outside the graph.
        """
        tensors = [self.rollout.action_low, self.rollout.action_high]
        dynamics = self.rollout.dynamics
        planning_weights = getattr(dynamics, "_elite_layers", None)
        if planning_weights is not None:
            tensors += _flat_tensors(planning_weights())
        for module in (dynamics, getattr(self, "policy_net", None)):
            if isinstance(module, nn.Module):
                tensors += [*module.parameters(), *module.buffers()]
        return tensors

    def _plan(self, obs0: th.Tensor, mean: th.Tensor | None, generator: th.Generator | None) -> PlanOutput:
        """The plan itself, eager (what :meth:`plan` runs, or captures in a CUDA graph)."""
        n_envs = obs0.shape[0]
        if mean is None:  # an episode's first plan: the initial mean, nothing carried
            mean, carried = self.initial_mean(n_envs, obs0.device), None
        else:
            mean, carried = self.split_warm_start(mean)
        var = th.full_like(mean, self.init_sigma**2)
        context = self.prepare(obs0)
        lower, upper = self.bounds(obs0, context)

        def evaluate(noise: th.Tensor) -> th.Tensor:
            return self.rollout.evaluate(obs0, noise.shape[1], self.action_fn(noise, context), generator)

        steps = self.horizon if self.sequential else 1
        result = self.optimizer.optimize(evaluate, mean, var, lower, upper, generator, steps, carried)
        chosen = result.mean if self.return_mean else result.best
        search_mean = chosen if self.warm_from_executed else result.mean
        return self._output(
            obs0, chosen, result.elites, result.elite_returns, context, result.iterations, result.carried, search_mean
        )

    def _output(
        self,
        obs0: th.Tensor,
        chosen: th.Tensor,
        elites: th.Tensor,
        elite_returns: th.Tensor,
        context: Any,
        cem_iterations: int = 1,
        carried: th.Tensor | None = None,
        search_mean: th.Tensor | None = None,
    ) -> PlanOutput:
        action = self.first_actions(obs0, chosen.unsqueeze(1), context)[:, 0]
        # elites are sorted best first
        elite_first_actions = imagined_states = imagined_actions = None
        if self.elite_actions > 0:
            elite_first_actions = self.first_actions(obs0, elites[:, : self.elite_actions], context)
        if self.imagine_elites > 0:
            best = elites[:, : self.imagine_elites]
            imagined_states, imagined_actions = self.rollout.imagine(obs0, self.action_fn(best, context), best.shape[1])
        return PlanOutput(
            action=action,
            mean=chosen,
            executed_noise=chosen[:, : self.step_noise_dim],
            elite_first_actions=elite_first_actions,
            elite_returns=elite_returns,
            elite_noise=elites,
            imagined_states=imagined_states,
            imagined_actions=imagined_actions,
            cem_iterations=cem_iterations,
            carried=carried,
            search_mean=search_mean,
        )


def sequence_action_fn(sequence: th.Tensor) -> ActionFn:
    """Actions read from fixed sequences ``[n_envs, K, H, act_dim]``, the same for every particle."""

    def fn(t: int, states: th.Tensor) -> th.Tensor:
        return sequence[:, :, t].expand(states.shape[0], -1, -1, -1)

    return fn


@register_planner
class ActionSequencePlanner(Planner):
    """PETS: CEM directly over the action sequence in [-1, 1] (no policy network)."""

    name = "actions"

    @property
    def step_noise_dim(self) -> int:
        return self.act_dim

    def bounds(self, obs0: th.Tensor, context: Any) -> tuple[th.Tensor, th.Tensor]:
        ones = th.ones(self.noise_dim, device=obs0.device)
        return -ones, ones

    def action_fn(self, noise: th.Tensor, context: Any, dtype: th.dtype | None = None) -> ActionFn:
        n_envs, k, _ = noise.shape
        return sequence_action_fn(noise.view(n_envs, k, self.horizon, self.act_dim))


@register_planner
class RandomShootingPlanner(ActionSequencePlanner):
    """Random shooting: ``population_size`` action sequences drawn uniformly in [-1, 1], the best one is executed.

    One round, no refit and no warm start: the baseline that CEM-based planners must beat at equal budget.
    """

    name = "random"

    def _plan(self, obs0: th.Tensor, mean: th.Tensor | None, generator: th.Generator | None) -> PlanOutput:
        n_envs = obs0.shape[0]
        population = self.optimizer.population_size
        candidates = th.rand(n_envs, population, self.noise_dim, generator=generator, device=obs0.device) * 2.0 - 1.0
        returns = th.nan_to_num(
            self.rollout.evaluate(obs0, population, self.action_fn(candidates, None), generator), nan=-th.inf
        )
        elite_returns, elite_idx = th.topk(returns, self.optimizer.n_elites, dim=1)
        elites = th.gather(candidates, 1, elite_idx.unsqueeze(-1).expand(-1, -1, self.noise_dim))
        return self._output(obs0, elites[:, 0], elites, elite_returns, None)


class PolicyPlanner(Planner):
    """A planner around a policy network, in one of its named variants.

    :param rollout: evaluates candidates with the learned model
    :param optimizer: the trajectory optimizer
    :param act_dim: action size
    :param init_sigma: initial standard deviation of the noise distribution
    :param policy_net: the policy network (read at every planning step, so distillation takes effect at once)
    :param variant: one of :attr:`variants`
    :param return_mean: see :class:`Planner`
    :param cuda_graph: see :class:`Planner`
    """

    #: the variant names this planner accepts, the default first
    variants: tuple[str, ...] = ()
    #: the algorithm's name, for error messages
    algorithm: str = ""

    def __init__(
        self,
        rollout: ModelRollout,
        optimizer: Optimizer,
        act_dim: int,
        init_sigma: float,
        policy_net: PolicyNetwork,
        variant: str | None = None,
        return_mean: bool | None = None,
        cuda_graph: bool = False,
        compute_dtype: th.dtype = th.float32,
    ) -> None:
        variant = (variant or self.variants[0]).lower()
        if variant not in self.variants:
            raise ValueError(f"{self.algorithm} planning variant must be one of {self.variants}, got {variant!r}")
        self.variant = variant
        self.policy_net = policy_net
        super().__init__(rollout, optimizer, act_dim, init_sigma, return_mean, cuda_graph, compute_dtype)

    @classmethod
    def from_options(
        cls,
        rollout: ModelRollout,
        optimizer: Optimizer,
        act_dim: int,
        values: Mapping[str, Any],
        policy_net: PolicyNetwork | None = None,
    ) -> Planner:
        if policy_net is None:
            raise ValueError(f"the {cls.algorithm} planner needs the policy network it plans around")
        return cls(rollout, optimizer, act_dim, values["init_sigma"], policy_net, values["planning_variant"])

    def cast_parameters(self, like: th.Tensor, dtype: th.dtype | None = None) -> th.Tensor | None:
        """The policy's flat parameters ``[1, n_params]`` in the dtype its planning products run in on data like ``like``
        (``dtype``, None: :attr:`compute_dtype`), cast once per plan or CEM iteration; None when that is the data's own
        dtype and the network runs as it is."""
        dtype = self._matmul_dtype(like, dtype)
        return None if dtype == like.dtype else self.policy_net.flat_parameters().detach().to(dtype).unsqueeze(0)

    def policy_actions(self, states: th.Tensor, theta: th.Tensor | None) -> th.Tensor:
        """The policy's actions at imagined states.

        :param states: ``[..., obs_dim]``
        :param theta: :meth:`cast_parameters` (None: the network as it is)
        :return: ``[..., act_dim]`` in [-1, 1], in the states' dtype
        """
        if theta is None:
            return self.policy_net(states)
        flat = states.reshape(1, -1, states.shape[-1])  # [1, rows, obs_dim]: the parameters as one candidate
        return self.policy_net.forward_batched(flat, theta).view(*states.shape[:-1], -1)


@register_planner
class PolicyActionPlanner(PolicyPlanner):
    """POPLIN-A: noise on the policy's actions.

    ``init``: the policy proposes a reference sequence once, by rolling itself through the model (mean prediction);
    CEM optimises additive noise on that fixed sequence. ``replan``: at every imagined step the action is
    ``pi(s_t) + delta_t`` on the candidate's own current state. Actions are clipped to [-1, 1].

    :param policy_net: the policy network (read at every planning step, so distillation takes effect at once)
    :param variant: ``init`` or ``replan``
    :param return_mean: see :class:`Planner`
    :param cuda_graph: see :class:`Planner`
    """

    variants = ("init", "replan")
    algorithm = "POPLIN-A"
    name = "policy_actions"

    @classmethod
    def from_options(
        cls,
        rollout: ModelRollout,
        optimizer: Optimizer,
        act_dim: int,
        values: Mapping[str, Any],
        policy_net: PolicyNetwork | None = None,
    ) -> Planner:
        planner = super().from_options(rollout, optimizer, act_dim, values, policy_net)
        planner.elite_actions = min(max(values.get("bc_elite_actions", 0), 0), optimizer.n_elites)
        return planner

    @property
    def step_noise_dim(self) -> int:
        return self.act_dim

    def prepare(self, obs0: th.Tensor) -> th.Tensor | None:
        if self.variant == "replan":
            return None

        theta = self.cast_parameters(obs0)

        def follow_policy(t: int, states: th.Tensor) -> th.Tensor:
            return self.policy_actions(states, theta)

        _, reference = self.rollout.imagine(obs0, follow_policy)  # [n_envs, 1, H, act_dim]
        return reference.reshape(obs0.shape[0], -1)  # [n_envs, H * act_dim]

    def bounds(self, obs0: th.Tensor, context: th.Tensor | None) -> tuple[th.Tensor, th.Tensor]:
        # The noise spans at most the width of the action range; the action itself is clipped to [-1, 1].
        # Bounding the noise by the distance of the reference action to the action bounds (as PETS does for
        # plain actions) would pin the variance to ~0 wherever the tanh policy saturates, and CEM could never
        # move a saturated action back.
        two = th.full((self.noise_dim,), 2.0, device=obs0.device)
        return -two, two

    def action_fn(self, noise: th.Tensor, context: th.Tensor | None, dtype: th.dtype | None = None) -> ActionFn:
        n_envs, k, _ = noise.shape
        deltas = noise.view(n_envs, k, self.horizon, self.act_dim)
        if context is not None:
            reference = context.view(n_envs, 1, self.horizon, self.act_dim)
            return sequence_action_fn((reference + deltas).clamp(-1.0, 1.0))
        theta = self.cast_parameters(noise, dtype)

        def fn_replan(t: int, states: th.Tensor) -> th.Tensor:
            return (self.policy_actions(states, theta) + deltas[:, :, t]).clamp(-1.0, 1.0)

        return fn_replan


@register_planner
class PolicyParameterPlanner(PolicyPlanner):
    """POPLIN-P: noise on the policy network's parameters.

    ``uni``: one noise vector for the whole horizon (``|theta|`` numbers per candidate); ``sep``: one per step
    (``H x |theta|``). Every candidate's weights ``theta + omega`` are evaluated in one batched matmul per layer.

    :param policy_net: the policy network whose parameters are perturbed
    :param variant: ``uni`` or ``sep``
    :param return_mean: see :class:`Planner`
    :param cuda_graph: see :class:`Planner`
    """

    variants = ("sep", "uni")
    algorithm = "POPLIN-P"
    name = "policy_parameters"

    @property
    def sequential(self) -> bool:
        return self.variant == "sep"

    @property
    def step_noise_dim(self) -> int:
        return self.policy_net.n_params

    def prepare(self, obs0: th.Tensor) -> th.Tensor:
        return self.policy_net.flat_parameters().detach()  # theta [n_params]

    def action_fn(self, noise: th.Tensor, context: th.Tensor, dtype: th.dtype | None = None) -> ActionFn:
        n_envs, k, _ = noise.shape
        dtype = self._matmul_dtype(noise, dtype)
        if noise.device.type == "cpu":
            # Every candidate's products are tiny ([C, P, in] @ [C, in, out] with P = 1 under expectation): a CPU runs
            # them slower in bfloat16 than in float32, so the perturbed copies stay in the noise's dtype there; the
            # ensemble, the bulk of a step, still plans in ``compute_dtype``.
            dtype = noise.dtype
        # theta [n_params] and the noise in the policy's compute dtype: one cast per CEM iteration, not one per step
        theta = context.to(dtype)
        n_params = self.policy_net.n_params
        policy = self.policy_net
        if self.variant == "uni":
            weights = (noise + context).to(dtype).view(n_envs * k, n_params)  # [C, n_params], C = n_envs * K
        else:
            per_step = noise.to(dtype).view(n_envs, k, self.horizon, n_params)

        def fn(t: int, states: th.Tensor) -> th.Tensor:
            n_particles, obs_dim = states.shape[0], states.shape[-1]
            # [P, n_envs, K, obs] -> [C, P, obs]: rows grouped by candidate, one weight set each
            per_candidate = states.reshape(n_particles, n_envs * k, obs_dim).transpose(0, 1)
            if self.variant == "uni":
                actions = policy.forward_batched(per_candidate, weights)  # [C, P, act]
            else:
                # theta + this step's noise, without materialising the sum (see forward_batched's ``base``)
                actions = policy.forward_batched(per_candidate, per_step[:, :, t].reshape(n_envs * k, n_params), theta)
            return actions.transpose(0, 1).reshape(n_particles, n_envs, k, -1)

        return fn


def _flat_tensors(value: Any) -> list[th.Tensor]:
    """The tensors inside a tensor, a dataclass or a (nested) list/tuple of them."""
    if isinstance(value, th.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _flat_tensors(item)]
    if is_dataclass(value) and not isinstance(value, type):
        return [t for f in fields(value) for t in _flat_tensors(getattr(value, f.name))]
    return []


def _settings(obj: Any) -> tuple[tuple[str, Any], ...]:
    """The plain (number, string, bool, dtype) public attributes of an object: values a captured graph has baked in.

    Private attributes are bookkeeping (e.g. ``_captured``, None while capturing and set afterwards): counting them would
    make every call's key differ from the capture's and re-capture the plan at every step.
    """
    return tuple(
        sorted(
            (k, v)
            for k, v in vars(obj).items()
            if not k.startswith("_") and (isinstance(v, (bool, int, float, str, th.dtype)) or v is None)
        )
    )


class _CapturedPlan:
    """One planner's :meth:`Planner._plan` captured in a CUDA graph, with its static inputs and outputs.

    :param graph: the captured graph
    :param key: what the capture depends on (shapes, settings, generator, addresses of the tensors read)
    :param static_obs: the graph's observation input ``[n_envs, obs_dim]``
    :param static_mean: the graph's warm-start input ``[n_envs, noise_dim]``
    :param static_out: the graph's outputs (overwritten by every replay)
    :param generator: the generator registered with the graph (held, so its id cannot be reused by another one)
    """

    def __init__(
        self,
        graph: Any,
        key: tuple,
        static_obs: th.Tensor,
        static_mean: th.Tensor,
        static_out: PlanOutput,
        generator: th.Generator | None,
    ) -> None:
        self.graph = graph
        self.key = key
        self.static_obs = static_obs
        self.static_mean = static_mean
        self.static_out = static_out
        self.generator = generator

    @staticmethod
    def make_key(planner: Planner, obs0: th.Tensor, mean: th.Tensor, generator: th.Generator | None) -> tuple:
        tensors = planner._graph_tensors()
        layout = tuple((t.data_ptr(), tuple(t.shape), t.stride(), t.dtype) for t in tensors)
        inputs = (tuple(obs0.shape), obs0.dtype, obs0.device, tuple(mean.shape), mean.dtype)
        settings = (_settings(planner), _settings(planner.optimizer), _settings(planner.rollout))
        return inputs, id(generator), settings, layout

    def matches(self, planner: Planner, obs0: th.Tensor, mean: th.Tensor, generator: th.Generator | None) -> bool:
        return self.key == self.make_key(planner, obs0, mean, generator)

    @classmethod
    def capture(
        cls, planner: Planner, obs0: th.Tensor, mean: th.Tensor, generator: th.Generator | None
    ) -> _CapturedPlan | None:
        """Warm up, capture and return the graph, or None (with a warning) when this plan cannot be captured."""
        key = cls.make_key(planner, obs0, mean, generator)
        static_obs, static_mean = obs0.clone(), mean.clone()
        # Warm-up runs (lazy library initialisation must not happen during capture) draw random numbers: put the
        # generator back afterwards so that graph replays draw exactly what eager plans would have drawn.
        rng_state = generator.get_state() if generator is not None else th.cuda.get_rng_state(obs0.device)
        graph = th.cuda.CUDAGraph()
        try:
            side = th.cuda.Stream(obs0.device)
            side.wait_stream(th.cuda.current_stream(obs0.device))
            with th.cuda.stream(side):
                for _ in range(2):
                    planner._plan(static_obs, static_mean, generator)
            th.cuda.current_stream(obs0.device).wait_stream(side)
            th.cuda.synchronize(obs0.device)
            if generator is not None:
                generator.set_state(rng_state)
                register = getattr(graph, "register_generator_state", None)
                if register is None:
                    raise RuntimeError("this torch cannot register a user generator with a CUDA graph")
                register(generator)
            else:
                th.cuda.set_rng_state(rng_state, obs0.device)  # the default generator is registered by torch itself
            with th.cuda.graph(graph):
                static_out = planner._plan(static_obs, static_mean, generator)
        except Exception as error:  # any capture failure (an op that cannot be captured...) falls back to eager
            if generator is not None:
                generator.set_state(rng_state)
            else:
                th.cuda.set_rng_state(rng_state, obs0.device)
            warnings.warn(f"CUDA graph capture of the plan failed, planning eagerly instead: {error}", stacklevel=3)
            return None
        return cls(graph, key, static_obs, static_mean, static_out, generator)

    def replay(self, obs0: th.Tensor, mean: th.Tensor) -> PlanOutput:
        """Plan for new inputs; the outputs are the graph's static tensors (copy them before the next replay)."""
        self.static_obs.copy_(obs0)
        self.static_mean.copy_(mean)
        self.graph.replay()
        return self.static_out


def _clone(value: Any) -> Any:
    return value.clone() if isinstance(value, th.Tensor) else value
