"""The planning engine: the learned model, the rollout through it, the optimizer, the planner, the distillation and the
statistics of the plans, built by one function (:func:`build_engine`) from an algorithm's option values and what it
knows of its env (:class:`EnvBinding`).

The algorithms (:mod:`sb3_poplin.common.base`) own an engine and keep SB3's hooks; the benchmarks build theirs with the
same function, so what they time is what the algorithms plan with.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch as th

# The optimizers register themselves by name (sb3_poplin.common.optimizers) when their modules are imported.
from sb3_poplin.common import cem as _cem  # noqa: F401
from sb3_poplin.common import icem as _icem  # noqa: F401
from sb3_poplin.common.distillation import Distillation, DistillationContext, distillation_class
from sb3_poplin.common.dynamics import ProbabilisticEnsemble, TerminationClassifier, make_adam
from sb3_poplin.common.exploitation import ExploitationMonitor
from sb3_poplin.common.optimizers import Optimizer, optimizer_class
from sb3_poplin.common.planners import Planner, PlanOutput, planner_class
from sb3_poplin.common.policies import PolicyNetwork
from sb3_poplin.common.precision import planning_torch_dtype
from sb3_poplin.common.processing import DynamicsProcessing
from sb3_poplin.common.rollout import ModelRollout
from sb3_poplin.common.type_aliases import RewardFn, TerminationFn


@dataclass
class EnvBinding:
    """What the engine knows of the env and the task it plans for.

    :param obs_dim: observation size
    :param act_dim: flat action size
    :param action_low: the action space's lower bounds ``[act_dim]``
    :param action_high: its upper bounds ``[act_dim]``
    :param reward_fn: the reward the planner scores with (None: learned by the ensemble)
    :param termination_fn: the termination (None: never, or learned when ``learned_termination``)
    :param processing: what the model reads and predicts
    :param ignored_inputs: observation indices the model does not read
    :param learned_termination: whether a classifier learns the termination
    :param device: where everything lives
    :param n_envs: environments planned for at once
    :param seed: the algorithm's seed (for state derived from it, e.g. CEM's noise table)
    """

    obs_dim: int
    act_dim: int
    action_low: th.Tensor
    action_high: th.Tensor
    reward_fn: RewardFn | None
    termination_fn: TerminationFn | None
    processing: DynamicsProcessing
    ignored_inputs: tuple[int, ...] = ()
    learned_termination: bool = False
    device: th.device = field(default_factory=lambda: th.device("cpu"))
    n_envs: int = 1
    seed: int | None = None

    @property
    def learned_reward(self) -> bool:
        """Whether the ensemble predicts the reward (an extra output column)."""
        return self.reward_fn is None


class PlanningEngine:
    """An algorithm's planning machinery (see :func:`build_engine`), with the statistics of its plans and fits.

    :param dynamics: the ensemble (its ``optimizer`` attached)
    :param termination_model: the termination classifier, where termination is learned
    :param rollout: candidates' returns through the ensemble
    :param planner: what the noise means, around the optimizer
    :param distiller: the policy's distillation scheme (None: no policy network to distil)
    :param n_envs: environments planned for at once
    """

    def __init__(
        self,
        dynamics: ProbabilisticEnsemble,
        termination_model: TerminationClassifier | None,
        rollout: ModelRollout,
        planner: Planner,
        distiller: Distillation | None,
        n_envs: int,
    ) -> None:
        self.dynamics = dynamics
        self.termination_model = termination_model
        self.rollout = rollout
        self.planner = planner
        self.distiller = distiller
        #: executed plans' predicted returns against the env's over the same steps (:mod:`.exploitation`)
        self.exploitation = ExploitationMonitor(rollout.horizon, n_envs)
        #: seconds of the latest plans, and the optimizer iterations they ran (fewer than configured when CEM stopped early)
        self.plan_times: deque[float] = deque(maxlen=1000)
        self.plan_iterations: deque[int] = deque(maxlen=1000)

    @property
    def optimizer(self) -> Optimizer:
        return self.planner.optimizer

    @property
    def device(self) -> th.device:
        return self.rollout.action_low.device

    def plan(self, obs: th.Tensor, warm_start: th.Tensor | None, generator: th.Generator | None) -> PlanOutput:
        """Plan one step for ``obs [n_envs, obs_dim]`` from a warm start (None: an episode's first plan), timed."""
        start = time.perf_counter()
        out = self.planner.plan(obs, warm_start, generator)
        if obs.device.type == "cuda":
            th.cuda.synchronize(obs.device)
        self.plan_times.append(time.perf_counter() - start)
        self.plan_iterations.append(out.cem_iterations)
        return out

    def dynamics_dataset(
        self, obs: th.Tensor, actions: th.Tensor, next_obs: th.Tensor, rewards: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor]:
        """Model inputs ``[N, input_dim + act_dim]`` and targets ``[N, obs_dim (+ 1 with a learned reward)]``."""
        targets = self.rollout.processing.target(obs, next_obs)
        if self.rollout.learned_reward:
            targets = th.cat([targets, rewards.reshape(-1, 1)], dim=1)
        return self.rollout.model_inputs(obs, actions), targets

    def fit_model(self, data: Mapping[str, np.ndarray], generator: th.Generator | None, **fit_kwargs: Any) -> dict[str, float]:
        """Fit the ensemble (and the termination classifier) on transitions.

        :param data: the replay buffer's transitions (``observations``, ``actions``, ``next_observations``, ``rewards``,
            ``dones``)
        :param generator: random generator of the fits
        :param fit_kwargs: :meth:`ProbabilisticEnsemble.fit`'s settings
        :return: what the fits report, ``termination_*`` and ``reward_mse`` included where they apply
        """

        def tensor(key: str) -> th.Tensor:
            return th.as_tensor(data[key], dtype=th.float32, device=self.device)

        inputs, targets = self.dynamics_dataset(
            tensor("observations"), tensor("actions"), tensor("next_observations"), tensor("rewards")
        )
        assert self.dynamics.optimizer is not None
        info = self.dynamics.fit(inputs, targets, self.dynamics.optimizer, generator=generator, **fit_kwargs)
        if self.termination_model is not None:
            assert self.termination_model.optimizer is not None
            dones = tensor("dones").reshape(-1)
            info |= self.termination_model.fit(
                tensor("next_observations"), dones, self.termination_model.optimizer, generator=generator
            )
        if self.rollout.learned_reward:
            with th.no_grad():
                mean, _ = self.dynamics.forward_elites(inputs.unsqueeze(0).expand(self.dynamics.n_elite_members, -1, -1))
                info["reward_mse"] = ((mean.mean(0)[:, -1] - targets[:, -1]) ** 2).mean().item()
        return info


def build_engine(
    values: Mapping[str, Any],
    binding: EnvBinding,
    planner: str,
    policy_net: PolicyNetwork | None = None,
    train_generator: th.Generator | None = None,
) -> PlanningEngine:
    """The engine an algorithm's option values describe, for an env.

    :param values: every option's checked value, by name (:func:`sb3_poplin.common.options.resolve` gives them)
    :param binding: the env and task
    :param planner: the registered planner's name (:data:`sb3_poplin.common.planners.PLANNERS`)
    :param policy_net: the policy network the planner searches around (the algorithms that have one); a
        ``distillation`` among ``values`` builds its scheme too
    :param train_generator: random generator of the distillation's training
    """
    device = binding.device
    dynamics = ProbabilisticEnsemble(
        in_dim=binding.processing.input_dim(binding.obs_dim) + binding.act_dim,
        out_dim=binding.obs_dim + (1 if binding.learned_reward else 0),  # a reward column when it is learned
        n_members=values["ensemble_size"],
        hidden_sizes=values["dynamics_net_arch"],
        activation=values["dynamics_activation"],
        weight_decays=values["dynamics_weight_decay"],
        n_elite_members=values["n_elite_members"],
        # A processing of the user's decides itself what the model reads.
        ignored_inputs=binding.ignored_inputs if binding.processing.is_identity else (),
    ).to(device)
    dynamics.optimizer = make_adam(
        dynamics.parameters(), lr=values["dynamics_learning_rate"], **(values["dynamics_optimizer_kwargs"] or {})
    )
    termination_fn = binding.termination_fn
    termination_model = None
    if binding.learned_termination:
        termination_model = TerminationClassifier(binding.obs_dim).to(device)
        termination_model.optimizer = make_adam(termination_model.parameters(), lr=1e-3)
        termination_fn = termination_model.termination_fn
    rollout = ModelRollout(
        dynamics,
        binding.reward_fn,
        termination_fn,
        horizon=values["horizon"],
        action_low=binding.action_low.to(device, th.float32).reshape(-1),
        action_high=binding.action_high.to(device, th.float32).reshape(-1),
        propagation=values["propagation"],
        num_particles=values["num_particles"],
        learned_reward=binding.learned_reward,
        pessimism=values["pessimism"],
        processing=binding.processing,
    )
    optimizer_type = optimizer_class(values["optimizer"])
    optimizer = optimizer_type.from_options(values, binding.seed)
    built = planner_class(planner).from_options(rollout, optimizer, binding.act_dim, values, policy_net)
    optimizer.check_noise_dim(built.noise_dim)
    dtype = planning_torch_dtype(values["planning_dtype"], device)
    dynamics.planning_dtype = dtype
    built.compute_dtype = dtype
    built.return_mean = (values["cem_execute"] or optimizer_type.default_execute) == "mean"
    built.cuda_graph = device.type == "cuda" if values["cuda_graph"] is None else bool(values["cuda_graph"])
    distiller = None
    if "distillation" in values:
        context = DistillationContext(binding.obs_dim, binding.act_dim, device, train_generator, values["init_sigma"])
        distiller = distillation_class(values["distillation"]).from_options(values, context)
        distiller.whitening = values["policy_whitening"]
        if values["distillation_data"] == "hallucination":
            built.imagine_elites = min(values["hallucination_elites"], values["n_elites"])
    return PlanningEngine(dynamics, termination_model, rollout, built, distiller, binding.n_envs)


__all__ = ["EnvBinding", "PlanningEngine", "build_engine"]
