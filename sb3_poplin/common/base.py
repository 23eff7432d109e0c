"""The algorithm shared by POPLIN-A, POPLIN-P and the planning baselines.

Data flows one way: env -> replay buffer -> (dynamics, policy) training; obs -> planner -> (CEM <-> rollout ->
dynamics, reward) -> action. The algorithm owns the ensemble, the planner and the distillation scheme.
"""

from __future__ import annotations

import importlib
import io
import math
import os
import pathlib
import tempfile
import time
import warnings
import zlib
from abc import abstractmethod
from collections import deque
from typing import Any, ClassVar, TypeVar

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.save_util import load_from_pkl, save_to_pkl
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import is_vectorized_observation
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from sb3_poplin.common.buffers import PlanningReplayBuffer
from sb3_poplin.common.cem import CEMOptimizer
from sb3_poplin.common.distillation import BehaviorCloning, Distillation, DistillationData
from sb3_poplin.common.dynamics import ACTIVATIONS, ProbabilisticEnsemble, TerminationClassifier, check_adam_kwargs, make_adam
from sb3_poplin.common.logs import PlanningLogs
from sb3_poplin.common.planners import Planner, PlanOutput
from sb3_poplin.common.policies import POPLINPolicy
from sb3_poplin.common.processing import DeltaProcessing, DynamicsProcessing
from sb3_poplin.common.rollout import PROPAGATIONS, ModelRollout, canonical_propagation
from sb3_poplin.common.threads import model_threads
from sb3_poplin.common.validation import (
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_keyword_names,
    check_optional_int,
    check_widths,
)
from sb3_poplin.rewards import (
    get_processing,
    get_task_fns,
    known_env_ids,
    position_indices,
    resolve_callable,
    task_kwargs_from_env,
)
from sb3_poplin.version import __version__

SelfPlanningAlgorithm = TypeVar("SelfPlanningAlgorithm", bound="PlanningAlgorithm")

PREDICT_MODES = ("mpc", "policy")
LEARNED = "learned"
DISTILLATION_DATA = ("real", "hallucination")


def _env_id(env: GymEnv | str | None) -> str | None:
    """The gymnasium id of the (first) env, whatever the VecEnv type; None when it was not made from an id."""
    if env is None:
        return None
    if isinstance(env, str):
        return env
    while isinstance(env, VecEnvWrapper):
        env = env.venv
    if isinstance(env, VecEnv):
        spec = env.get_attr("spec", indices=[0])[0]
    else:
        spec = getattr(env, "spec", None) or getattr(getattr(env, "unwrapped", None), "spec", None)
    return spec.id if spec is not None else None


class _RemoteEnvAttributes:
    """Reads attributes of an env that lives in another process (SubprocVecEnv) through ``VecEnv.get_attr``.

    The registered readers of :func:`~sb3_poplin.common.tasks.task_kwargs_from_env` read plain attributes of the
    unwrapped env (``_ctrl_cost_weight``, ``dt``, ...); ``get_attr`` reaches them in the worker with gymnasium's
    ``get_wrapper_attr`` and sends back only their values.

    :param venv: the VecEnv (without VecEnvWrappers)
    :param index: which env
    """

    def __init__(self, venv: VecEnv, index: int = 0) -> None:
        self._venv = venv
        self._index = index

    @property
    def unwrapped(self) -> _RemoteEnvAttributes:
        return self

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._venv.get_attr(name, indices=[self._index])[0]


class _TaskView:
    """What :func:`~sb3_poplin.common.tasks.task_kwargs_from_env` reads of an env: its spec and unwrapped env, and the
    observation space the model sees (after every gym and VecEnv wrapper).

    :param spec: the env's spec
    :param unwrapped: the unwrapped env (or a reader of its attributes in another process)
    :param observation_space: the model's observation space
    """

    def __init__(self, spec: Any, unwrapped: Any, observation_space: spaces.Space) -> None:
        self.spec = spec
        self.unwrapped = unwrapped
        self.observation_space = observation_space


def _registered_task_kwargs(venv: VecEnv, observation_space: spaces.Space, action_space: spaces.Space) -> dict[str, Any]:
    """The reward-relevant settings of env 0 of ``venv`` (any VecEnv type), for the registered reward of its id.

    Raises (with what to do) when a wrapper makes the registered functions wrong: an observation of another shape than
    the registered env's, or actions in other units than the unwrapped env's (e.g. RescaleAction).
    """
    while isinstance(venv, VecEnvWrapper):
        venv = venv.venv
    if hasattr(venv, "envs"):  # the env object is in this process (DummyVecEnv)
        env = venv.envs[0]
        view = _TaskView(env.spec or env.unwrapped.spec, env.unwrapped, observation_space)
        native_action_space = env.unwrapped.action_space
    else:
        remote = _RemoteEnvAttributes(venv)
        spec = venv.get_attr("spec", indices=[0])[0]
        view = _TaskView(spec, remote, observation_space)
        # A wrapper's action_space hides the unwrapped env's from get_attr: build a bare env of the same id and settings.
        reference = gym.make(spec.id, **spec.kwargs)
        native_action_space = reference.unwrapped.action_space
        reference.close()
    env_id = view.spec.id
    native = (native_action_space.low, native_action_space.high)
    if native_action_space.shape != action_space.shape or not all(
        np.allclose(a, b)
        for a, b in zip(native, (action_space.low, action_space.high))  # type: ignore[attr-defined]
    ):
        raise ValueError(
            f"The action space the model sees, {action_space}, is not {env_id}'s own ({native_action_space}): an action "
            f"wrapper (e.g. RescaleAction) changes the units, and {env_id}'s registered reward reads actions in the env's "
            "own units. Pass reward_fn= (a function of the wrapped actions, 'module:function', or 'learned'), or remove "
            "the wrapper."
        )
    return task_kwargs_from_env(view)  # type: ignore[arg-type]


def _check_train_freq(train_freq: Any) -> Any:
    """None, a positive int, or ``(positive int, "step" | "episode")`` (a list from YAML/JSON too)."""
    if train_freq is None:
        return None
    if isinstance(train_freq, (tuple, list)):
        if len(train_freq) != 2:
            raise ValueError(f"train_freq must be an int or (int, 'step'|'episode'), got {train_freq!r}")
        frequency = check_int("train_freq", train_freq[0], 1)
        unit = check_choice("train_freq's unit", str(getattr(train_freq[1], "value", train_freq[1])), ("step", "episode"))
        return (frequency, unit)
    return check_int("train_freq", train_freq, 1)


def _check_weight_decay(weight_decay: Any, n_layers: int) -> float | list[float] | None:
    """None, a float >= 0, or one float >= 0 per layer of a member (hidden layers and output layer)."""
    if weight_decay is None:
        return None
    if isinstance(weight_decay, (list, tuple)):
        if len(weight_decay) != n_layers:
            raise ValueError(
                f"dynamics_weight_decay needs {n_layers} values (one per hidden layer of dynamics_net_arch, plus the output "
                f"layer), got {len(weight_decay)}"
            )
        return [check_float("dynamics_weight_decay", w, 0.0) for w in weight_decay]
    return check_float("dynamics_weight_decay", weight_decay, 0.0)


def _check_processing_spec(spec: Any) -> Any:
    """None, ``"delta"``, a :class:`DynamicsProcessing` or an importable ``"package.module:attribute"`` naming one (or its
    class)."""
    if spec is None or spec == "delta" or isinstance(spec, DynamicsProcessing):
        return spec
    if isinstance(spec, str) and spec.count(":") == 1:
        resolve_processing(spec)  # fails now, with the reason, rather than when the model is set up
        return spec
    raise ValueError(
        "dynamics_processing must be None (the env's registered processing, else 'delta'), 'delta' (the model reads the "
        "observation and predicts its change), a sb3_poplin.common.processing.DynamicsProcessing, or an importable "
        f"'package.module:attribute' naming one, got {spec!r}"
    )


