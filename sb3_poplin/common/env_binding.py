"""Binding an algorithm to its env: the spaces it can plan in, the env's id, and the reward, termination and model
processing the planner uses for it.

The planner needs the task's reward ``r(obs, action, next_obs)`` and termination as torch functions. They are the
user's (``reward_fn=``, ``termination_fn=``), learned with the model (``"learned"``), or the ones registered for the
env's id in :mod:`sb3_poplin.rewards`, built with the settings of the env at hand (its ``ctrl_cost_weight``,
``healthy_z_range``, ...), which are read once from the env, kept in the zip and used again after loading.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.type_aliases import GymEnv
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecNormalize

from sb3_poplin.common.processing import DynamicsProcessing, processing_from_spec
from sb3_poplin.common.type_aliases import RewardFn, TerminationFn
from sb3_poplin.rewards import (
    get_processing,
    get_task_fns,
    known_env_ids,
    position_indices,
    resolve_callable,
    task_kwargs_from_env,
)

#: the value of ``reward_fn`` / ``termination_fn`` that learns the function with the model
LEARNED = "learned"


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


def check_spaces(observation_space: spaces.Space, action_space: spaces.Space) -> None:
    """Refuse, with what to do instead, spaces the planner cannot work in.

    :raises ValueError: for a non-Box or unbounded action space, or observations that are not a flat Box
    """
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


class SpaceShapes:
    """The sizes an algorithm plans with, read from its spaces (a mixin of the algorithms)."""

    observation_space: spaces.Space
    action_space: spaces.Space

    @property
    def obs_dim(self) -> int:
        assert isinstance(self.observation_space, spaces.Box), "a flat Box (checked when the model is built)"
        return int(self.observation_space.shape[0])

    @property
    def action_shape(self) -> tuple[int, ...]:
        return tuple(self.action_space.shape or ())

    @property
    def act_dim(self) -> int:
        """Size of the flattened action: a multi-dimensional Box is planned, stored and distilled flat."""
        return get_action_dim(self.action_space)


def env_id_of(env: GymEnv | str | None) -> str | None:
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

    The registered readers of :func:`~sb3_poplin.rewards.task_kwargs_from_env` read plain attributes of the unwrapped
    env (``_ctrl_cost_weight``, ``dt``, ...); ``get_attr`` reaches them in the worker with gymnasium's
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
    """What :func:`~sb3_poplin.rewards.task_kwargs_from_env` reads of an env: its spec and unwrapped env, and the
    observation space the model sees (after every gym and VecEnv wrapper).

    :param spec: the env's spec
    :param unwrapped: the unwrapped env (or a reader of its attributes in another process)
    :param observation_space: the model's observation space
    """

    def __init__(self, spec: Any, unwrapped: Any, observation_space: spaces.Space) -> None:
        self.spec = spec
        self.unwrapped = unwrapped
        self.observation_space = observation_space


def registered_task_kwargs(venv: VecEnv, observation_space: spaces.Space, action_space: spaces.Space) -> dict[str, Any]:
    """The reward-relevant settings of env 0 of ``venv`` (any VecEnv type), for the registered reward of its id.

    :raises ValueError: (with what to do) when a wrapper makes the registered functions wrong: an observation of another
        shape than the registered env's, or actions in other units than the unwrapped env's (e.g. RescaleAction)
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
    assert isinstance(action_space, spaces.Box), "a Box action space (checked when the model is built)"
    native = (native_action_space.low, native_action_space.high)
    if native_action_space.shape != action_space.shape or not all(
        np.allclose(a, b) for a, b in zip(native, (action_space.low, action_space.high))
    ):
        raise ValueError(
            f"The action space the model sees, {action_space}, is not {env_id}'s own ({native_action_space}): an action "
            f"wrapper (e.g. RescaleAction) changes the units, and {env_id}'s registered reward reads actions in the env's "
            "own units. Pass reward_fn= (a function of the wrapped actions, 'module:function', or 'learned'), or remove "
            "the wrapper."
        )
    # A view is not a gym.Env, but has every attribute the function reads (spec, unwrapped, observation_space)
    return task_kwargs_from_env(view)  # type: ignore[arg-type]


