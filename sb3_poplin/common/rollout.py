"""Imagined trajectories through the learned ensemble: particles, propagation and predicted returns.

Layout: imagined states are kept as ``[P, n_envs, pop, obs_dim]`` with the particle axis outermost, so that
the rows that share an ensemble member are contiguous and the member-batched call needs no copies.
"""

from __future__ import annotations

from collections.abc import Callable

import torch as th

from sb3_poplin.common.dynamics import ProbabilisticEnsemble
from sb3_poplin.common.processing import DeltaProcessing, DynamicsProcessing
from sb3_poplin.common.type_aliases import RewardFn, TerminationFn

PROPAGATIONS = ("expectation", "fixed_model", "random_model")
PROPAGATION_ALIASES = {"E": "expectation", "TSinf": "fixed_model", "TS1": "random_model"}

# (t, states [P, n_envs, pop, obs_dim]) -> actions in [-1, 1], [P, n_envs, pop, act_dim]
ActionFn = Callable[[int, th.Tensor], th.Tensor]


def canonical_propagation(name: str) -> str:
    """Map ``E`` / ``TSinf`` / ``TS1`` (the PETS names) or the long names to the long names."""
    name = PROPAGATION_ALIASES.get(name, name)
    if name not in PROPAGATIONS:
        raise ValueError(f"Unknown propagation {name!r}; choose one of {PROPAGATIONS} or their PETS names E, TSinf, TS1")
    return name