def resolve_processing(spec: Any, env_id: str | None = None, obs_dim: int = 0) -> DynamicsProcessing:
    """The processing a ``dynamics_processing`` value stands for (see :func:`_check_processing_spec`).

    :param spec: the value
    :param env_id: the env's id, for None (the registered processing)
    :param obs_dim: the env's observation size, for None
    """
    if spec is None:
        return get_processing(env_id, obs_dim)
    if spec == "delta":
        return DeltaProcessing()
    if isinstance(spec, DynamicsProcessing):
        return spec
    module_name, attribute = spec.split(":")
    try:
        value: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            value = getattr(value, part)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"dynamics_processing={spec!r} cannot be imported: {e}") from e
    if isinstance(value, type) and issubclass(value, DynamicsProcessing):
        value = value()
    if not isinstance(value, DynamicsProcessing):
        raise ValueError(f"dynamics_processing={spec!r} names a {type(value).__name__}, not a DynamicsProcessing")
    return value


def _check_function_spec(name: str, spec: Any) -> None:
    """None, a callable, ``"learned"`` or an importable ``"package.module:function"`` string."""
    if spec is None or callable(spec) or spec == LEARNED:
        return
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise ValueError(
            f"{name} must be None, a callable (obs, action, next_obs) -> tensor, 'learned', or an importable "
            f"'package.module:function' string, got {spec!r}"
        )


class PolicyControlEvaluation(BaseCallback):
    """Evaluates the distilled policy alone (policy control) every ``eval_freq`` steps on a fresh env of the same id.

    Logs ``eval/policy_control_return`` next to ``eval/mpc_control_return``: the mean return of the latest
    ``n_episodes`` training episodes that were planned at every step (MPC control; random warm-up episodes are not
    counted, and the key is absent until one such episode has ended). Appends ``(timesteps, mean, std)`` of the policy
    control to ``model.policy_control_history``.

    :param eval_freq: steps between evaluations
    :param n_episodes: episodes per evaluation
    """

    def __init__(self, eval_freq: int, n_episodes: int) -> None:
        super().__init__()
        self.eval_freq = eval_freq
        self.n_episodes = n_episodes

    def _on_step(self) -> bool:
        model = self.model
        assert isinstance(model, PlanningAlgorithm)
        if self.n_calls % self.eval_freq != 0:
            return True
        if model.task_env_id is None:
            raise ValueError("policy_eval_freq needs an env made from a gymnasium id, to build an evaluation env")
        env = make_vec_env(model.task_env_id, n_envs=1, seed=model.seed if model.seed is not None else 0)
        returns = []
        for _ in range(self.n_episodes):
            obs = env.reset()
            done, total = False, 0.0
            while not done:
                # The env gives raw observations, which the policy network expects.
                action, _ = model.policy.predict(obs, deterministic=True)
                obs, reward, dones, _ = env.step(action)
                total += float(reward[0])
                done = bool(dones[0])
            returns.append(total)
        env.close()
        mean, std = float(np.mean(returns)), float(np.std(returns))
        model.policy_control_history.append((model.num_timesteps, mean, std))
        self.logger.record("eval/policy_control_return", mean)
        mpc_returns = list(model.mpc_episode_returns)[-self.n_episodes :]
        if mpc_returns:
            self.logger.record("eval/mpc_control_return", float(np.mean(mpc_returns)))
        return True


#: Constructor options added after the first release whose default changes what a model does, with the value that
#: reproduces a zip saved before they existed (:meth:`PlanningAlgorithm.load` sets them; every other option's default
#: is the former behaviour, which the constructor already sets).
OPTION_VALUES_OF_OLDER_ZIPS: dict[str, Any] = {
    "dynamics_min_updates": 0,
    "dynamics_ignore_positions": False,
    "dynamics_optimizer_kwargs": {"fused": False},
    "dynamics_processing": "delta",
}

#: The ``:param:`` lines of the arguments every planning algorithm takes (in the order of their signatures); each
#: algorithm's docstring ends with them, so ``help(POPLIN_P)`` documents every argument its signature shows.
PLANNING_PARAMETERS_DOC = """
    :param learning_rate: learning rate of the policy distillation (a float or a schedule)
    :param buffer_size: replay buffer size (transitions per env); its memory is taken as the data arrives
    :param learning_starts: random steps before the first planning
    :param train_freq: train every N steps (int) or ``(N, "step"|"episode")``; default: every episode (with several
        envs: every ``max_episode_steps`` steps)
    :param population_size: CEM candidates per env and iteration
    :param n_elites: CEM elites, at most ``population_size``
    :param cem_iterations: CEM iterations per real step
    :param cem_alpha: weight of the previous distribution in CEM's smoothed update (PETS' alpha), in [0, 1)
    :param cem_early_stop_tol: stop CEM once an iteration moved its mean by at most this many initial standard
        deviations (RMS over the noise); 0 always runs ``cem_iterations``
    :param cem_mirrored: mirrored sampling: half of each CEM population is drawn, the other half is its reflection
        through the mean, so half the random numbers are drawn (see :class:`~sb3_poplin.common.cem.CEMOptimizer`)
    :param cem_noise_table: 0 (default) draws CEM's standard normals afresh; a positive size keeps a table of that many,
        drawn once from the model's seed, and reads each candidate's normals from it at a random offset (one random
        integer per candidate instead of horizon x noise-per-step normals; ``1 << 24``, 64 MB, suits POPLIN-P sep at
        the paper configuration). See :class:`~sb3_poplin.common.cem.CEMOptimizer`
    :param horizon: planning horizon (imagined steps)
    :param init_sigma: initial std of the planning noise (None: the algorithm's default)
    :param propagation: particle propagation: ``expectation`` (E), ``fixed_model`` (TSinf), ``random_model`` (TS1)
    :param num_particles: particles per candidate for sampled propagation
    :param pessimism: score candidates by the mean of their particles' predicted returns minus this many standard
        deviations of them (default 0: the mean). With ``propagation="fixed_model"`` and one particle per elite member,
        plans whose return the members disagree about are penalised, which keeps CEM away from the model's errors.
        Needs ``fixed_model`` or ``random_model`` propagation
    :param ensemble_size: members of the dynamics ensemble
    :param n_elite_members: members used for planning, chosen on hold-out loss (default: all)
    :param dynamics_net_arch: hidden widths of each member (default ``[200, 200, 200, 200]``)
    :param dynamics_activation: hidden activation of the members (``silu``/``swish``, ``relu``, ``tanh``, ``elu``)
    :param dynamics_weight_decay: L2 per layer (one float for all, a list with one per layer, or None for PETS' schedule)
    :param dynamics_learning_rate: Adam learning rate of the ensemble
    :param dynamics_optimizer_kwargs: further keyword arguments of the ensemble's ``torch.optim.Adam`` (``betas``,
        ``eps``, ``weight_decay``, ...). By default Adam runs torch's fused kernel on CPU and CUDA (same update rule,
        ~20% cheaper fits); ``{"fused": False}`` gives torch's default implementation (which zips saved before this
        option keep)
    :param dynamics_epochs: max epochs per training of the ensemble
    :param dynamics_min_updates: each training runs at least this many gradient steps (more epochs while the data is
        small; the hold-out early stopping still applies). The first trainings otherwise see a few hundred steps: on
        HalfCheetah-v5, 5 epochs on the first 1,000 random steps (145 steps) left the model barely better than predicting
        no change (one-step test MSE 32 vs 36) and its 20-step open-loop predictions diverging; 1,000 steps gave 9.8
    :param dynamics_batch_size: minibatch size per member
    :param dynamics_holdout_ratio: share of the data held out for early stopping and elite selection, in [0, 1)
    :param dynamics_patience: epochs without hold-out improvement before stopping
    :param dynamics_max_updates: cap on gradient steps per training (None: no cap). 5 epochs of batch 32 grow with the
        data: ~30,000 steps (~96 s on one CPU core) per training at 200k transitions, a third of the wall time of a run
        with the CPU entries. The default, 5000 (~17 s on one core, each training warm-starting from the previous one),
        keeps fitting under ~10% of the wall time of a run planning at >= 150 ms per step, and binds only from ~35k
        transitions: shorter runs train exactly as without a cap (docs/performance.md)
    :param dynamics_ignore_positions: the dynamics model does not read the body's absolute position where the env
        observes it (a locomotion env made with ``exclude_current_positions_from_observation=False``, which makes the
        registered reward exact): the physics do not depend on it and it drifts out of the training data's range as
        the agent runs. The model still predicts its change, which the reward reads. No effect on the default
        observations, or when the reward is given (``reward_fn=``): the positions come from the registered task. Only
        with the default processing (``dynamics_processing``): a processing decides itself what the model reads
    :param dynamics_processing: what the model reads and predicts (:mod:`sb3_poplin.common.processing`). None
        (default): the processing the env's authors chose, registered with its id (PETS' Cheetah: sine and cosine of the
        pitch, the step's velocity predicted as is), else ``"delta"``: the raw observation in, its change out. Or a
        ``DynamicsProcessing`` (saved in the zip) or an importable ``"package.module:attribute"`` naming one
    :param policy_epochs: max epochs of each distillation
    :param policy_batch_size: minibatch size of the distillation
    :param policy_holdout_ratio: hold-out share of the distillation, in [0, 1)
    :param policy_patience: distillation epochs without hold-out improvement before stopping
    :param policy_max_updates: cap on gradient steps per distillation (None: no cap)
    :param reward_fn: reward ``r(obs, action, next_obs)`` as a callable or ``"module:function"``, or ``"learned"`` to
        predict it with an extra output of the ensemble; default: the registered function of the env id (which refuses
        wrappers that change the env's observations or action units: pass a reward of the wrapped env then)
    :param termination_fn: termination ``done(obs, action, next_obs)``, same forms, or ``"learned"`` (a classifier of
        the next state); default: the registered one, or learned when the reward is learned
    :param predict_with: what ``model.predict`` uses: ``mpc`` (plan with the model) or ``policy`` (the network alone)
    :param distillation_data: ``real`` (distil on real states only) or ``hallucination`` (also on the imagined states
        and actions of the best elite candidates, as in the paper's ablation)
    :param distillation_window: distil on the real states of the last this many steps only (with their planned
        actions), instead of every planned step so far (None, the paper's): the policy then follows the current plans
        rather than the average of all earlier ones, which were made around earlier, worse policies (BC and GAN; AVG
        already moves by the noise of the steps since its last update only)
    :param distillation_best_episodes: distil on the planned steps of this many episodes only, those with the highest
        returns in the buffer (the episode still running counts with its return so far), instead of every planned step
        (None, the paper's): a policy prior that regresses onto the plans of bad episodes as much as of good ones drifts
        towards the bad ones, and the planner, searching close to it, follows. With ``distillation_window`` too, the
        best episodes among those with steps in the window. BC and GAN only: AVG moves by the noise of the steps since
        its last update
    :param hallucination_elites: with hallucinated data, how many of the best elites per planned step are imagined
    :param extra_pairs_capacity: at most this many extra (state, action) pairs (imagined, or elite actions of
        POPLIN-A) are kept for distillation, newest first
    :param policy_eval_freq: every this many steps, evaluate the distilled policy alone (policy control) and log it as
        ``eval/policy_control_return`` beside the MPC return of training (0: never)
    :param policy_eval_episodes: episodes of each policy-control evaluation
    :param replay_buffer_class: :class:`~sb3_poplin.common.buffers.PlanningReplayBuffer` or a subclass (default: it)
    :param replay_buffer_kwargs: extra arguments of the replay buffer (e.g. ``noise_dtype="float16"``)
    :param policy_kwargs: arguments of the policy (``net_arch``: a list of widths, or SAC's ``dict(pi=[...], qf=[...])``
        whose ``pi`` is used; ``activation``)
    :param stats_window_size: episodes averaged for the rollout logs
    :param tensorboard_log: tensorboard log folder
    :param verbose: 0 none, 1 info, 2 debug
    :param seed: random seed
    :param device: ``cpu``, ``cuda`` or ``auto``
    :param cuda_graph: capture each plan in one CUDA graph (one launch per planning step instead of thousands of small
        kernels); None (default): on when the model is on a CUDA device. Ignored on CPU and with ``cem_early_stop_tol > 0``
    :param n_threads: torch CPU threads while planning and training the model; None (default) chooses them from the
        work of one model call and the cores other processes leave idle, never more than the caller's
        ``torch.get_num_threads()``, and restores the caller's count afterwards (see docs/threads.md)
    :param _init_setup_model: build the networks at construction (False when loading)
"""