def read_task_kwargs(
    env_id: str | None, venv: VecEnv | None, observation_space: spaces.Space, action_space: spaces.Space
) -> dict[str, Any]:
    """The settings of the env the registered reward is built with ({} for an env without a registered reward).

    :param env_id: the env's id
    :param venv: the env (None: a model built without one)
    """
    if venv is None or env_id not in known_env_ids():
        return {}
    return registered_task_kwargs(venv, observation_space, action_space)


def bind_reward(
    reward_spec: Any, termination_spec: Any, env_id: str | None, task_kwargs: dict[str, Any] | None
) -> tuple[RewardFn | None, TerminationFn | None]:
    """The reward and termination functions the planner uses; None where the model learns them.

    :param reward_spec: the ``reward_fn`` option (None: the registered reward of ``env_id``)
    :param termination_spec: the ``termination_fn`` option
    :param env_id: the env's id
    :param task_kwargs: the env's settings (:func:`read_task_kwargs`) for the registered functions
    :raises ValueError: when no reward is given and none is registered for the env
    """
    if reward_spec == LEARNED:
        # A learned reward says the task is unknown: learn its termination too, unless the user gave one.
        return None, (None if termination_spec in (None, LEARNED) else resolve_callable(termination_spec))
    reward_fn = resolve_callable(reward_spec) if reward_spec is not None else None
    termination_fn = None if termination_spec in (None, LEARNED) else resolve_callable(termination_spec)
    if reward_fn is None:
        if env_id is None:
            raise ValueError(
                "POPLIN needs the reward function r(obs, action, next_obs) of the task and none is known for this env "
                "(it has no gymnasium id). Pass reward_fn= (a callable or 'module:function') and termination_fn=, "
                "or reward_fn='learned' to learn the reward (and termination) with the dynamics model."
            )
        reward_fn, registered_termination = get_task_fns(env_id, **(task_kwargs or {}))
        if termination_spec is None:
            termination_fn = registered_termination
    return reward_fn, termination_fn


def learns_termination(reward_spec: Any, termination_spec: Any) -> bool:
    """Whether termination is predicted by a learned classifier (asked for, or implied by a learned reward)."""
    return termination_spec == LEARNED or (reward_spec == LEARNED and termination_spec is None)


def bind_processing(processing_spec: Any, env_id: str | None, obs_dim: int) -> DynamicsProcessing:
    """What the model reads and predicts: the user's processing, else the one registered for the env, else deltas."""
    return processing_from_spec(processing_spec) or get_processing(env_id, obs_dim)


def ignored_model_inputs(
    ignore_positions: bool, env_id: str | None, task_kwargs: dict[str, Any] | None, reward_spec: Any
) -> tuple[int, ...]:
    """Observation indices the dynamics model and the policy do not read: the registered task's observed absolute
    positions (``dynamics_ignore_positions``), known only when the reward is the registered one."""
    if not ignore_positions or task_kwargs is None or env_id not in known_env_ids() or reward_spec is not None:
        return ()
    return position_indices(env_id, **task_kwargs)