class ModelRollout:
    """Predicts the return of candidate action generators by rolling them through the ensemble.

    Propagation of particles (PETS):
    - ``expectation`` (E): one particle per candidate, the next state is the mean prediction averaged over the
      elite members, no sampling (what the POPLIN paper used);
    - ``fixed_model`` (TSinf): ``num_particles`` sampled particles, each bound to one member for the whole horizon;
    - ``random_model`` (TS1): sampled particles that switch to a random member at every step.

    A particle whose episode terminates inside the horizon stops collecting reward.

    :param dynamics: the ensemble; it reads ``processing.model_input(obs)`` and the action, and predicts
        ``processing.target`` (plus a reward column when ``learned_reward``)
    :param reward_fn: ``r(obs, action, next_obs)`` with actions in env units, or None with ``learned_reward``
    :param termination_fn: ``done(obs, action, next_obs)``, or None for a task that never terminates
    :param horizon: planning horizon
    :param action_low: lower action bounds in env units ``[act_dim]``
    :param action_high: upper action bounds in env units ``[act_dim]``
    :param propagation: ``expectation``, ``fixed_model`` or ``random_model`` (or E, TSinf, TS1)
    :param num_particles: particles per candidate (a multiple of the number of elite members for sampled propagation)
    :param learned_reward: read the reward from the ensemble's last output instead of ``reward_fn``
    :param pessimism: score a candidate by the mean of its particles' returns minus ``pessimism`` times their standard
        deviation (0: the mean, as PETS). With ``fixed_model`` propagation the particles are the members, so the
        penalty is the members' disagreement about the candidate's return: plans that only one member believes in lose.
        Needs at least two particles.
    :param processing: what the model reads and predicts (default: the raw observation and its change)
    """

    def __init__(
        self,
        dynamics: ProbabilisticEnsemble,
        reward_fn: RewardFn | None,
        termination_fn: TerminationFn | None,
        horizon: int,
        action_low: th.Tensor,
        action_high: th.Tensor,
        propagation: str = "expectation",
        num_particles: int = 1,
        learned_reward: bool = False,
        pessimism: float = 0.0,
        processing: DynamicsProcessing | None = None,
    ) -> None:
        self.dynamics = dynamics
        self.processing = DeltaProcessing() if processing is None else processing
        # The default processing costs nothing: the planner then concatenates and adds as it always did.
        self._identity = self.processing.is_identity
        self.reward_fn = reward_fn
        self.termination_fn = termination_fn
        self.horizon = horizon
        self.propagation = canonical_propagation(propagation)
        self.learned_reward = learned_reward
        if reward_fn is None and not learned_reward:
            raise ValueError("A rollout needs a reward_fn or learned_reward=True")
        n_elite_members = dynamics.n_elite_members
        if self.propagation == "expectation":
            num_particles = 1
        elif num_particles % n_elite_members != 0:
            raise ValueError(
                f"num_particles={num_particles} must be a multiple of the number of elite members ({n_elite_members}) "
                f"for {self.propagation!r} propagation"
            )
        if pessimism < 0.0:
            raise ValueError(f"pessimism must be >= 0, got {pessimism}")
        if pessimism > 0.0 and num_particles < 2:
            raise ValueError(
                "pessimism > 0 penalises the spread of the particles' returns and needs at least two particles: "
                "use propagation='fixed_model' (TSinf) with num_particles a multiple of the elite members"
            )
        self.pessimism = pessimism
        self.num_particles = num_particles
        self.action_low = action_low
        self.action_high = action_high
        self.obs_dim = dynamics.out_dim - (1 if learned_reward else 0)

    def unscale_action(self, action: th.Tensor) -> th.Tensor:
        """[-1, 1] -> env units."""
        return self.action_low + 0.5 * (action + 1.0) * (self.action_high - self.action_low)

    def mean_prediction(self, inputs: th.Tensor) -> th.Tensor:
        """Mean prediction of the elite members, averaged over them, all on the same rows.

        :param inputs: ``[R, in_dim]`` (obs and action in [-1, 1])
        :return: ``[R, out_dim]``
        """
        fast = getattr(self.dynamics, "forward_elites_mean", None)
        if fast is not None:
            return fast(inputs)
        # Any model with the planning interface (``forward_elites`` and ``n_elite_members``) works, only slower.
        mean, _ = self.dynamics.forward_elites(inputs.unsqueeze(0).expand(self.dynamics.n_elite_members, -1, -1))
        return mean.mean(dim=0)

    @staticmethod
    def _permutation(n: int, device: th.device, generator: th.Generator | None) -> th.Tensor:
        """A random permutation of ``n`` rows drawn on ``device`` (no host-device copy, so it can be graph-captured)."""
        if device.type == "cpu":
            return th.randperm(n, generator=generator)
        # On an accelerator the generator lives there too; sorting uniform keys is capturable in a CUDA graph.
        return th.argsort(th.rand(n, generator=generator, device=device))

    def model_inputs(self, obs: th.Tensor, action: th.Tensor) -> th.Tensor:
        """What the model reads: ``[..., input_dim + act_dim]`` from ``obs [..., obs_dim]`` and ``action [..., act_dim]``."""
        return th.cat([obs if self._identity else self.processing.model_input(obs), action], dim=-1)

    def next_observation(self, obs: th.Tensor, prediction: th.Tensor) -> th.Tensor:
        """The next observation ``[..., obs_dim]`` a prediction ``[..., obs_dim]`` (the target part) stands for."""
        return obs + prediction if self._identity else self.processing.next_observation(obs, prediction)

    def predict_next(
        self, obs: th.Tensor, action: th.Tensor, generator: th.Generator | None = None
    ) -> tuple[th.Tensor, th.Tensor | None]:
        """One imagined step for every particle.

        :param obs: ``[P, R, obs_dim]`` (R rows per particle)
        :param action: ``[P, R, act_dim]`` in [-1, 1]
        :return: next states ``[P, R, obs_dim]`` and the learned reward ``[P, R]`` (None without a reward head)
        """
        n_particles, rows, _ = obs.shape
        n_elite_members = self.dynamics.n_elite_members
        inputs = self.model_inputs(obs, action)
        if self.propagation == "expectation":
            # [1, R, in] -> every elite on the same rows, then average their means: [1, R, out]
            out = self.mean_prediction(inputs.view(n_particles * rows, -1)).view(n_particles, rows, -1)
        else:
            if self.propagation == "random_model":
                # A fresh random member per particle and step: permute the flat rows, split them evenly over members.
                flat = inputs.reshape(n_particles * rows, -1)
                perm = self._permutation(flat.shape[0], flat.device, generator)
                member_inputs = flat[perm].view(n_elite_members, -1, flat.shape[-1])
            else:
                # Particle p uses member p // (P / E) for the whole horizon: a free view.
                member_inputs = inputs.view(n_elite_members, -1, inputs.shape[-1])
            mean, logvar = self.dynamics.forward_elites(member_inputs)
            noise = th.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
            out = mean + noise * th.exp(0.5 * logvar)
            out = out.reshape(n_particles * rows, -1)
            if self.propagation == "random_model":
                unpermuted = th.empty_like(out)
                unpermuted[perm] = out
                out = unpermuted
            out = out.view(n_particles, rows, -1)
        next_obs = self.next_observation(obs, out[..., : self.obs_dim])
        reward = out[..., self.obs_dim] if self.learned_reward else None
        return next_obs, reward

    @th.no_grad()
    def evaluate(
        self,
        obs0: th.Tensor,
        population: int,
        action_fn: ActionFn,
        generator: th.Generator | None = None,
    ) -> th.Tensor:
        """Predicted return of every candidate, averaged over its particles.

        :param obs0: current real observations ``[n_envs, obs_dim]``
        :param population: candidates per env
        :param action_fn: ``(t, states [P, n_envs, pop, obs_dim]) -> actions [P, n_envs, pop, act_dim]`` in [-1, 1]
        :param generator: random generator for sampled propagation
        :return: ``[n_envs, pop]`` (mean over particles, less ``pessimism`` times their standard deviation)
        """
        n_envs, obs_dim = obs0.shape
        n_particles = self.num_particles
        obs = obs0.view(1, n_envs, 1, obs_dim).expand(n_particles, n_envs, population, obs_dim)
        returns = obs0.new_zeros(n_particles, n_envs, population)
        alive = th.ones(n_particles, n_envs, population, dtype=th.bool, device=obs0.device)
        for t in range(self.horizon):
            action = action_fn(t, obs)
            flat_obs = obs.reshape(n_particles, n_envs * population, obs_dim)
            flat_action = action.reshape(n_particles, n_envs * population, -1)
            next_obs, learned = self.predict_next(flat_obs, flat_action, generator)
            next_obs = next_obs.view(n_particles, n_envs, population, obs_dim)
            env_action = self.unscale_action(action) if learned is None or self.termination_fn is not None else action
            if learned is not None:
                reward = learned.view(n_particles, n_envs, population)
            else:
                assert self.reward_fn is not None
                reward = self.reward_fn(obs, env_action, next_obs)
            if self.termination_fn is not None:
                returns = returns + reward * alive
                alive = alive & ~self.termination_fn(obs, env_action, next_obs)
            else:
                returns = returns + reward  # nothing ever terminates: skip the mask
            obs = next_obs
        if self.pessimism > 0.0:
            # returns: [P, n_envs, pop]; the spread over particles (members under TSinf) is the model's disagreement
            std, mean = th.std_mean(returns, dim=0)
            return mean - self.pessimism * std
        return returns.mean(dim=0)

    @th.no_grad()
    def imagine(self, obs0: th.Tensor, action_fn: ActionFn, n_candidates: int = 1) -> tuple[th.Tensor, th.Tensor]:
        """Mean-prediction trajectories (reference action sequences, hallucinated distillation data).

        :param obs0: ``[n_envs, obs_dim]``
        :param action_fn: as in :meth:`evaluate`, called with states ``[1, n_envs, n_candidates, obs_dim]``
        :param n_candidates: trajectories per env
        :return: states ``[n_envs, n_candidates, H, obs_dim]`` (s_0 .. s_{H-1}) and actions
            ``[n_envs, n_candidates, H, act_dim]``
        """
        n_envs, obs_dim = obs0.shape
        obs = obs0.view(1, n_envs, 1, obs_dim).expand(1, n_envs, n_candidates, obs_dim)
        states, actions = [], []
        for t in range(self.horizon):
            action = action_fn(t, obs)
            states.append(obs[0])
            actions.append(action[0])
            mean = self.mean_prediction(self.model_inputs(obs, action).view(n_envs * n_candidates, -1))
            obs = self.next_observation(obs, mean[:, :obs_dim].view(1, n_envs, n_candidates, obs_dim))
        return th.stack(states, dim=2), th.stack(actions, dim=2)
