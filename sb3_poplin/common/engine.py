"""The planning engine: the learned model, the rollout through it, the optimizer, the planner, the distillation and the
statistics of the plans, built by one function (:func:`build_engine`) from an algorithm's option values and what it
knows of its env (:class:`EnvBinding`).

The algorithms (:mod:`sb3_poplin.common.base`) own an engine and keep SB3's hooks; the benchmarks build theirs with the
same function, so what they time is what the algorithms plan with.
"""

from __future__ import annotations

import math
import operator
import time
import zlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Generic, Protocol, TypeVar, overload

import numpy as np
import torch as th

# The optimizers register themselves by name (sb3_poplin.common.optimizers) when their modules are imported.
from sb3_poplin.common import cem as _cem  # noqa: F401
from sb3_poplin.common import icem as _icem  # noqa: F401
from sb3_poplin.common import mppi as _mppi  # noqa: F401
from sb3_poplin.common.distillation import Distillation, DistillationContext, distillation_class
from sb3_poplin.common.dynamics import ProbabilisticEnsemble, TerminationClassifier, make_adam
from sb3_poplin.common.env_binding import EnvBinding
from sb3_poplin.common.exploitation import ExploitationMonitor
from sb3_poplin.common.optimizers import Optimizer, optimizer_class
from sb3_poplin.common.planners import Planner, PlanOutput, planner_class
from sb3_poplin.common.policies import PolicyNetwork
from sb3_poplin.common.precision import planning_torch_dtype
from sb3_poplin.common.processing import DynamicsProcessing
from sb3_poplin.common.rollout import ModelRollout


@dataclass
class ModelFitSchedule:
    """How much one training fits the ensemble (the ``dynamics_*`` options of the same names).

    :param epochs: epochs of one training, at least
    :param min_updates: gradient steps of one training, at least (more epochs on little data)
    :param batch_size: minibatch size
    :param holdout_ratio: share of the data held out for early stopping
    :param patience: epochs without improvement before stopping
    :param max_updates: gradient steps of one training, at most (None: no cap)
    :param keep_epoch: which epoch's parameters are kept (``ProbabilisticEnsemble.fit``)
    """

    epochs: int
    min_updates: int
    batch_size: int
    holdout_ratio: float
    patience: int
    max_updates: int | None
    keep_epoch: str

    @classmethod
    def from_options(cls, values: Mapping[str, Any]) -> ModelFitSchedule:
        return cls(**{f.name: values[f"dynamics_{f.name}"] for f in fields(cls)})

    def epochs_for(self, n_transitions: int) -> int:
        """``epochs``, or more when they would make fewer than ``min_updates`` gradient steps on ``n_transitions`` (less
        the hold-out)."""
        n_train = max(n_transitions - int(n_transitions * self.holdout_ratio), 1)
        return max(self.epochs, math.ceil(self.min_updates / math.ceil(n_train / self.batch_size)))