def bind_env(
    values: Mapping[str, Any],
    env_id: str | None,
    task_kwargs: dict[str, Any] | None,
    observation_space: spaces.Space,
    action_space: spaces.Space,
    device: th.device,
    n_envs: int,
    seed: int | None,
) -> EnvBinding:
    """What the engine needs of the env, from an algorithm's option values (``reward_fn``, ``termination_fn``,
    ``dynamics_processing``, ``dynamics_ignore_positions``) and the env's id, settings and spaces.

    :param values: the options' values, by name
    :param env_id: the env's id (None: an env without one)
    :param task_kwargs: the env's settings (:func:`read_task_kwargs`)
    :param observation_space: a flat Box (checked by :func:`check_spaces`)
    :param action_space: a bounded Box
    :param device: where the engine lives
    :param n_envs: environments planned for at once
    :param seed: the algorithm's seed
    """
    assert isinstance(action_space, spaces.Box) and observation_space.shape is not None, "checked by check_spaces"
    obs_dim = int(observation_space.shape[0])
    reward_spec, termination_spec = values["reward_fn"], values["termination_fn"]
    reward_fn, termination_fn = bind_reward(reward_spec, termination_spec, env_id, task_kwargs)
    return EnvBinding(
        obs_dim=obs_dim,
        act_dim=int(np.prod(action_space.shape)),
        action_low=th.as_tensor(action_space.low, dtype=th.float32).reshape(-1),
        action_high=th.as_tensor(action_space.high, dtype=th.float32).reshape(-1),
        reward_fn=reward_fn,
        termination_fn=termination_fn,
        processing=bind_processing(values["dynamics_processing"], env_id, obs_dim),
        ignored_inputs=ignored_model_inputs(values["dynamics_ignore_positions"], env_id, task_kwargs, reward_spec),
        learned_termination=learns_termination(reward_spec, termination_spec),
        device=device,
        n_envs=n_envs,
        seed=seed,
    )


def train_freq_for(train_freq: Any, n_envs: int, venv: VecEnv | None) -> tuple[int, str]:
    """The ``train_freq`` SB3 runs with: the option's value, else one episode (with several envs, SB3 trains on
    episodes only with one, the env's episode length in steps, 1,000 where it has none).

    :param train_freq: the ``train_freq`` option (None, or an SB3 ``(frequency, unit)``, a list when read from JSON/YAML)
    :param n_envs: the number of envs
    :param venv: the env, whose spec gives the episode length (None: a model without one)
    """
    if train_freq is not None:
        frequency, unit = tuple(train_freq) if isinstance(train_freq, (list, tuple)) else (train_freq, "step")
        return int(frequency), str(unit)
    if n_envs == 1:
        return 1, "episode"
    spec = venv.get_attr("spec", indices=[0])[0] if venv is not None else None
    return int(getattr(spec, "max_episode_steps", None) or 1000), "step"


def raw_observation(vec_normalize: VecNormalize | None, observation: np.ndarray) -> np.ndarray:
    """An observation as the env gave it, before VecNormalize (the model plans from raw observations).

    :param vec_normalize: the VecNormalize wrapper the algorithm acts on (None: the observation is raw already)
    :param observation: ``obs_shape`` or ``[n_envs, *obs_shape]``
    :return: the raw observation, of the same shape
    """
    if vec_normalize is not None:
        return np.asarray(vec_normalize.unnormalize_obs(observation))  # a Box observation: an array
    return observation


def raw_transition(
    vec_normalize: VecNormalize | None,
    new_obs: np.ndarray | dict[str, np.ndarray],
    reward: np.ndarray,
    dones: np.ndarray,
    infos: list[dict[str, Any]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The env's own (unnormalised) values of one step of a VecEnv, as the model learns from them.

    :param vec_normalize: the VecNormalize wrapper the algorithm trains on (None: the values are raw already)
    :param new_obs: what ``step`` returned (for a finished episode: the first observation of the next one)
    :param reward: the rewards ``step`` returned
    :param dones: which episodes ended ``[n_envs]``
    :param infos: their infos (a finished episode's last observation is its ``terminal_observation``)
    :return: the next observations with each finished episode's last one ``[n_envs, obs_dim]`` (float32, a copy), the
        observations ``step`` returned and the rewards, all raw
    """
    if vec_normalize is not None:
        next_raw, raw_reward = vec_normalize.get_original_obs(), vec_normalize.get_original_reward()
    else:
        next_raw, raw_reward = new_obs, reward
    next_obs = np.array(next_raw, dtype=np.float32, copy=True)
    for i, done in enumerate(dones):
        terminal = infos[i].get("terminal_observation") if done else None
        if terminal is not None:
            next_obs[i] = raw_observation(vec_normalize, np.asarray(terminal))
    return next_obs, np.asarray(next_raw), np.asarray(raw_reward)