class PlanningAlgorithm(PlanningLogs, OffPolicyAlgorithm):
    __doc__ = (
        """Model-based RL with a probabilistic ensemble and CEM planning (Algorithm 1 of the POPLIN paper).

    Loop: act randomly for ``learning_starts`` steps, then plan every step with CEM through the learned model and
    execute the first action; every ``train_freq`` (default: one episode) train the ensemble on all data, then
    distil the planner into the policy network.

    Subclasses say what the CEM noise means (:meth:`_make_planner`) and how the policy is distilled
    (:meth:`_make_distillation`); they take every argument below and forward it.

    Arguments of model-free algorithms (``batch_size``, ``gamma``, ``gradient_steps``, ``action_noise``, ...) and
    misspelt names are refused with the argument to use instead; every value is checked when the model is built.

    :param policy: policy class or alias (``MlpPolicy``)
    :param env: the environment (gymnasium id, env or VecEnv) with a Box action space and flat Box observations"""
        + PLANNING_PARAMETERS_DOC
    )

    policy: POPLINPolicy
    replay_buffer: PlanningReplayBuffer
    #: default tensorboard run name
    tb_log_name: ClassVar[str] = "PLANNING"
    #: default of ``init_sigma`` when None is given
    default_init_sigma: ClassVar[float] = 0.25
    #: whether the algorithm has a policy network to distil (PETS and random shooting do not)
    uses_policy_network: ClassVar[bool] = True
    #: torch threads of planning and training (None: automatic); a class default for zips saved before the argument
    n_threads: int | None = None

    def __new__(cls, *args: Any, **kwargs: Any) -> PlanningAlgorithm:
        # Python's own error for a misspelt or model-free argument names neither the class nor what to pass instead.
        check_keyword_names(cls.__init__, cls.__name__, kwargs)
        return super().__new__(cls)

    def __init__(
        self,
        policy: str | type[POPLINPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 3e-3,
        buffer_size: int = 1_000_000,
        learning_starts: int = 1000,
        train_freq: int | tuple[int, str] | None = None,
        population_size: int = 500,
        n_elites: int = 50,
        cem_iterations: int = 5,
        cem_alpha: float = 0.1,
        cem_early_stop_tol: float = 0.0,
        cem_mirrored: bool = False,
        cem_noise_table: int = 0,
        horizon: int = 30,
        init_sigma: float | None = None,
        propagation: str = "expectation",
        num_particles: int = 20,
        pessimism: float = 0.0,
        ensemble_size: int = 5,
        n_elite_members: int | None = None,
        dynamics_net_arch: list[int] | None = None,
        dynamics_activation: str = "silu",
        dynamics_weight_decay: float | list[float] | None = None,
        dynamics_learning_rate: float = 1e-3,
        dynamics_optimizer_kwargs: dict[str, Any] | None = None,
        dynamics_epochs: int = 5,
        dynamics_min_updates: int = 1000,
        dynamics_batch_size: int = 32,
        dynamics_holdout_ratio: float = 0.1,
        dynamics_patience: int = 5,
        dynamics_max_updates: int | None = 5000,
        dynamics_ignore_positions: bool = True,
        dynamics_processing: Any = None,
        policy_epochs: int = 100,
        policy_batch_size: int = 64,
        policy_holdout_ratio: float = 0.2,
        policy_patience: int = 5,
        policy_max_updates: int | None = None,
        reward_fn: Any = None,
        termination_fn: Any = None,
        predict_with: str = "mpc",
        distillation_data: str = "real",
        distillation_window: int | None = None,
        distillation_best_episodes: int | None = None,
        hallucination_elites: int = 5,
        extra_pairs_capacity: int = 50_000,
        policy_eval_freq: int = 0,
        policy_eval_episodes: int = 5,
        replay_buffer_class: type[PlanningReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        cuda_graph: bool | None = None,
        n_threads: int | None = None,
        _init_setup_model: bool = True,
    ) -> None:
        # Every value is checked before anything is built, so a bad one fails at once with its own name (and not later,
        # in CEM or the ensemble, under the name of another argument).
        if not callable(learning_rate):
            learning_rate = check_float("learning_rate", learning_rate, 0.0, min_inclusive=False)
        buffer_size = check_int("buffer_size", buffer_size, 1)
        learning_starts = check_int("learning_starts", learning_starts, 0)
        train_freq = _check_train_freq(train_freq)
        population_size = check_int("population_size", population_size, 1)
        n_elites = check_int("n_elites", n_elites, 1, population_size, f"population_size={population_size}")
        cem_iterations = check_int("cem_iterations", cem_iterations, 1)
        cem_alpha = check_float("cem_alpha", cem_alpha, 0.0, 1.0, max_inclusive=False)
        horizon = check_int("horizon", horizon, 1)
        if init_sigma is not None:
            init_sigma = check_float("init_sigma", init_sigma, 0.0, min_inclusive=False)
        if not isinstance(propagation, str):
            raise ValueError(f"propagation must be a string ({', '.join(PROPAGATIONS)}), got {propagation!r}")
        propagation = canonical_propagation(propagation)
        cem_early_stop_tol = check_float("cem_early_stop_tol", cem_early_stop_tol, 0.0)
        cem_mirrored = check_bool("cem_mirrored", cem_mirrored)
        cem_noise_table = check_int("cem_noise_table", cem_noise_table, 0)
        if cuda_graph is not None and not isinstance(cuda_graph, bool):
            raise ValueError(f"cuda_graph must be None (on for CUDA models), True or False, got {cuda_graph!r}")
        num_particles = check_int("num_particles", num_particles, 1)
        pessimism = check_float("pessimism", pessimism, 0.0)
        if pessimism > 0.0 and propagation == "expectation":
            raise ValueError(
                "pessimism > 0 needs sampled particles: pass propagation='fixed_model' (TSinf) and num_particles equal "
                "to the elite members (n_elite_members, default ensemble_size), or set pessimism=0.0"
            )
        ensemble_size = check_int("ensemble_size", ensemble_size, 1)
        n_elite_members = check_optional_int(
            "n_elite_members", n_elite_members, 1, ensemble_size, f"ensemble_size={ensemble_size}"
        )
        dynamics_net_arch = [200, 200, 200, 200] if dynamics_net_arch is None else dynamics_net_arch
        dynamics_net_arch = check_widths("dynamics_net_arch", dynamics_net_arch)
        dynamics_activation = check_choice("dynamics_activation", dynamics_activation, sorted(ACTIVATIONS))
        dynamics_weight_decay = _check_weight_decay(dynamics_weight_decay, n_layers=len(dynamics_net_arch) + 1)
        dynamics_learning_rate = check_float("dynamics_learning_rate", dynamics_learning_rate, 0.0, min_inclusive=False)
        dynamics_optimizer_kwargs = check_adam_kwargs("dynamics_optimizer_kwargs", dynamics_optimizer_kwargs)
        dynamics_epochs = check_int("dynamics_epochs", dynamics_epochs, 1)
        dynamics_min_updates = check_int("dynamics_min_updates", dynamics_min_updates, 0)
        dynamics_batch_size = check_int("dynamics_batch_size", dynamics_batch_size, 1)
        dynamics_holdout_ratio = check_float("dynamics_holdout_ratio", dynamics_holdout_ratio, 0.0, 1.0, max_inclusive=False)
        dynamics_patience = check_int("dynamics_patience", dynamics_patience, 1)
        dynamics_max_updates = check_optional_int("dynamics_max_updates", dynamics_max_updates, 1)
        dynamics_ignore_positions = check_bool("dynamics_ignore_positions", dynamics_ignore_positions)
        dynamics_processing = _check_processing_spec(dynamics_processing)
        policy_epochs = check_int("policy_epochs", policy_epochs, 1)
        policy_batch_size = check_int("policy_batch_size", policy_batch_size, 1)
        policy_holdout_ratio = check_float("policy_holdout_ratio", policy_holdout_ratio, 0.0, 1.0, max_inclusive=False)
        policy_patience = check_int("policy_patience", policy_patience, 1)
        policy_max_updates = check_optional_int("policy_max_updates", policy_max_updates, 1)
        _check_function_spec("reward_fn", reward_fn)
        _check_function_spec("termination_fn", termination_fn)
        predict_with = check_choice("predict_with", predict_with, PREDICT_MODES)
        distillation_data = check_choice("distillation_data", distillation_data, DISTILLATION_DATA)
        distillation_window = check_optional_int("distillation_window", distillation_window, 1)
        distillation_best_episodes = check_optional_int("distillation_best_episodes", distillation_best_episodes, 1)
        hallucination_elites = check_int("hallucination_elites", hallucination_elites, 1)
        extra_pairs_capacity = check_int("extra_pairs_capacity", extra_pairs_capacity, 0)
        policy_eval_freq = check_int("policy_eval_freq", policy_eval_freq, 0)
        policy_eval_episodes = check_int("policy_eval_episodes", policy_eval_episodes, 1)
        replay_buffer_class = PlanningReplayBuffer if replay_buffer_class is None else replay_buffer_class
        if not (isinstance(replay_buffer_class, type) and issubclass(replay_buffer_class, PlanningReplayBuffer)):
            raise ValueError(
                f"replay_buffer_class must be PlanningReplayBuffer or a subclass of it (it stores the planned noise that "
                f"distillation needs), got {replay_buffer_class!r}"
            )
        stats_window_size = check_int("stats_window_size", stats_window_size, 1)
        verbose = check_int("verbose", verbose, 0, 2)
        seed = check_optional_int("seed", seed, 0, 2**32 - 1)
        if not self.uses_policy_network and (predict_with == "policy" or policy_eval_freq > 0):
            raise ValueError(f"{type(self).__name__} has no policy network: use predict_with='mpc' and policy_eval_freq=0")
        distillation_subsets = {
            "distillation_window": distillation_window,
            "distillation_best_episodes": distillation_best_episodes,
        }
        for name, value in distillation_subsets.items():
            if not self.uses_policy_network and value is not None:
                raise ValueError(f"{type(self).__name__} has no policy network to distil: leave {name}=None")

        if env is not None and not isinstance(env, str):
            self._check_spaces(env.observation_space, env.action_space)
        self.task_env_id = _env_id(env)
        #: the env's reward-relevant settings, read from the env when the model is set up (a loaded model keeps its own)
        self.task_kwargs: dict[str, Any] | None = None
        super().__init__(
            policy,
            env,
            learning_rate,
            buffer_size=buffer_size,
            learning_starts=learning_starts,
            batch_size=policy_batch_size,
            train_freq=1,
            gradient_steps=1,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            seed=seed,
            supported_action_spaces=(spaces.Box,),
            support_multi_env=True,
            sde_support=False,
        )
        if self.env is not None:
            self._check_spaces(self.observation_space, self.action_space)
        self.train_freq_arg = train_freq
        self.population_size = population_size
        self.n_elites = n_elites
        self.cem_iterations = cem_iterations
        self.cem_alpha = cem_alpha
        self.cem_early_stop_tol = cem_early_stop_tol
        self.cem_mirrored = cem_mirrored
        self.cem_noise_table = cem_noise_table
        self.horizon = horizon
        self.init_sigma = self.default_init_sigma if init_sigma is None else init_sigma
        self.propagation = propagation
        self.num_particles = num_particles
        self.pessimism = pessimism
        self.ensemble_size = ensemble_size
        self.n_elite_members = n_elite_members
        self.dynamics_net_arch = dynamics_net_arch
        self.dynamics_activation = dynamics_activation
        self.dynamics_weight_decay = dynamics_weight_decay
        self.dynamics_learning_rate = dynamics_learning_rate
        self.dynamics_optimizer_kwargs = dynamics_optimizer_kwargs
        self.dynamics_epochs = dynamics_epochs
        self.dynamics_min_updates = dynamics_min_updates
        self.dynamics_batch_size = dynamics_batch_size
        self.dynamics_holdout_ratio = dynamics_holdout_ratio
        self.dynamics_patience = dynamics_patience
        self.dynamics_max_updates = dynamics_max_updates
        self.dynamics_ignore_positions = dynamics_ignore_positions
        self.dynamics_processing = dynamics_processing
        self.policy_epochs = policy_epochs
        self.policy_batch_size = policy_batch_size
        self.policy_holdout_ratio = policy_holdout_ratio
        self.policy_patience = policy_patience
        self.policy_max_updates = policy_max_updates
        self.reward_fn_spec = reward_fn
        self.termination_fn_spec = termination_fn
        self.predict_with = predict_with
        self.cuda_graph = cuda_graph
        self.distillation_data = distillation_data
        self.distillation_window = distillation_window
        self.distillation_best_episodes = distillation_best_episodes
        self.hallucination_elites = hallucination_elites
        self.extra_pairs_capacity = extra_pairs_capacity
        self.policy_eval_freq = policy_eval_freq
        self.policy_eval_episodes = policy_eval_episodes
        self.policy_control_history: list[tuple[int, float, float]] = []
        self.n_threads = check_optional_int("n_threads", n_threads, 1)
        self._buffer_adds_at_last_train = 0
        self.sb3_poplin_version = __version__
        self.algorithm_name = type(self).__name__
        self._n_model_updates = 0
        #: whether the model was built or trained on a VecNormalize env (saved: a model loaded without it warns in predict)
        self.trained_with_vec_normalize = self._vec_normalize_env is not None
        #: wall time spent fitting the ensemble so far (s), and what the last fit reported (``ProbabilisticEnsemble.fit``)
        self.dynamics_train_seconds = 0.0
        #: seconds spent distilling the policy so far (the other half of ``train``)
        self.distillation_seconds = 0.0
        self.last_dynamics_info: dict[str, float] = {}
        if _init_setup_model:
            self._setup_model()

    # ------------------------------------------------------------------ checks
    @staticmethod
    def _check_spaces(observation_space: spaces.Space, action_space: spaces.Space) -> None:
        if not isinstance(action_space, spaces.Box):
            raise ValueError(
                f"POPLIN plans continuous actions: the action space must be a gymnasium Box, got {action_space}. "
                "For Discrete/MultiDiscrete actions use a model-free algorithm (e.g. PPO or DQN)."
            )
        if not np.all(np.isfinite(action_space.low)) or not np.all(np.isfinite(action_space.high)):
            raise ValueError(
                f"The action space must be bounded (finite low/high), got {action_space}: "
                "wrap the env with gymnasium.wrappers.ClipAction or RescaleAction to give it bounds."
            )
        if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
            raise ValueError(
                f"POPLIN's dynamics model needs flat vector observations (a 1-D Box), got {observation_space}. "
                "For Dict observations use gymnasium.wrappers.FlattenObservation; image observations are not supported."
            )

    # ------------------------------------------------------------------ setup
    @property
    def obs_dim(self) -> int:
        return int(self.observation_space.shape[0])  # type: ignore[index]

    @property
    def act_dim(self) -> int:
        """Size of the flattened action: a multi-dimensional Box is planned, stored and distilled flat."""
        return int(np.prod(self.action_space.shape))  # type: ignore[arg-type]

    @property
    def learned_reward(self) -> bool:
        """Whether the planner reads the reward from the ensemble (``reward_fn="learned"``)."""
        return self.reward_fn_spec == LEARNED

    def _resolve_task(self) -> tuple[Any, Any]:
        """Reward and termination functions: the user's, else the registry's for the env id; None where learned."""
        if self.learned_reward:
            # A learned reward says the task is unknown: learn its termination too, unless the user gave one.
            spec = self.termination_fn_spec
            return None, (None if spec in (None, LEARNED) else resolve_callable(spec))
        reward_fn = resolve_callable(self.reward_fn_spec) if self.reward_fn_spec is not None else None
        termination_fn = None
        if self.termination_fn_spec not in (None, LEARNED):
            termination_fn = resolve_callable(self.termination_fn_spec)
        if reward_fn is None and self.task_kwargs is None:
            # First setup of a new model (a loaded one has the settings it was trained with): read them from the env.
            self.task_kwargs = {}
            if self.env is not None and self.task_env_id in known_env_ids():
                self.task_kwargs = _registered_task_kwargs(self.env, self.observation_space, self.action_space)
        if reward_fn is None:
            if self.task_env_id is None:
                raise ValueError(
                    "POPLIN needs the reward function r(obs, action, next_obs) of the task and none is known for this env "
                    "(it has no gymnasium id). Pass reward_fn= (a callable or 'module:function') and termination_fn=, "
                    "or reward_fn='learned' to learn the reward (and termination) with the dynamics model."
                )
            registered_reward, registered_termination = get_task_fns(self.task_env_id, **(self.task_kwargs or {}))
            reward_fn = registered_reward
            if self.termination_fn_spec is None:
                termination_fn = registered_termination
        return reward_fn, termination_fn

    def _ignored_dynamics_inputs(self) -> tuple[int, ...]:
        """Observation indices the dynamics model does not read: the registered task's observed positions."""
        if not self.dynamics_ignore_positions or self.task_kwargs is None:
            return ()
        if self.task_env_id not in known_env_ids() or self.reward_fn_spec is not None or not self.processing.is_identity:
            return ()
        return position_indices(self.task_env_id, **self.task_kwargs)

    @property
    def learned_termination(self) -> bool:
        """Whether termination is predicted by a learned classifier."""
        return self.termination_fn_spec == LEARNED or (self.learned_reward and self.termination_fn_spec is None)

    def _setup_model(self) -> None:
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        reward_fn, termination_fn = self._resolve_task()
        self._convert_train_freq_arg()
        #: what the model reads and predicts (rebuilt from ``dynamics_processing`` and the env id at every setup)
        self.processing = resolve_processing(self.dynamics_processing, self.task_env_id, self.obs_dim)

        ignored = self._ignored_dynamics_inputs()
        policy_kwargs = dict(self.policy_kwargs)
        if ignored and self.uses_policy_network:
            # The policy reads the same observations as the model: the positions are as uninformative to it.
            policy_kwargs.setdefault("ignored_obs", list(ignored))
        self.policy = self.policy_class(self.observation_space, self.action_space, self.lr_schedule, **policy_kwargs)
        self.policy = self.policy.to(self.device)

        self.dynamics = ProbabilisticEnsemble(
            in_dim=self.processing.input_dim(self.obs_dim) + self.act_dim,
            out_dim=self.obs_dim + (1 if self.learned_reward else 0),  # a reward column when it is learned
            n_members=self.ensemble_size,
            hidden_sizes=self.dynamics_net_arch,
            activation=self.dynamics_activation,
            weight_decays=self.dynamics_weight_decay,
            n_elites=self.n_elite_members,
            ignored_inputs=ignored,
        ).to(self.device)
        self.dynamics.optimizer = make_adam(
            self.dynamics.parameters(), lr=self.dynamics_learning_rate, **self.dynamics_optimizer_kwargs
        )
        self.termination_model: TerminationClassifier | None = None
        if self.learned_termination:
            self.termination_model = TerminationClassifier(self.obs_dim).to(self.device)
            self.termination_model.optimizer = make_adam(self.termination_model.parameters(), lr=1e-3)
            termination_fn = self.termination_model.termination_fn

        action_low = th.as_tensor(self.action_space.low, dtype=th.float32, device=self.device).reshape(-1)  # type: ignore[attr-defined]
        action_high = th.as_tensor(self.action_space.high, dtype=th.float32, device=self.device).reshape(-1)  # type: ignore[attr-defined]
        self.model_rollout = ModelRollout(
            self.dynamics,
            reward_fn,
            termination_fn,
            horizon=self.horizon,
            action_low=action_low,
            action_high=action_high,
            propagation=self.propagation,
            num_particles=self.num_particles,
            learned_reward=self.learned_reward,
            pessimism=self.pessimism,
            processing=self.processing,
        )
        cem = CEMOptimizer(
            self.population_size,
            self.n_elites,
            self.cem_iterations,
            self.cem_alpha,
            early_stop_tol=self.cem_early_stop_tol,
            mirrored=self.cem_mirrored,
            noise_table_size=self.cem_noise_table,
            # from the (saved) seed alone: a loaded model reads the same table as the one saved
            noise_table_seed=((self.seed or 0) * 0x9E3779B1 + 0x7AB1E) % (2**63),
        )
        self.planner = self._make_planner(self.model_rollout, cem)
        cem.check_noise_table(self.planner.noise_dim, "cem_noise_table")
        cuda_graph = self.cuda_graph
        self.planner.cuda_graph = self.device.type == "cuda" if cuda_graph is None else bool(cuda_graph)
        if self.distillation_data == "hallucination":
            self.planner.imagine_elites = min(self.hallucination_elites, self.n_elites)
        self.distiller = self._make_distillation()

        replay_buffer_kwargs = dict(self.replay_buffer_kwargs)
        replay_buffer_kwargs.setdefault("noise_dim", self._stored_noise_dim())
        if self.replay_buffer is None:
            self.replay_buffer = self.replay_buffer_class(
                self.buffer_size,
                self.observation_space,
                self.action_space,
                device=self.device,
                n_envs=self.n_envs,
                **replay_buffer_kwargs,
            )
        self._reset_plans()
        self._plan_times: deque[float] = deque(maxlen=1000)
        #: CEM iterations of the latest training steps (fewer than ``cem_iterations`` when CEM stopped early)
        self._plan_iterations: deque[int] = deque(maxlen=1000)

    def _convert_train_freq_arg(self) -> None:
        train_freq = self.train_freq_arg
        if isinstance(train_freq, list):  # from a saved zip (JSON) or a YAML file
            train_freq = tuple(train_freq)
        if train_freq is None:
            if self.n_envs == 1:
                train_freq = (1, "episode")
            else:
                # SB3 trains on episodes only with one env; several envs train every (typical) episode length.
                max_steps = None
                if self.env is not None:
                    spec = self.env.get_attr("spec", indices=[0])[0]
                    max_steps = getattr(spec, "max_episode_steps", None)
                train_freq = (int(max_steps or 1000), "step")
        self.train_freq = train_freq  # type: ignore[assignment]
        self._convert_train_freq()

    @abstractmethod
    def _make_planner(self, rollout: ModelRollout, cem: CEMOptimizer) -> Planner:
        """The planner of this algorithm."""

    def _stored_noise_dim(self) -> int:
        """Noise the replay buffer keeps per step: the executed step's noise when the distillation reads it (AVG), else
        none (the buffer still records which steps were planned)."""
        return self.planner.step_noise_dim if self.distiller is not None and self.distiller.reads_noise else 0

    @abstractmethod
    def _make_distillation(self) -> Distillation | None:
        """The distillation scheme of this algorithm (None when there is no policy network)."""

    def _behavior_cloning(self) -> BehaviorCloning:
        """Behaviour cloning with this algorithm's distillation schedule (``policy_*`` arguments)."""
        return BehaviorCloning(
            epochs=self.policy_epochs,
            batch_size=self.policy_batch_size,
            holdout_ratio=self.policy_holdout_ratio,
            patience=self.policy_patience,
            max_updates=self.policy_max_updates,
            generator=self.train_generator,
        )

    def set_random_seed(self, seed: int | None = None) -> None:
        """Seed python, numpy, torch, the action space, and the generators of planning and model training.

        :param seed: the seed (None: a random one for the generators)
        """
        super().set_random_seed(seed)
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        self.plan_generator = th.Generator(device=self.device)
        self.plan_generator.manual_seed(seed)
        self.train_generator = th.Generator()
        self.train_generator.manual_seed(seed + 1)
        # Reseeded at every ``predict(..., deterministic=True)``; one object for all calls, so a plan captured in a CUDA
        # graph (which is bound to its generator) is replayed, not captured again, at every deterministic step.
        self._deterministic_plan_generator = th.Generator(device=self.device)

    # ------------------------------------------------------------------ planning
    def _reset_plans(self) -> None:
        """Forget the warm starts of the training envs (start of a run)."""
        self._rollout_plan_mean: th.Tensor | None = None

    @model_threads("planning")
    @th.no_grad()
    def plan(self, observation: np.ndarray, mean: th.Tensor | None = None, generator: th.Generator | None = None) -> Any:
        """Plan one step for a batch of raw (unnormalised) observations.

        :param observation: ``[n_envs, obs_dim]``
        :param mean: warm start ``[n_envs, noise_dim]`` or None
        :param generator: random generator of the plan (default: the model's running ``plan_generator``)
        :return: the planner's :class:`PlanOutput`
        """
        obs = th.as_tensor(observation, dtype=th.float32, device=self.device).reshape(-1, self.obs_dim)
        start = time.perf_counter()
        out = self.planner.plan(obs, mean, self.plan_generator if generator is None else generator)
        if self.device.type == "cuda":
            th.cuda.synchronize(self.device)
        self._plan_times.append(time.perf_counter() - start)
        return out

    def _raw_observation(self, observation: np.ndarray) -> np.ndarray:
        if self._vec_normalize_env is not None:
            return self._vec_normalize_env.unnormalize_obs(observation)
        return observation

    def _seeded_plan_generator(self, *inputs: np.ndarray | None) -> th.Generator:
        """The generator of a deterministic plan, seeded from the model's seed and the call's inputs alone.

        The same observation and state give the same seed, hence the same plan, on every call and after save/load
        (the seed is saved); different inputs draw different samples, so successive steps of an episode do not reuse
        one set of CEM samples. Hashing the host-side inputs costs microseconds and no device transfer.

        :param inputs: the call's raw observation, state and episode starts (None where not given)
        """
        digest = 0
        for array in inputs:
            if array is not None:
                digest = zlib.crc32(np.ascontiguousarray(array, dtype=np.float32).tobytes(), digest)
        seed = ((self.seed or 0) * 0x9E3779B1 + digest) % (2**63)
        generator = getattr(self, "_deterministic_plan_generator", None)
        if generator is None:  # made by set_random_seed; kept across calls (see there)
            generator = self._deterministic_plan_generator = th.Generator(device=self.device)
        return generator.manual_seed(seed)

    def _warn_if_vec_normalize_is_missing(self) -> None:
        if getattr(self, "trained_with_vec_normalize", False) and self._vec_normalize_env is None:
            if not getattr(self, "_warned_missing_vec_normalize", False):
                self._warned_missing_vec_normalize = True
                warnings.warn(
                    f"This {type(self).__name__} was trained on a VecNormalize env but has none now, so predict takes "
                    "the observations it gets as raw (unnormalised). If they are normalised, load the model with its "
                    "statistics: env = VecNormalize.load(path, venv); env.training = False; "
                    f"{type(self).__name__}.load(zip, env=env). Raw observations (e.g. from a plain gym env) are fine.",
                    stacklevel=3,
                )

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """Act with the model (MPC, default) or with the distilled policy alone (``predict_with="policy"``).

        With MPC, ``state`` carries the CEM warm start from one step to the next and ``episode_start`` resets it, as
        ``evaluate_policy``, ``EvalCallback`` and rl-zoo3's enjoy do for recurrent policies.

        Planning samples candidates. With ``deterministic=True`` (``evaluate_policy``'s default) the samples are drawn
        from a generator seeded from the model's ``seed`` and the call's observation and state alone, so the same inputs
        give the same action on every call and after save/load, at the same planning speed. With
        ``deterministic=False`` they come from the model's running generator (seed it with :meth:`set_random_seed`):
        the same inputs give other candidates, hence slightly different actions, at every call.

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
        if not np.all(np.isfinite(observation)):
            raise ValueError("The observation passed to predict contains NaN or inf: check the env (VecCheckNan finds where).")
        self._warn_if_vec_normalize_is_missing()
        if self.predict_with == "policy":
            return self.policy.predict(self._raw_observation(observation), state, episode_start, deterministic)
        obs = self._raw_observation(observation).reshape(-1, self.obs_dim)
        n_envs = obs.shape[0]
        mean = None
        if state is not None:
            mean = th.as_tensor(state[0], dtype=th.float32, device=self.device).reshape(n_envs, -1)
            if episode_start is not None and np.any(episode_start):
                reset = th.as_tensor(np.asarray(episode_start, dtype=bool).reshape(-1), device=self.device)
                mean = th.where(reset.unsqueeze(1), self.planner.initial_mean(n_envs, self.device), mean)
        generator = None
        if deterministic:
            generator = self._seeded_plan_generator(obs, None if state is None else state[0], episode_start)
        out = self.plan(obs, mean, generator)
        action = self.policy.unscale_action(out.action.cpu().numpy().reshape(n_envs, *self.action_space.shape))
        next_state = (self.planner.warm_start(out.mean).cpu().numpy(),)
        if not vectorized:
            action = action[0]
        return action, next_state

    # ------------------------------------------------------------------ collection
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
            raw_obs = self._last_original_obs if self._vec_normalize_env is not None else self._last_obs
            assert raw_obs is not None
            out = self.plan(np.asarray(raw_obs), self._rollout_plan_mean)
            self._rollout_plan_mean = self.planner.warm_start(out.mean)
            self._on_plan(raw_obs, out)
            scaled_action = out.action.cpu().numpy().reshape(n_envs, *self.action_space.shape)  # the planner's are flat
            self._last_executed_noise = out.executed_noise.cpu().numpy()
            self.logger.record_mean("time/plan_ms", 1000.0 * self._plan_times[-1])
            self.logger.record_mean("rollout/cem_iterations", out.cem_iterations)
            self._plan_iterations.append(out.cem_iterations)
        scaled_action = np.clip(scaled_action, -1.0, 1.0).astype(np.float32)
        return self.policy.unscale_action(scaled_action), scaled_action

    def _on_plan(self, raw_obs: np.ndarray, out: PlanOutput) -> None:
        """Called after each planned real step: keeps the hallucinated (imagined state, action) pairs."""
        if out.imagined_states is not None and out.imagined_actions is not None:
            self.replay_buffer.add_extra_pairs(
                out.imagined_states.reshape(-1, self.obs_dim).cpu().numpy(),
                out.imagined_actions.reshape(-1, self.act_dim).cpu().numpy(),
                self.extra_pairs_capacity,
            )

    def _store_transition(
        self,
        replay_buffer: ReplayBuffer,
        buffer_action: np.ndarray,
        new_obs: np.ndarray | dict[str, np.ndarray],
        reward: np.ndarray,
        dones: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        """Store the transition with its planned noise; reject non-finite data; reset the plans of finished episodes."""
        if self._vec_normalize_env is not None:
            next_raw = self._vec_normalize_env.get_original_obs()
            raw_reward = self._vec_normalize_env.get_original_reward()
        else:
            self._last_original_obs, next_raw, raw_reward = self._last_obs, new_obs, reward
        next_obs = np.array(next_raw, dtype=np.float32, copy=True)
        for i, done in enumerate(dones):
            terminal = infos[i].get("terminal_observation") if done else None
            if terminal is not None:
                next_obs[i] = self._raw_observation(terminal) if self._vec_normalize_env is not None else terminal
        # ``next_raw`` holds, for finished episodes, the first observation of the next one (the VecEnv's auto-reset):
        # it is the next step's obs, so it is checked here too, before anything of this step is stored.
        finite = [
            bool(np.all(np.isfinite(next_obs[i])) and np.isfinite(raw_reward[i]) and np.all(np.isfinite(next_raw[i])))
            for i in range(len(dones))
        ]
        if not all(finite):
            bad = [i for i, ok in enumerate(finite) if not ok]
            raise ValueError(
                f"Env(s) {bad} returned NaN or inf in the observation or reward (or, after an episode's end, in the first "
                f"observation of the next episode) at step {self.num_timesteps}. The transition was not stored; the model "
                "and the replay buffer are intact (save them with save() and save_replay_buffer()). Fix the env or wrap "
                "it with stable_baselines3.common.vec_env.VecCheckNan to find the cause."
            )
        noise = self._last_executed_noise
        assert isinstance(replay_buffer, PlanningReplayBuffer)
        replay_buffer.add(self._last_original_obs, next_obs, buffer_action, raw_reward, dones, infos, noise=noise)  # type: ignore[arg-type]
        self._last_obs = new_obs  # type: ignore[assignment]
        if self._vec_normalize_env is not None:
            self._last_original_obs = next_raw
        if self._rollout_plan_mean is not None and np.any(dones):
            reset = th.as_tensor(np.asarray(dones, dtype=bool), device=self.device).unsqueeze(1)
            initial = self.planner.initial_mean(len(dones), self.device)
            self._rollout_plan_mean = th.where(reset, initial, self._rollout_plan_mean)

    def save_replay_buffer(self, path: str | pathlib.Path | io.BufferedIOBase) -> None:
        """Save the replay buffer as a pickle file (``.pkl`` is appended to a path without a suffix, as SB3 does).

        A path is written through a temporary file in the same folder, renamed over the destination only once whole:
        a process killed during a checkpoint leaves the previous file (or none), never a truncated one.

        :param path: path (folders are created) or an open binary file
        """
        if not isinstance(path, (str, pathlib.Path)):
            save_to_pkl(path, self.replay_buffer, self.verbose)
            return
        path = pathlib.Path(path)
        if path.suffix == "":
            path = path.with_name(path.name + ".pkl")
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                save_to_pkl(file, self.replay_buffer, self.verbose)  # type: ignore[arg-type]
            # No fsync: the rename is atomic for a killed process, which is what checkpoints guard against.
            os.replace(temporary, path)
        except BaseException:
            if os.path.exists(temporary):
                os.remove(temporary)
            raise

    def load_replay_buffer(self, path: Any, truncate_last_traj: bool = True) -> None:
        """Load a replay buffer saved by ``save_replay_buffer``, after checking that it fits this model.

        A buffer from another algorithm, env or policy is refused with an error and the current buffer is kept.

        :param path: path (or file object) of the pickled buffer
        :param truncate_last_traj: unused (no HER); kept for SB3's signature
        """
        buffer = load_from_pkl(path, self.verbose)
        if not isinstance(buffer, PlanningReplayBuffer):
            raise TypeError(
                f"{path} holds a {type(buffer).__name__}, not a PlanningReplayBuffer: it was saved by another algorithm. "
                f"Load a buffer saved by {type(self).__name__}.save_replay_buffer, or start without one."
            )
        if self._stored_noise_dim() == 0:
            # noise saved by a version that kept it for every distillation, or by AVG: nothing here reads it
            buffer.drop_noises()
        expected = {
            "observation shape": (self.observation_space.shape, buffer.obs_shape),
            "action dimension": (self.act_dim, buffer.action_dim),
            "planning noise size": (self._stored_noise_dim(), buffer.noise_dim),
            "number of envs": (self.n_envs, buffer.n_envs),
        }
        mismatches = [f"{name} {theirs} (this model: {ours})" for name, (ours, theirs) in expected.items() if ours != theirs]
        if mismatches:
            raise ValueError(
                f"the replay buffer in {path} does not fit this model: it has "
                + ", ".join(mismatches)
                + ". It was saved by a run on another env, algorithm, policy size or distillation; resume with the model "
                "it was saved with (same env, n_envs, algorithm, policy_kwargs and distillation)."
            )
        if not hasattr(buffer, "extra_pairs"):  # saved before the extra pairs moved into the buffer
            buffer.extra_pairs, buffer.n_extra_pairs = deque(), 0
        if not hasattr(buffer, "noise_dtype"):
            buffer.noise_dtype = str(buffer.noises.dtype)
        buffer.device = self.device
        self.replay_buffer = buffer

    def _setup_learn(self, *args: Any, **kwargs: Any) -> Any:
        out = super()._setup_learn(*args, **kwargs)
        raw_obs = self._last_original_obs if self._vec_normalize_env is not None else self._last_obs
        if raw_obs is not None and not np.all(np.isfinite(raw_obs)):
            bad = [i for i, obs in enumerate(np.asarray(raw_obs)) if not np.all(np.isfinite(obs))]
            raise ValueError(
                f"Env(s) {bad} returned NaN or inf in the first observation of an episode (reset). Nothing was stored "
                "or trained on it; the model and the replay buffer are as they were. Fix the env or wrap it with "
                "stable_baselines3.common.vec_env.VecCheckNan to find the cause."
            )
        self.trained_with_vec_normalize = self._vec_normalize_env is not None
        self._reset_plans()
        self._last_executed_noise = None
        return out

    # ------------------------------------------------------------------ training
    def _dynamics_dataset(self, data: dict[str, np.ndarray]) -> tuple[th.Tensor, th.Tensor]:
        obs = th.as_tensor(data["observations"], dtype=th.float32, device=self.device)
        actions = th.as_tensor(data["actions"], dtype=th.float32, device=self.device)
        next_obs = th.as_tensor(data["next_observations"], dtype=th.float32, device=self.device)
        targets = self.processing.target(obs, next_obs)
        if self.learned_reward:
            rewards = th.as_tensor(data["rewards"], dtype=th.float32, device=self.device).reshape(-1, 1)
            targets = th.cat([targets, rewards], dim=1)
        return self.model_rollout.model_inputs(obs, actions), targets

    @model_threads("training")
    def train(self, gradient_steps: int, batch_size: int) -> None:
        """Train the ensemble on all data, then distil the policy (lines 6 of Algorithm 1)."""
        data = self.replay_buffer.all_transitions()
        inputs, targets = self._dynamics_dataset(data)
        start = time.perf_counter()
        model_info = self.dynamics.fit(
            inputs,
            targets,
            self.dynamics.optimizer,
            max_epochs=self._dynamics_epochs_for(len(inputs)),
            batch_size=self.dynamics_batch_size,
            holdout_ratio=self.dynamics_holdout_ratio,
            patience=self.dynamics_patience,
            max_updates=self.dynamics_max_updates,
            generator=self.train_generator,
        )
        self._n_model_updates += 1
        self.dynamics_train_seconds += time.perf_counter() - start
        self.last_dynamics_info = model_info
        if self.termination_model is not None:
            termination_info = self.termination_model.fit(
                th.as_tensor(data["next_observations"], dtype=th.float32, device=self.device),
                th.as_tensor(data["dones"], dtype=th.float32, device=self.device).reshape(-1),
                self.termination_model.optimizer,
                generator=self.train_generator,
            )
            for key, value in termination_info.items():
                self.logger.record(f"train/{key}", value)
        if self.learned_reward:
            with th.no_grad():
                mean, _ = self.dynamics.forward_elites(inputs.unsqueeze(0).expand(self.dynamics.n_elites, -1, -1))
                reward_mse = ((mean.mean(0)[:, -1] - targets[:, -1]) ** 2).mean().item()
            self.logger.record("train/reward_mse", reward_mse)
        self._record_model_fit(model_info, time.perf_counter() - start)
        if self.distiller is not None:
            start = time.perf_counter()
            self._update_learning_rate(self.policy.optimizer)
            policy_info = self.distiller.distill(self.policy.actor, self.policy.optimizer, self._distillation_data(data))
            for key, value in policy_info.items():
                self.logger.record(f"train/{key}", value)
            seconds = time.perf_counter() - start
            self.distillation_seconds += seconds
            self.logger.record("time/distillation_s", seconds)
        self._buffer_adds_at_last_train = self.replay_buffer.n_added
        self._n_updates += 1
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        if self._plan_times:
            self.logger.record("time/plan_ms_median", 1000.0 * float(np.median(self._plan_times)))

    def _dynamics_epochs_for(self, n_transitions: int) -> int:
        """Epochs of one training: ``dynamics_epochs``, or more when they would make fewer than ``dynamics_min_updates``
        gradient steps on ``n_transitions`` (less the hold-out)."""
        n_train = max(n_transitions - int(n_transitions * self.dynamics_holdout_ratio), 1)
        batches_per_epoch = math.ceil(n_train / self.dynamics_batch_size)
        min_updates = self.dynamics_min_updates
        return max(self.dynamics_epochs, math.ceil(min_updates / batches_per_epoch))

    def _distillation_data(self, data: dict[str, np.ndarray]) -> DistillationData:
        """Real states with the planned actions executed there (the random warm-up steps are skipped), the extra pairs
        (imagined or elite), and the noise of the steps planned since the last distillation."""
        planned = data["planned"]  # a view of the buffer: combined into new arrays, never written
        if self.distillation_window is not None:
            planned = planned & self.replay_buffer.recent_mask(self.distillation_window)
        if self.distillation_best_episodes is not None and planned.any():
            episode, returns = self.replay_buffer.episodes()
            candidates = np.unique(episode[planned])
            # Highest return first; among equal returns the older episode (a stable sort of the negated returns).
            best = candidates[np.argsort(-returns[candidates], kind="stable")[: self.distillation_best_episodes]]
            planned = planned & np.isin(episode, best)
        if not planned.any():
            planned = np.ones_like(planned)  # nothing planned yet: use the warm-up data, so the policy sees the states
        obs, actions = data["observations"][planned], data["actions"][planned]
        extra_pairs = self.replay_buffer.extra_pairs
        if extra_pairs:
            obs = np.concatenate([obs, *(s for s, _ in extra_pairs)])
            actions = np.concatenate([actions, *(a for _, a in extra_pairs)])
        recent = self.replay_buffer.recent_noises(self.replay_buffer.n_added - self._buffer_adds_at_last_train)
        return DistillationData(
            observations=th.as_tensor(obs, dtype=th.float32, device=self.device),
            actions=th.as_tensor(actions, dtype=th.float32, device=self.device),
            noises=th.as_tensor(recent, dtype=th.float32, device=self.device),
        )

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
        if self.policy_eval_freq > 0:
            policy_eval = PolicyControlEvaluation(self.policy_eval_freq, self.policy_eval_episodes)
            callback = CallbackList([policy_eval, *([callback] if isinstance(callback, BaseCallback) else callback or [])])
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name or self.tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    # ------------------------------------------------------------------ save / load
    def _excluded_save_params(self) -> list[str]:
        return [
            *super()._excluded_save_params(),
            "dynamics",
            "processing",
            "model_rollout",
            "termination_model",
            "planner",
            "distiller",
            "plan_generator",
            "train_generator",
            "_deterministic_plan_generator",
            "_warned_missing_vec_normalize",
            "_rollout_plan_mean",
            "_plan_times",
            "_plan_iterations",
            "_last_executed_noise",
        ]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts = ["policy", "policy.optimizer", "dynamics", "dynamics.optimizer"]
        if self.termination_model is not None:
            state_dicts += ["termination_model", "termination_model.optimizer"]
        return state_dicts, []

    @classmethod
    def load(  # type: ignore[override]
        cls: type[SelfPlanningAlgorithm],
        path: Any,
        env: GymEnv | None = None,
        device: th.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        **kwargs: Any,
    ) -> SelfPlanningAlgorithm:
        """Load a model saved with :meth:`save`; everything (policy, ensemble, normalisers, optimisers) is in the zip.

        Raises a ValueError when the zip was written by an incompatible sb3-poplin version or another algorithm, or
        when ``env`` is a different task than the one the model was trained on.
        """
        from stable_baselines3.common.save_util import load_from_zip_file

        data, _, _ = load_from_zip_file(path, device="cpu", custom_objects=custom_objects, load_data=True)
        if data is None:
            raise ValueError(f"{path} holds no model data: is it a file written by model.save()?")
        saved_version = data.get("sb3_poplin_version")
        if saved_version is None:
            # An SB3 zip of another algorithm: its policy class (or, if it cannot be unpickled, its description) says
            # which library and algorithm wrote it.
            policy_class = data.get("policy_class")
            if isinstance(policy_class, dict):
                module = policy_class.get("__module__")
            else:
                module = getattr(policy_class, "__module__", None)
            saved_by = f"the algorithm of {module}" if module else "another library"
            raise ValueError(
                f"{path} is not an sb3-poplin model: it holds a model saved by {saved_by}. Load it with the class that "
                "saved it (for a Stable-Baselines3 SAC zip: stable_baselines3.SAC.load); "
                f"{cls.__name__}.load reads zips written by {cls.__name__}.save()."
            )
        if saved_version.split(".")[:2] != __version__.split(".")[:2]:
            raise ValueError(
                f"{path} was saved by sb3-poplin {saved_version}, this is {__version__}; install "
                f"sb3-poplin=={saved_version} to load it, or retrain."
            )
        saved_algorithm = data.get("algorithm_name")
        if saved_algorithm != cls.__name__:
            raise ValueError(f"{path} holds a {saved_algorithm} model: load it with {saved_algorithm}.load().")
        if env is not None:
            env_id = _env_id(env)
            saved_id = data.get("task_env_id")
            if env_id is not None and saved_id is not None and env_id != saved_id and data.get("reward_fn_spec") is None:
                raise ValueError(
                    f"{path} was trained on {saved_id} and plans with its reward; the env given is {env_id}. "
                    f"Pass an env of {saved_id}, or build a new model for {env_id}."
                )
        # Options added after a zip was written take the value that reproduces how it was trained and planned, not
        # the constructor's default (SB3 builds the model with the defaults, then sets what the zip holds).
        older = {name: value for name, value in OPTION_VALUES_OF_OLDER_ZIPS.items() if name not in data}
        return super().load(
            path,
            env=env,
            device=device,
            custom_objects=custom_objects,
            print_system_info=print_system_info,
            force_reset=force_reset,
            **{**older, **kwargs},
        )