class PlanningEngine:
    """An algorithm's planning machinery (see :func:`build_engine`), with the statistics of its plans and fits.

    Besides planning for any observations (:meth:`plan`), it plans the training envs' steps from their own warm start
    (:meth:`plan_training_step`), which :meth:`end_training_episodes` resets where their episodes end.

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
        #: the training envs' warm start ``[n_envs, warm_dim]`` (None: their episodes' first plan comes next)
        self.training_warm_start: th.Tensor | None = None
        #: steps planned for the training envs (every ``score_every``-th is scored for the exploitation log)
        self.planned_training_steps = 0

    @property
    def optimizer(self) -> Optimizer:
        return self.planner.optimizer

    @property
    def device(self) -> th.device:
        return self.rollout.action_low.device

    @property
    def stored_noise_dim(self) -> int:
        """Noise the replay buffer keeps per step: the executed step's when the distillation reads it (AVG), else none
        (the buffer still records which steps were planned)."""
        return self.planner.step_noise_dim if self.distiller is not None and self.distiller.reads_noise else 0

    def plan(self, obs: th.Tensor, warm_start: th.Tensor | None, generator: th.Generator | None) -> PlanOutput:
        """Plan one step for ``obs [n_envs, obs_dim]`` from a warm start (None: an episode's first plan), timed."""
        start = time.perf_counter()
        out = self.planner.plan(obs, warm_start, generator)
        if obs.device.type == "cuda":
            th.cuda.synchronize(obs.device)
        self.plan_times.append(time.perf_counter() - start)
        self.plan_iterations.append(out.cem_iterations)
        return out

    def restart(self, warm_start: th.Tensor, starts: np.ndarray) -> th.Tensor:
        """``warm_start [n_envs, warm_dim]`` with the rows of the envs that start an episode (``starts [n_envs]``) set to
        an episode's first one."""
        starts = np.asarray(starts, dtype=bool).reshape(-1, 1)
        if not starts.any():  # most steps (predict gets episode_start at every step): nothing to build
            return warm_start
        reset = th.as_tensor(starts, device=warm_start.device)
        return th.where(reset, self.planner.initial_warm_start(len(reset), warm_start.device), warm_start)

    @th.no_grad()
    def plan_training_step(
        self, obs: th.Tensor, generator: th.Generator, score_generator: th.Generator, score_every: int
    ) -> PlanOutput:
        """Plan the training envs' step from their warm start and keep the next one; every ``score_every``-th planned
        step (0: never), score the executed plans for :attr:`exploitation`.

        :param obs: ``[n_envs, obs_dim]``, raw
        :param generator: the plan's random generator
        :param score_generator: the scoring's own (sampled propagation), apart from planning's
        :param score_every: steps between two scored plans
        """
        out = self.plan(obs, self.training_warm_start, generator)
        self.training_warm_start = self.planner.warm_start_after(out)
        if score_every > 0 and self.planned_training_steps % score_every == 0:
            self.exploitation.on_plan(self.planner.score(obs, out.mean, score_generator).cpu().numpy())
        self.planned_training_steps += 1
        return out

    def warm_start_of(self, state: np.ndarray | None, episode_start: np.ndarray | None, n_envs: int) -> th.Tensor | None:
        """The warm start a ``predict`` state carries ``[n_envs, warm_dim]`` (None: no state, an episode's first plan),
        restarted for the envs that start an episode."""
        if state is None:
            return None
        warm_start = th.as_tensor(state, dtype=th.float32, device=self.device).reshape(n_envs, -1)
        return warm_start if episode_start is None else self.restart(warm_start, episode_start)

    def end_training_episodes(self, dones: np.ndarray) -> None:
        """The training envs whose episodes ended (``dones [n_envs]``) plan their next step as an episode's first."""
        if self.training_warm_start is not None:
            self.training_warm_start = self.restart(self.training_warm_start, dones)

    def dynamics_dataset(
        self, obs: th.Tensor, actions: th.Tensor, next_obs: th.Tensor, rewards: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor]:
        """Model inputs ``[N, input_dim + act_dim]`` and targets ``[N, obs_dim (+ 1 with a learned reward)]``."""
        targets = self.rollout.processing.target(obs, next_obs)
        if self.rollout.learned_reward:
            targets = th.cat([targets, rewards.reshape(-1, 1)], dim=1)
        return self.rollout.model_inputs(obs, actions), targets

    def fit_model(
        self, data: Mapping[str, np.ndarray], generator: th.Generator | None, schedule: ModelFitSchedule
    ) -> dict[str, float]:
        """Fit the ensemble (and the termination classifier) on transitions.

        :param data: the replay buffer's transitions (``observations``, ``actions``, ``next_observations``, ``rewards``,
            ``dones``)
        :param generator: random generator of the fits
        :param schedule: how much to fit the ensemble
        :return: what the fits report, ``termination_*`` and ``reward_mse`` included where they apply
        """

        def tensor(key: str) -> th.Tensor:
            return th.as_tensor(data[key], dtype=th.float32, device=self.device)

        inputs, targets = self.dynamics_dataset(
            tensor("observations"), tensor("actions"), tensor("next_observations"), tensor("rewards")
        )
        assert self.dynamics.optimizer is not None
        info = self.dynamics.fit(
            inputs,
            targets,
            self.dynamics.optimizer,
            max_epochs=schedule.epochs_for(len(inputs)),
            batch_size=schedule.batch_size,
            holdout_ratio=schedule.holdout_ratio,
            patience=schedule.patience,
            max_updates=schedule.max_updates,
            keep_epoch=schedule.keep_epoch,
            generator=generator,
        )
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


def inputs_seed(seed: int | None, *inputs: np.ndarray | th.Tensor | None) -> int:
    """A seed from a model's seed and a call's inputs alone (the seed of a deterministic plan): the same inputs give the
    same seed on every call and after save/load; other inputs give other seeds. Hashing host-side inputs costs
    microseconds and no device transfer.

    :param seed: the model's seed (None: 0)
    :param inputs: arrays (None where not given)
    """
    digest = 0
    for array in inputs:
        if array is not None:
            host = array.cpu().numpy() if isinstance(array, th.Tensor) else array
            digest = zlib.crc32(np.ascontiguousarray(host, dtype=np.float32).tobytes(), digest)
    return ((seed or 0) * 0x9E3779B1 + digest) % (2**63)


PartT = TypeVar("PartT")


class EnginePart(Generic[PartT]):
    """An algorithm's read-only attribute that is its engine's (``model.dynamics`` is ``model.engine.dynamics``).

    :param name: the engine's attribute (dotted for an attribute of one of its parts)
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._get = operator.attrgetter(name)

    @overload
    def __get__(self, algorithm: None, owner: type | None = None) -> EnginePart[PartT]: ...

    @overload
    def __get__(self, algorithm: HasEngine, owner: type | None = None) -> PartT: ...

    def __get__(self, algorithm: HasEngine | None, owner: type | None = None) -> PartT | EnginePart[PartT]:
        if algorithm is None:
            return self
        return self._get(algorithm.engine)


class HasEngine(Protocol):
    """What owns an engine (the algorithms)."""

    engine: PlanningEngine


class EngineParts:
    """The engine's parts as read-only attributes of what owns it (a mixin of the algorithms)."""

    planner = EnginePart[Planner]("planner")
    dynamics = EnginePart[ProbabilisticEnsemble]("dynamics")
    model_rollout = EnginePart[ModelRollout]("rollout")
    termination_model = EnginePart[TerminationClassifier | None]("termination_model")
    distiller = EnginePart[Distillation | None]("distiller")
    exploitation = EnginePart[ExploitationMonitor]("exploitation")
    #: what the model reads and predicts
    processing = EnginePart[DynamicsProcessing]("rollout.processing")
    #: the dtype planning multiplies in (the ``planning_dtype`` option resolved for the device)
    planning_torch_dtype = EnginePart[th.dtype]("dynamics.planning_dtype")


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
    built.warm_from_executed = values["cem_warm_start"] == "executed"
    built.cuda_graph = device.type == "cuda" if values["cuda_graph"] is None else bool(values["cuda_graph"])
    distiller = None
    if "distillation" in values:
        context = DistillationContext(binding.obs_dim, binding.act_dim, device, train_generator, values["init_sigma"])
        distiller = distillation_class(values["distillation"]).from_options(values, context)
        distiller.whitening = values["policy_whitening"]
        if values["distillation_data"] == "hallucination":
            built.imagine_elites = min(values["hallucination_elites"], values["n_elites"])
    return PlanningEngine(dynamics, termination_model, rollout, built, distiller, binding.n_envs)


__all__ = [
    "EnginePart",
    "EngineParts",
    "EnvBinding",
    "HasEngine",
    "ModelFitSchedule",
    "PlanningEngine",
    "build_engine",
    "inputs_seed",
]
