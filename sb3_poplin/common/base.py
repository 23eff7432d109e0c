"""The training loop shared by POPLIN-A, POPLIN-P and the planning baselines (Algorithm 1 of the POPLIN paper).

Data flows one way: env -> replay buffer -> (dynamics, policy) training; obs -> planner -> (CEM <-> rollout ->
dynamics, reward) -> action. :class:`PlanningAlgorithm` owns the ensemble and the planner (PETS and random shooting
are it with a planner of their own); :class:`PolicyPlanningAlgorithm` adds the policy network the planner searches
around and its distillation (POPLIN-A, POPLIN-P). The options of both are declared in
:mod:`sb3_poplin.common.options`, binding to the env in :mod:`sb3_poplin.common.env_binding`, saving and loading in
:mod:`sb3_poplin.common.persistence`.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.type_aliases import MaybeCallback
from stable_baselines3.common.utils import is_vectorized_observation

from sb3_poplin.common.buffers import PlanningReplayBuffer
from sb3_poplin.common.callbacks import PolicyControlEvaluation
from sb3_poplin.common.distillation import (
    DISTILLATION_OPTIONS,
    DistillationData,
    distillations_of,
    select_distillation_data,
)
from sb3_poplin.common.engine import EngineParts, ModelFitSchedule, PlanningEngine, build_engine, inputs_seed
from sb3_poplin.common.env_binding import (
    SpaceShapes,
    bind_env,
    check_spaces,
    env_id_of,
    raw_observation,
    raw_transition,
    read_task_kwargs,
    train_freq_for,
)
from sb3_poplin.common.logs import PlanningLogs
from sb3_poplin.common.optimizers import OPTIMIZERS, optimizer_options
from sb3_poplin.common.options import GENERAL_OPTIONS, PLANNING_OPTIONS, DeclaredOptions, Option
from sb3_poplin.common.persistence import PlanningPersistence
from sb3_poplin.common.planners import PlanOutput
from sb3_poplin.common.policies import POPLINPolicy
from sb3_poplin.common.threads import model_threads
from sb3_poplin.common.validation import (
    check_finite_reset,
    check_finite_step,
    check_predict_observation,
    missing_vec_normalize_message,
)
from sb3_poplin.version import __version__

SelfPlanningAlgorithm = TypeVar("SelfPlanningAlgorithm", bound="PlanningAlgorithm")


class PlanningAlgorithm(DeclaredOptions, EngineParts, SpaceShapes, PlanningPersistence, PlanningLogs, OffPolicyAlgorithm):
    """Model-based RL with a probabilistic ensemble and CEM planning (Algorithm 1 of the POPLIN paper).

    Loop: act randomly for ``learning_starts`` steps, then plan every step with CEM through the learned model and
    execute the first action; every ``train_freq`` (default: one episode) train the ensemble on all data.

    The planning machinery is an engine (:mod:`sb3_poplin.common.engine`) built from the option values; this class keeps
    SB3's hooks. Subclasses say what the search's noise means by naming a registered planner (:attr:`planner_name`).
    Their constructor takes the options of :attr:`options` (built from :mod:`sb3_poplin.common.options`, the optimizers'
    and distillations' modules and the subclass's :attr:`own_options`): every value is checked when the model is built,
    and the arguments of model-free algorithms (``batch_size``, ``gamma``, ``action_noise``, ...) and misspelt names are
    refused with the argument to use instead.
    """

    policy: POPLINPolicy
    replay_buffer: PlanningReplayBuffer
    engine: PlanningEngine
    #: default tensorboard run name
    tb_log_name: ClassVar[str] = "PLANNING"
    #: default of ``init_sigma`` when None is given
    default_init_sigma: ClassVar[float] = 0.25
    #: whether the algorithm has a policy network to distil (PETS and random shooting do not)
    uses_policy_network: ClassVar[bool] = False
    #: the registered planner that says what the search's noise means (:data:`sb3_poplin.common.planners.PLANNERS`)
    planner_name: ClassVar[str] = ""
    #: torch threads of planning and training (None: automatic); a class default for zips saved before the argument
    n_threads: int | None = None
    #: whether the model was built or trained on a VecNormalize env (saved: one loaded without it warns in predict)
    trained_with_vec_normalize: bool = False
    _warned_missing_vec_normalize: bool = False

    @classmethod
    def _option_groups(cls) -> tuple[tuple[Option, ...], ...]:
        return PLANNING_OPTIONS, optimizer_options(), cls.own_options, GENERAL_OPTIONS

    @classmethod
    def _parts(cls) -> dict[str, dict[str, tuple[Option, ...]]]:
        return {"optimizer": {name: optimizer.options for name, optimizer in OPTIMIZERS.items()}}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        given, values = self._checked_arguments(args, kwargs)
        policy, env = given["policy"], given["env"]
        if values["init_sigma"] is None:
            values["init_sigma"] = self._default_init_sigma(values)
        if env is not None and not isinstance(env, str):
            check_spaces(env.observation_space, env.action_space)
        self.task_env_id = env_id_of(env)
        #: the env's reward-relevant settings, read from the env when the model is set up (a loaded model keeps its own)
        self.task_kwargs: dict[str, Any] | None = None
        sb3 = {o.name: values[o.name] for o in self.options if o.sb3}
        super().__init__(
            policy,
            env,
            learning_rate=sb3.pop("learning_rate", 1e-3),  # read by SB3 only where there is a policy network to train
            batch_size=values.get("policy_batch_size", 64),
            train_freq=1,
            gradient_steps=1,
            supported_action_spaces=(spaces.Box,),
            support_multi_env=True,
            sde_support=False,
            **sb3,
        )
        if self.env is not None:
            check_spaces(self.observation_space, self.action_space)
        for option in self.options:
            if not option.sb3:
                setattr(self, option.attribute or option.name, values[option.name])
        self._buffer_adds_at_last_train = 0
        self.sb3_poplin_version = __version__
        self.algorithm_name = type(self).__name__
        self._n_model_updates = 0
        #: wall time spent fitting the ensemble so far (s), and what the last fit reported (``ProbabilisticEnsemble.fit``)
        self.dynamics_train_seconds = 0.0
        self.last_dynamics_info: dict[str, float] = {}
        self.trained_with_vec_normalize = self._vec_normalize_env is not None
        if given.get("_init_setup_model", True):
            self._setup_model()

    def _default_init_sigma(self, values: dict[str, Any]) -> float:
        """``init_sigma`` when None is given (the algorithm's default, which may depend on its other options)."""
        return self.default_init_sigma

    def option_values(self) -> dict[str, Any]:
        """Every option's current value, by name (SB3's own as SB3 keeps them)."""
        return {o.name: getattr(self, o.attribute or o.name) for o in self.options if not o.sb3}

    def _setup_model(self) -> None:
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        if self.task_kwargs is None and self.reward_fn_spec is None:
            # First setup of a new model (a loaded one has the settings it was trained with): read them from the env.
            self.task_kwargs = read_task_kwargs(self.task_env_id, self.env, self.observation_space, self.action_space)
        self.train_freq = train_freq_for(self.train_freq_arg, self.n_envs, self.env)
        self._convert_train_freq()
        values = self.option_values()
        binding = bind_env(
            values,
            self.task_env_id,
            self.task_kwargs,
            self.observation_space,
            self.action_space,
            self.device,
            self.n_envs,
            self.seed,
        )
        policy_kwargs = dict(self.policy_kwargs)
        if binding.ignored_inputs and self.uses_policy_network:
            # The policy reads the same observations as the model: the positions are as uninformative to it.
            policy_kwargs.setdefault("ignored_obs", list(binding.ignored_inputs))
        policy = self.policy_class(self.observation_space, self.action_space, self.lr_schedule, **policy_kwargs)
        if not isinstance(policy, POPLINPolicy):
            raise TypeError(f"the policy must be a POPLINPolicy (it holds the network planned around), got {type(policy)}")
        self.policy = policy.to(self.device)
        policy_net = self.policy.actor if self.uses_policy_network else None
        #: the ensemble, rollout, optimizer, planner and distillation, and the statistics of plans and fits
        self.engine = build_engine(values, binding, self.planner_name, policy_net, self.train_generator)
        for name, module in self.engine.distiller.saved_modules().items() if self.engine.distiller is not None else ():
            setattr(self, name, module)  # SB3 saves and loads state dicts by attribute name
        if self.replay_buffer is None:
            replay_buffer_kwargs = {"noise_dim": self.engine.stored_noise_dim, **self.replay_buffer_kwargs}
            self.replay_buffer = self.replay_buffer_class(
                self.buffer_size,
                self.observation_space,
                self.action_space,
                self.device,
                n_envs=self.n_envs,
                **replay_buffer_kwargs,
            )

    def set_random_seed(self, seed: int | None = None) -> None:
        """Seed python, numpy, torch, the action space, and the generators of planning and model training.

        :param seed: the seed (None: a random one for the generators)
        """
        super().set_random_seed(seed)
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        self.plan_generator = th.Generator(device=self.device).manual_seed(seed)
        self.train_generator = th.Generator().manual_seed(seed + 1)
        # Scoring executed plans for the log draws from its own stream (sampled propagation), apart from planning's.
        self.score_generator = th.Generator(device=self.device).manual_seed(seed + 2)
        # Reseeded at every ``predict(..., deterministic=True)``; one object for all calls, so a plan captured in a CUDA
        # graph (which is bound to its generator) is replayed, not captured again, at every deterministic step.
        self._deterministic_plan_generator = th.Generator(device=self.device)

    # ------------------------------------------------------------------ planning
    @model_threads("planning")
    @th.no_grad()
    def plan(
        self, observation: np.ndarray, mean: th.Tensor | None = None, generator: th.Generator | None = None
    ) -> PlanOutput:
        """Plan one step for a batch of raw (unnormalised) observations.

        :param observation: ``[n_envs, obs_dim]``
        :param mean: warm start ``[n_envs, warm_dim]`` or None
        :param generator: random generator of the plan (default: the model's running ``plan_generator``)
        :return: the planner's :class:`PlanOutput`
        """
        obs = th.as_tensor(observation, dtype=th.float32, device=self.device).reshape(-1, self.obs_dim)
        return self.engine.plan(obs, mean, self.plan_generator if generator is None else generator)

    def _acts_with_policy(self) -> bool:
        """Whether ``predict`` uses the distilled policy instead of planning."""
        return False

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """Act with the model (MPC, default) or, for the algorithms with a policy network, with the distilled policy
        alone (``predict_with="policy"``).

        With MPC, ``state`` carries the warm start from one step to the next and ``episode_start`` resets it, as
        ``evaluate_policy``, ``EvalCallback`` and rl-zoo3's enjoy do for recurrent policies. With ``deterministic=True``
        (``evaluate_policy``'s default) the plan's samples are drawn from a generator seeded from the model's ``seed``
        and the call's inputs alone: the same inputs give the same action on every call and after save/load. With
        ``deterministic=False`` they come from the model's running generator (seeded by :meth:`set_random_seed`).

        :param observation: observation(s) as given by the env (normalised if the env is a VecNormalize): ``obs_shape``
            or ``(n_envs, *obs_shape)``
        :param state: the previous call's returned state (None at the start)
        :param episode_start: which envs start a new episode ``[n_envs]``
        :param deterministic: plan from inputs-seeded samples (see above); passed to the policy in ``policy`` mode
        :return: action(s) in env units and the next state
        """
        observation = np.asarray(observation)
        # SB3's check: an observation of another shape is an error, not a batch of some other size.
        vectorized = is_vectorized_observation(observation, self.observation_space)
        check_predict_observation(observation)
        if self.trained_with_vec_normalize and self._vec_normalize_env is None and not self._warned_missing_vec_normalize:
            self._warned_missing_vec_normalize = True
            warnings.warn(missing_vec_normalize_message(type(self).__name__), stacklevel=2)
        raw_obs = raw_observation(self._vec_normalize_env, observation)
        if self._acts_with_policy():
            return self.policy.predict(raw_obs, state, episode_start, deterministic)
        obs = raw_obs.reshape(-1, self.obs_dim)
        warm_start = self.engine.warm_start_of(None if state is None else state[0], episode_start, len(obs))
        generator = None
        if deterministic:
            seed = inputs_seed(self.seed, obs, None if state is None else state[0], episode_start)
            generator = self._deterministic_plan_generator.manual_seed(seed)
        out = self.plan(obs, warm_start, generator)
        action = self.policy.unscale_action(out.action.cpu().numpy().reshape(len(obs), *self.action_shape))
        next_state = (self.planner.warm_start_after(out).cpu().numpy(),)
        return (action if vectorized else action[0]), next_state

    # ------------------------------------------------------------------ collection
    @model_threads("planning")
    def _sample_action(self, learning_starts: int, action_noise: Any = None, n_envs: int = 1) -> tuple[np.ndarray, np.ndarray]:
        if self.num_timesteps >= learning_starts and self._n_model_updates == 0 and self.replay_buffer.size() > 0:
            # ``learning_starts`` means what it says: the first step after the warm-up is planned with a trained model.
            # SB3 would first train at the end of the next rollout (one episode by default, and only once
            # num_timesteps > learning_starts), so with learning_starts equal to one episode the second episode would be
            # random too; the paper plans from the second episode on.
            self.train(gradient_steps=1, batch_size=self.batch_size)
        if self.num_timesteps < learning_starts or self._n_model_updates == 0:
            scaled_action = np.array([self.policy.scale_action(self.action_space.sample()) for _ in range(n_envs)])
            self._last_executed_noise = None
        else:
            raw_obs = np.asarray(self._last_original_obs if self._vec_normalize_env is not None else self._last_obs)
            obs = th.as_tensor(raw_obs, dtype=th.float32, device=self.device).reshape(-1, self.obs_dim)
            out = self.engine.plan_training_step(obs, self.plan_generator, self.score_generator, self.exploitation_log_freq)
            self._on_plan(raw_obs, out)
            scaled_action = out.action.cpu().numpy().reshape(n_envs, *self.action_shape)  # the planner's are flat
            self._last_executed_noise = out.executed_noise.cpu().numpy()
            self._record_plan(self.engine.plan_times[-1], out.cem_iterations)
        scaled_action = np.clip(scaled_action, -1.0, 1.0).astype(np.float32)
        return self.policy.unscale_action(scaled_action), scaled_action

    def _on_plan(self, raw_obs: np.ndarray, out: PlanOutput) -> None:
        """Called after each planned real step (the policy algorithms keep distillation pairs of it)."""

    def _store_transition(
        self,
        replay_buffer: ReplayBuffer,
        buffer_action: np.ndarray,
        new_obs: np.ndarray | dict[str, np.ndarray],
        reward: np.ndarray,
        dones: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        """Store the transition (raw, as SB3 does) with its planned noise; reject non-finite data; reset the plans of
        finished episodes."""
        next_obs, next_raw, raw_reward = raw_transition(self._vec_normalize_env, new_obs, reward, dones, infos)
        if self._vec_normalize_env is None:
            self._last_original_obs = self._last_obs
        check_finite_step(next_obs, raw_reward, next_raw, self.num_timesteps)
        assert isinstance(replay_buffer, PlanningReplayBuffer)
        last_obs = np.asarray(self._last_original_obs)  # a Box observation: an array
        replay_buffer.add(last_obs, next_obs, buffer_action, raw_reward, dones, infos, noise=self._last_executed_noise)
        self._record_exploitation(self.exploitation.on_step(raw_reward, np.asarray(dones), self.num_timesteps))
        self._last_obs = new_obs
        if self._vec_normalize_env is not None:
            self._last_original_obs = next_raw
        self.engine.end_training_episodes(dones)

    def _setup_learn(self, *args: Any, **kwargs: Any) -> Any:
        out = super()._setup_learn(*args, **kwargs)
        raw_obs = self._last_original_obs if self._vec_normalize_env is not None else self._last_obs
        if raw_obs is not None:
            check_finite_reset(np.asarray(raw_obs))
        self.trained_with_vec_normalize = self._vec_normalize_env is not None
        self.engine.training_warm_start = None  # the envs were reset: their episodes' first plans come next
        self._last_executed_noise = None
        return out

    # ------------------------------------------------------------------ training
    @model_threads("training")
    def train(self, gradient_steps: int, batch_size: int) -> None:
        """Train the ensemble on all data (line 6 of Algorithm 1), then distil the policy where there is one."""
        data = self.replay_buffer.all_transitions()
        start = time.perf_counter()
        info = self.engine.fit_model(data, self.train_generator, ModelFitSchedule.from_options(self.option_values()))
        self._n_model_updates += 1
        seconds = time.perf_counter() - start
        self.dynamics_train_seconds += seconds
        self.last_dynamics_info = self._record_model_fit(info, seconds, self.engine.plan_times)
        self._distill(data)
        self._buffer_adds_at_last_train = self.replay_buffer.n_added
        self._n_updates += 1
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")

    def _distill(self, data: dict[str, np.ndarray]) -> None:
        """Distil the planner into the policy network (the algorithms that have one)."""

    @model_threads("planning")
    def learn(
        self: SelfPlanningAlgorithm,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str | None = None,
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfPlanningAlgorithm:
        """Train for ``total_timesteps`` real steps (see SB3's ``learn``); tensorboard runs are named after the class."""
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name or self.tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )


class PolicyPlanningAlgorithm(PlanningAlgorithm):
    """A :class:`PlanningAlgorithm` that plans around a policy network and distils the planner into it after every
    training of the model (POPLIN-A, POPLIN-P). It takes the distillation options besides the planning ones, and can act
    with the distilled network alone (``predict_with="policy"``, or ``model.policy.predict``).

    The distillation is the scheme registered under the ``distillation`` option's value
    (:func:`~sb3_poplin.common.distillation.register_distillation`), with its own options.
    """

    uses_policy_network: ClassVar[bool] = True
    #: what ``predict`` acts with (the ``predict_with`` option, a switch users set on a trained model)
    predict_with: str

    @classmethod
    def _option_groups(cls) -> tuple[tuple[Option, ...], ...]:
        # The distillation's learning rate first, where SB3 algorithms take their learning rate.
        learning_rate = tuple(o for o in DISTILLATION_OPTIONS if o.name == "learning_rate")
        distillation = tuple(o for o in DISTILLATION_OPTIONS if o.name != "learning_rate")
        schemes = tuple(o for scheme in distillations_of(cls).values() for o in scheme.options)
        return learning_rate, PLANNING_OPTIONS, optimizer_options(), distillation, cls.own_options, schemes, GENERAL_OPTIONS

    @classmethod
    def _parts(cls) -> dict[str, dict[str, tuple[Option, ...]]]:
        return {**super()._parts(), "distillation": {name: d.options for name, d in distillations_of(cls).items()}}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.policy_control_history: list[tuple[int, float, float]] = []
        #: seconds spent distilling the policy so far (the other half of ``train``)
        self.distillation_seconds = 0.0
        super().__init__(*args, **kwargs)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), *self._distillation_modules()]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, tensors = super()._get_torch_save_params()
        for name in self._distillation_modules():
            state_dicts = [*state_dicts, name, f"{name}.optimizer"]
        return state_dicts, tensors

    def _distillation_modules(self) -> list[str]:
        distiller = getattr(self, "distiller", None)
        return list(distiller.saved_modules()) if distiller is not None else []

    def _acts_with_policy(self) -> bool:
        return self.predict_with == "policy"

    def _on_plan(self, raw_obs: np.ndarray, out: PlanOutput) -> None:
        """Keeps the hallucinated (imagined state, action) pairs of the planned step."""
        if out.imagined_states is not None and out.imagined_actions is not None:
            self.replay_buffer.add_extra_pairs(
                out.imagined_states.reshape(-1, self.obs_dim).cpu().numpy(),
                out.imagined_actions.reshape(-1, self.act_dim).cpu().numpy(),
                self.extra_pairs_capacity,
            )

    def _distillation_data(self, data: dict[str, np.ndarray]) -> DistillationData:
        """What the next distillation learns from (see :func:`~sb3_poplin.common.distillation.select_distillation_data`)."""
        return select_distillation_data(
            data,
            self.replay_buffer,
            new_steps=self.replay_buffer.n_added - self._buffer_adds_at_last_train,
            device=self.device,
            window=self.distillation_window,
            best_episodes=self.distillation_best_episodes,
            with_planned=self.policy_whitening == "planned",
        )

    def _distill(self, data: dict[str, np.ndarray]) -> None:
        assert self.distiller is not None
        if not self.distill_after_warmup and not data["planned"].any():
            return  # the authors' first plan: the initial policy, nothing learnt from the random steps
        start = time.perf_counter()
        self._update_learning_rate(self.policy.optimizer)
        policy_info = self.distiller.distill(self.policy.actor, self.policy.optimizer, self._distillation_data(data))
        for key, value in policy_info.items():
            self.logger.record(f"train/{key}", value)
        seconds = time.perf_counter() - start
        self.distillation_seconds += seconds
        self.logger.record("time/distillation_s", seconds)

    def _learn_callbacks(self) -> list[BaseCallback]:
        if self.policy_eval_freq > 0:
            return [PolicyControlEvaluation(self.policy_eval_freq, self.policy_eval_episodes)]
        return []
