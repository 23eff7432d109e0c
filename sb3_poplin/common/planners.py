"""What the CEM noise means: each planner maps a flat noise vector per candidate to the actions of a rollout.

- :class:`ActionSequencePlanner` (PETS): the noise is the action sequence itself.
- :class:`PolicyActionPlanner` (POPLIN-A): the noise is added to the policy's actions, either on a reference
  sequence proposed once by the policy (``init``) or on the policy's action at every imagined state (``replan``).
- :class:`PolicyParameterPlanner` (POPLIN-P): the noise is added to the policy's parameters, one vector for the
  whole horizon (``uni``) or one per step (``sep``); every candidate runs its own weights in one batched matmul.

A planner never imports the algorithm: the algorithm owns the planner and hands it the policy network.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch as th

from sb3_poplin.common.cem import CEMOptimizer
from sb3_poplin.common.policies import PolicyNetwork
from sb3_poplin.common.rollout import ActionFn, ModelRollout


@dataclass
class PlanOutput:
    """Result of planning one real step for every env.

    :param action: action to execute, in [-1, 1], ``[n_envs, act_dim]``
    :param mean: final CEM mean ``[n_envs, noise_dim]`` (the warm start of the next step)
    :param executed_noise: the noise of the executed step ``[n_envs, step_noise_dim]`` (stored in the replay buffer)
    :param elite_first_actions: first actions of the last iteration's elites ``[n_envs, n_elites, act_dim]``
    :param elite_returns: their predicted returns ``[n_envs, n_elites]``
    :param elite_noise: the elite candidates ``[n_envs, n_elites, noise_dim]``
    :param imagined_states: with ``imagine_elites > 0``: the best elites' imagined states ``[n_envs, k, H, obs_dim]``
    :param imagined_actions: and the actions taken there ``[n_envs, k, H, act_dim]`` (hallucinated distillation data)
    """

    action: th.Tensor
    mean: th.Tensor
    executed_noise: th.Tensor
    elite_first_actions: th.Tensor
    elite_returns: th.Tensor
    elite_noise: th.Tensor
    imagined_states: th.Tensor | None = None
    imagined_actions: th.Tensor | None = None


class Planner(ABC):
    """CEM planning around a parametrisation of the candidates.

    :param rollout: evaluates candidates with the learned model
    :param cem: the optimiser
    :param act_dim: action size
    :param init_sigma: initial standard deviation of the noise distribution
    :param return_mean: execute the CEM mean (True, POPLIN/PETS) or the best sample of the last iteration (random shooting)
    """

    #: True when the noise is a sequence over the horizon that is shifted by one step to warm-start the next plan
    sequential: bool = True

    def __init__(
        self, rollout: ModelRollout, cem: CEMOptimizer, act_dim: int, init_sigma: float, return_mean: bool = True
    ) -> None:
        self.rollout = rollout
        self.cem = cem
        self.act_dim = act_dim
        self.horizon = rollout.horizon
        self.init_sigma = init_sigma
        self.return_mean = return_mean
        #: how many of the best elites to roll out once more (mean prediction) for hallucinated distillation data
        self.imagine_elites = 0

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

    def warm_start(self, mean: th.Tensor) -> th.Tensor:
        """Next step's initial mean from this step's final one: drop the executed step, append a fresh one."""
        if not self.sequential:
            return mean
        fresh = self.initial_mean(mean.shape[0], mean.device)[:, : self.step_noise_dim]
        return th.cat([mean[:, self.step_noise_dim :], fresh], dim=1)

    def prepare(self, obs0: th.Tensor) -> Any:
        """Per-step context shared by all candidates and iterations (e.g. a reference action sequence)."""
        return None

    def bounds(self, obs0: th.Tensor, context: Any) -> tuple[th.Tensor | None, th.Tensor | None]:
        """Bounds of the noise, broadcastable to ``[n_envs, noise_dim]`` (None when unbounded)."""
        return None, None

    @abstractmethod
    def action_fn(self, noise: th.Tensor, context: Any) -> ActionFn:
        """Actions of candidates given their noise.

        :param noise: ``[n_envs, K, noise_dim]``
        :return: ``(t, states [P, n_envs, K, obs_dim]) -> actions [P, n_envs, K, act_dim]`` in [-1, 1]
        """

    def first_actions(self, obs0: th.Tensor, noise: th.Tensor, context: Any) -> th.Tensor:
        """Action at the current real state for each noise vector.

        :param obs0: ``[n_envs, obs_dim]``
        :param noise: ``[n_envs, K, noise_dim]``
        :return: ``[n_envs, K, act_dim]``
        """
        states = obs0.unsqueeze(0).unsqueeze(2).expand(1, -1, noise.shape[1], -1)
        return self.action_fn(noise, context)(0, states)[0]

    @th.no_grad()
    def plan(self, obs0: th.Tensor, mean: th.Tensor | None = None, generator: th.Generator | None = None) -> PlanOutput:
        """Plan one real step for every env.

        :param obs0: real observations ``[n_envs, obs_dim]``
        :param mean: warm-start mean ``[n_envs, noise_dim]`` (already shifted), None at the start of an episode
        :param generator: random generator for CEM samples and sampled propagation
        """
        n_envs = obs0.shape[0]
        if mean is None:
            mean = self.initial_mean(n_envs, obs0.device)
        var = th.full_like(mean, self.init_sigma**2)
        context = self.prepare(obs0)
        lower, upper = self.bounds(obs0, context)
        population = self.cem.population_size

        def evaluate(noise: th.Tensor) -> th.Tensor:
            return self.rollout.evaluate(obs0, population, self.action_fn(noise, context), generator)

        result = self.cem.optimize(evaluate, mean, var, lower, upper, generator)
        chosen = result.mean if self.return_mean else result.best
        return self._output(obs0, chosen, result.elites, result.elite_returns, context)

    def _output(
        self, obs0: th.Tensor, chosen: th.Tensor, elites: th.Tensor, elite_returns: th.Tensor, context: Any
    ) -> PlanOutput:
        action = self.first_actions(obs0, chosen.unsqueeze(1), context)[:, 0]
        imagined_states = imagined_actions = None
        if self.imagine_elites > 0:
            best = elites[:, : self.imagine_elites]  # elites are sorted best first
            imagined_states, imagined_actions = self.rollout.imagine(obs0, self.action_fn(best, context), best.shape[1])
        return PlanOutput(
            action=action,
            mean=chosen,
            executed_noise=chosen[:, : self.step_noise_dim],
            elite_first_actions=self.first_actions(obs0, elites, context),
            elite_returns=elite_returns,
            elite_noise=elites,
            imagined_states=imagined_states,
            imagined_actions=imagined_actions,
        )


class ActionSequencePlanner(Planner):
    """PETS: CEM directly over the action sequence in [-1, 1] (no policy network)."""

    @property
    def step_noise_dim(self) -> int:
        return self.act_dim

    def bounds(self, obs0: th.Tensor, context: Any) -> tuple[th.Tensor, th.Tensor]:
        ones = th.ones(self.noise_dim, device=obs0.device)
        return -ones, ones

    def action_fn(self, noise: th.Tensor, context: Any) -> ActionFn:
        n_envs, k, _ = noise.shape
        sequence = noise.view(n_envs, k, self.horizon, self.act_dim)

        def fn(t: int, states: th.Tensor) -> th.Tensor:
            return sequence[:, :, t].expand(states.shape[0], -1, -1, -1)

        return fn


class RandomShootingPlanner(ActionSequencePlanner):
    """Random shooting: ``population_size`` action sequences drawn uniformly in [-1, 1], the best one is executed.

    One round, no refit and no warm start: the baseline that CEM-based planners must beat at equal budget.
    """

    sequential = True

    def warm_start(self, mean: th.Tensor) -> th.Tensor:
        return mean  # unused: every step draws afresh

    @th.no_grad()
    def plan(self, obs0: th.Tensor, mean: th.Tensor | None = None, generator: th.Generator | None = None) -> PlanOutput:
        n_envs = obs0.shape[0]
        population = self.cem.population_size
        candidates = th.rand(n_envs, population, self.noise_dim, generator=generator, device=obs0.device) * 2.0 - 1.0
        returns = th.nan_to_num(
            self.rollout.evaluate(obs0, population, self.action_fn(candidates, None), generator), nan=-th.inf
        )
        elite_returns, elite_idx = th.topk(returns, self.cem.n_elites, dim=1)
        elites = th.gather(candidates, 1, elite_idx.unsqueeze(-1).expand(-1, -1, self.noise_dim))
        return self._output(obs0, elites[:, 0], elites, elite_returns, None)


class PolicyActionPlanner(Planner):
    """POPLIN-A: noise on the policy's actions.

    ``init``: the policy proposes a reference sequence once, by rolling itself through the model (mean prediction);
    CEM optimises additive noise on that fixed sequence. ``replan``: at every imagined step the action is
    ``pi(s_t) + delta_t`` on the candidate's own current state. Actions are clipped to [-1, 1].

    :param policy_net: the policy network (read at every planning step, so distillation takes effect at once)
    :param variant: ``init`` or ``replan``
    """

    def __init__(
        self,
        rollout: ModelRollout,
        cem: CEMOptimizer,
        act_dim: int,
        init_sigma: float,
        policy_net: PolicyNetwork,
        variant: str = "init",
        return_mean: bool = True,
    ) -> None:
        super().__init__(rollout, cem, act_dim, init_sigma, return_mean)
        variant = variant.lower()
        if variant not in ("init", "replan"):
            raise ValueError(f"POPLIN-A planning variant must be 'init' or 'replan', got {variant!r}")
        self.variant = variant
        self.policy_net = policy_net

    @property
    def step_noise_dim(self) -> int:
        return self.act_dim

    def prepare(self, obs0: th.Tensor) -> th.Tensor | None:
        if self.variant == "replan":
            return None
        policy = self.policy_net

        def follow_policy(t: int, states: th.Tensor) -> th.Tensor:
            return policy(states)

        _, reference = self.rollout.imagine(obs0, follow_policy)  # [n_envs, 1, H, act_dim]
        return reference.reshape(obs0.shape[0], -1)  # [n_envs, H * act_dim]

    def bounds(self, obs0: th.Tensor, context: th.Tensor | None) -> tuple[th.Tensor, th.Tensor]:
        # The noise spans at most the width of the action range; the action itself is clipped to [-1, 1].
        # Bounding the noise by the distance of the reference action to the action bounds (as PETS does for
        # plain actions) would pin the variance to ~0 wherever the tanh policy saturates, and CEM could never
        # move a saturated action back.
        two = th.full((self.noise_dim,), 2.0, device=obs0.device)
        return -two, two

    def action_fn(self, noise: th.Tensor, context: th.Tensor | None) -> ActionFn:
        n_envs, k, _ = noise.shape
        deltas = noise.view(n_envs, k, self.horizon, self.act_dim)
        if context is not None:
            reference = context.view(n_envs, 1, self.horizon, self.act_dim)
            sequence = (reference + deltas).clamp(-1.0, 1.0)

            def fn_init(t: int, states: th.Tensor) -> th.Tensor:
                return sequence[:, :, t].expand(states.shape[0], -1, -1, -1)

            return fn_init
        policy = self.policy_net

        def fn_replan(t: int, states: th.Tensor) -> th.Tensor:
            return (policy(states) + deltas[:, :, t]).clamp(-1.0, 1.0)

        return fn_replan


class PolicyParameterPlanner(Planner):
    """POPLIN-P: noise on the policy network's parameters.

    ``uni``: one noise vector for the whole horizon (``|theta|`` numbers per candidate); ``sep``: one per step
    (``H x |theta|``). Every candidate's weights ``theta + omega`` are evaluated in one batched matmul per layer.

    :param policy_net: the policy network whose parameters are perturbed
    :param variant: ``uni`` or ``sep``
    """

    def __init__(
        self,
        rollout: ModelRollout,
        cem: CEMOptimizer,
        act_dim: int,
        init_sigma: float,
        policy_net: PolicyNetwork,
        variant: str = "sep",
        return_mean: bool = True,
    ) -> None:
        variant = variant.lower()
        if variant not in ("uni", "sep"):
            raise ValueError(f"POPLIN-P planning variant must be 'uni' or 'sep', got {variant!r}")
        self.variant = variant
        self.sequential = variant == "sep"
        self.policy_net = policy_net
        super().__init__(rollout, cem, act_dim, init_sigma, return_mean)

    @property
    def step_noise_dim(self) -> int:
        return self.policy_net.n_params

    def prepare(self, obs0: th.Tensor) -> th.Tensor:
        return self.policy_net.flat_parameters().detach()  # theta [n_params]

    def action_fn(self, noise: th.Tensor, context: th.Tensor) -> ActionFn:
        n_envs, k, _ = noise.shape
        theta = context
        n_params = self.policy_net.n_params
        policy = self.policy_net
        if self.variant == "uni":
            weights = (noise + theta).view(n_envs * k, n_params)  # [C, n_params], C = n_envs * K
        else:
            per_step = noise.view(n_envs, k, self.horizon, n_params)

        def fn(t: int, states: th.Tensor) -> th.Tensor:
            step_weights = weights if self.variant == "uni" else (per_step[:, :, t] + theta).view(n_envs * k, n_params)
            n_particles, obs_dim = states.shape[0], states.shape[-1]
            # [P, n_envs, K, obs] -> [C, P, obs]: rows grouped by candidate, one weight set each
            per_candidate = states.reshape(n_particles, n_envs * k, obs_dim).transpose(0, 1)
            actions = policy.forward_batched(per_candidate, step_weights)  # [C, P, act]
            return actions.transpose(0, 1).reshape(n_particles, n_envs, k, -1)

        return fn
