"""
Batched torch reward and termination functions of the benchmark environments.

The MPC planner imagines trajectories with a learned dynamics model, so it needs the environment's reward
``r(obs, action, next_obs)`` and termination ``done(obs, action, next_obs)`` as pure torch functions that work on any
leading batch shape, device and dtype. This module provides them for the gymnasium environments POPLIN is benchmarked
on, plus the paper's variants registered by :mod:`sb3_poplin.envs`.

Conventions shared by every function here:

* ``obs`` and ``next_obs`` have shape ``[..., obs_dim]``, ``action`` has shape ``[..., act_dim]`` and is in env units
  (i.e. what is passed to ``env.step``, *not* rescaled to [-1, 1]).
* The reward is a float tensor ``[...]``; the termination is a bool tensor ``[...]`` that is True where the episode
  *terminates* (time-limit truncation is never reported).
* Every setting of the env constructor that changes the reward or the termination is a keyword argument of
  :func:`get_task_fns`; :func:`task_kwargs_from_env` reads them from a (possibly wrapped) env as plain Python values.

Exact and approximate rewards
-----------------------------
Some rewards cannot be computed exactly from the observation. :func:`reward_mode` says which case applies:

* ``"exact"``: the function reproduces the env's reward up to float rounding.
* ``"approximate"``: some term of the reward depends on a quantity that is not in the observation, so it is estimated.
  The v5 locomotion envs (HalfCheetah, Hopper, Walker2d, Ant, Swimmer, Humanoid) reward the forward velocity
  ``(x_after - x_before) / dt``, but by default the x (and y) position is excluded from the observation. The approximate
  mode estimates the mean velocity over the step by the average of the velocity at the start (``obs``) and at the end
  (``next_obs``) of the step (for Humanoid, of the centre of mass, which is not in the observation at all, so the root
  body velocity stands in for it). When the env is made with ``exclude_current_positions_from_observation=False`` the
  position is in ``obs[..., 0]`` and the forward reward is exact: ``(next_obs[..., 0] - obs[..., 0]) / dt``. The contact
  cost of Ant and Humanoid needs the external contact forces, which are only observed when
  ``use_contact_forces=True`` (Ant) or ``include_cfrc_ext_in_observation=True`` (Humanoid); without them the contact
  cost is taken as zero and the reward is approximate. See ``docs/rewards.md`` for measured errors.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import gymnasium as gym
import torch as th

__all__ = [
    "RewardFn",
    "TerminationFn",
    "get_task_fns",
    "known_env_ids",
    "resolve_callable",
    "reward_mode",
    "task_kwargs_from_env",
]

RewardFn = Callable[[th.Tensor, th.Tensor, th.Tensor], th.Tensor]
TerminationFn = Callable[[th.Tensor, th.Tensor, th.Tensor], th.Tensor]

EXACT = "exact"
APPROXIMATE = "approximate"


# ----------------------------------------------------------------------------------------------------------------------
# Small torch helpers
# ----------------------------------------------------------------------------------------------------------------------
def _never(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
    """Termination of envs that never terminate (only the time limit ends them)."""
    return th.zeros(next_obs.shape[:-1], dtype=th.bool, device=next_obs.device)


def _all_finite(x: th.Tensor) -> th.Tensor:
    """True where every entry of the last dimension is finite (the MuJoCo envs terminate on a non-finite state)."""
    return th.isfinite(x).all(dim=-1)


def _sq_sum(x: th.Tensor) -> th.Tensor:
    return th.sum(th.square(x), dim=-1)


def _in_range(x: th.Tensor, low: float, high: float) -> th.Tensor:
    """Strict ``low < x < high``, as written in the gymnasium sources."""
    return (x > low) & (x < high)


def _no_nan(reward: th.Tensor) -> th.Tensor:
    """
    Replace NaN by the most negative finite value.

    For finite inputs a NaN can only come out of ``inf - inf`` when two terms overflow with opposite signs (a diverged
    model prediction). Such a candidate must never win the planner's ranking, and NaN would poison sorting and means.
    """
    return th.nan_to_num(reward, nan=th.finfo(reward.dtype).min, posinf=math.inf, neginf=-math.inf)


# ----------------------------------------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Task:
    """
    How to build the reward/termination of one env id.

    :param defaults: every task kwarg the builder understands, with the env's default value.
    :param readers: for each task kwarg, a function that reads its value from ``env.unwrapped``.
    :param build: ``build(**kwargs) -> (reward_fn, termination_fn)``, called with ``defaults`` updated by the user's kwargs.
    :param mode: ``mode(**kwargs) -> "exact" | "approximate"``.
    """

    defaults: dict[str, Any]
    readers: dict[str, Callable[[Any], Any]]
    build: Callable[..., tuple[RewardFn, TerminationFn]]
    mode: Callable[..., str] = field(default=lambda **_: EXACT)


_TASKS: dict[str, _Task] = {}
# Class name of ``env.unwrapped`` -> env id, to recognise envs created without ``gym.make`` (they have no spec).
_CLASS_TO_ID: dict[str, str] = {}


def _register(env_id: str, task: _Task, class_name: str | None = None) -> None:
    _TASKS[env_id] = task
    if class_name is not None:
        _CLASS_TO_ID[class_name] = env_id


def _attr(name: str, cast: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Reader of a private attribute of the unwrapped env, cast to a plain Python type for json/zip serialisation."""

    def read(env: Any) -> Any:
        return cast(getattr(env, name))

    return read


def _float_list(value: Any) -> list[float]:
    return [float(v) for v in value]


def _dt(env: Any) -> float:
    return float(env.dt)


# ----------------------------------------------------------------------------------------------------------------------
# Classic control
# ----------------------------------------------------------------------------------------------------------------------
def _pendulum(max_torque: float) -> tuple[RewardFn, TerminationFn]:
    # Pendulum-v1: cost = angle_normalize(th)^2 + 0.1 thdot^2 + 0.001 u^2 on the PRE-step state, u clipped to max_torque.
    def reward(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        # atan2 of (sin, cos) is already the normalised angle in [-pi, pi]; the obs stores cos first.
        theta = th.atan2(obs[..., 1], obs[..., 0])
        theta_dot = obs[..., 2]
        u = th.clamp(action[..., 0], -max_torque, max_torque)
        return _no_nan(-(th.square(theta) + 0.1 * th.square(theta_dot) + 0.001 * th.square(u)))

    return reward, _never


_register(
    "Pendulum-v1",
    _Task(
        defaults={"max_torque": 2.0},
        readers={"max_torque": _attr("max_torque", float)},
        build=_pendulum,
    ),
    class_name="PendulumEnv",
)


# ----------------------------------------------------------------------------------------------------------------------
# MuJoCo v5
# ----------------------------------------------------------------------------------------------------------------------
def _inverted_pendulum() -> tuple[RewardFn, TerminationFn]:
    # InvertedPendulum-v5: obs = [qpos(cart, pole), qvel]; terminates when |pole angle| > 0.2 after the step,
    # reward is 1 while not terminated (0 on the terminating step).
    def termination(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        return ~_all_finite(next_obs) | (th.abs(next_obs[..., 1]) > 0.2)

    def reward(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        return (~termination(obs, action, next_obs)).to(next_obs.dtype)

    return reward, termination


_register("InvertedPendulum-v5", _Task(defaults={}, readers={}, build=_inverted_pendulum), class_name="InvertedPendulumEnv")


def _forward_velocity(obs: th.Tensor, next_obs: th.Tensor, exclude_pos: bool, vel_index: int, dt: float) -> th.Tensor:
    """
    Mean forward velocity over the step.

    Exact when the x position is observed (``obs[..., 0]``). Otherwise the mean of the start and end velocities
    ``obs[..., vel_index]`` and ``next_obs[..., vel_index]`` estimates it (trapezoidal rule over the step).
    """
    if not exclude_pos:
        return (next_obs[..., 0] - obs[..., 0]) / dt
    return 0.5 * (obs[..., vel_index] + next_obs[..., vel_index])


def _half_cheetah(
    forward_reward_weight: float, ctrl_cost_weight: float, exclude_current_positions_from_observation: bool, dt: float
) -> tuple[RewardFn, TerminationFn]:
    # HalfCheetah-v5: nq = nv = 9, obs = [qpos[1:] (or qpos), qvel]; never terminates.
    exclude = exclude_current_positions_from_observation
    vel_index = 8 if exclude else 9

    def reward(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        x_velocity = _forward_velocity(obs, next_obs, exclude, vel_index, dt)
        return _no_nan(forward_reward_weight * x_velocity - ctrl_cost_weight * _sq_sum(action))

    return reward, _never


def _mode_from_exclude(exclude_current_positions_from_observation: bool = True, **_: Any) -> str:
    return APPROXIMATE if exclude_current_positions_from_observation else EXACT


_register(
    "HalfCheetah-v5",
    _Task(
        defaults={
            "forward_reward_weight": 1.0,
            "ctrl_cost_weight": 0.1,
            "exclude_current_positions_from_observation": True,
            "dt": 0.05,
        },
        readers={
            "forward_reward_weight": _attr("_forward_reward_weight", float),
            "ctrl_cost_weight": _attr("_ctrl_cost_weight", float),
            "exclude_current_positions_from_observation": _attr("_exclude_current_positions_from_observation", bool),
            "dt": _dt,
        },
        build=_half_cheetah,
        mode=_mode_from_exclude,
    ),
    class_name="HalfCheetahEnv",
)


# ----------------------------------------------------------------------------------------------------------------------
# Public interface
# ----------------------------------------------------------------------------------------------------------------------
def known_env_ids() -> list[str]:
    """
    :return: the env ids for which :func:`get_task_fns` has reward and termination functions (sorted).
    """
    return sorted(_TASKS)


def _unknown_id_message(env_id: str) -> str:
    return (
        f"No reward/termination functions are known for env id {env_id!r}. Known ids: {', '.join(known_env_ids())}. "
        "For another env, give the reward explicitly: reward_fn=<callable(obs, action, next_obs) -> reward>, "
        "reward_fn='package.module:function' (an importable function), or reward_fn='learned' to learn the reward "
        "with the dynamics model."
    )


def _task(env_id: str) -> _Task:
    try:
        return _TASKS[env_id]
    except KeyError:
        raise ValueError(_unknown_id_message(env_id)) from None


def _full_kwargs(env_id: str, task_kwargs: dict[str, Any]) -> dict[str, Any]:
    task = _task(env_id)
    unknown = sorted(set(task_kwargs) - set(task.defaults))
    if unknown:
        # A typo would otherwise silently fall back to the default and plan with the wrong reward.
        raise ValueError(f"Unknown task kwargs {unknown} for {env_id!r}; accepted: {sorted(task.defaults)}")
    return {**task.defaults, **task_kwargs}


def get_task_fns(env_id: str, **task_kwargs: Any) -> tuple[RewardFn, TerminationFn]:
    """
    Reward and termination functions of an env.

    :param env_id: gymnasium id, e.g. ``"HalfCheetah-v5"`` (see :func:`known_env_ids`).
    :param task_kwargs: env constructor settings that change the reward or termination, as returned by
        :func:`task_kwargs_from_env`; missing ones take the env's default.
    :return: ``(reward_fn, termination_fn)``, both ``f(obs, action, next_obs)`` on batched torch tensors.
    :raises ValueError: for an unknown env id or an unknown kwarg.
    """
    return _task(env_id).build(**_full_kwargs(env_id, task_kwargs))


def reward_mode(env_id: str, **task_kwargs: Any) -> str:
    """
    Whether the reward function of :func:`get_task_fns` is exact for these settings.

    :param env_id: gymnasium id.
    :param task_kwargs: the same kwargs as for :func:`get_task_fns`.
    :return: ``"exact"`` if the reward is reproduced up to float rounding, ``"approximate"`` if some term is estimated
        because it is not in the observation.
    """
    return _task(env_id).mode(**_full_kwargs(env_id, task_kwargs))


def _env_id_of(env: gym.Env) -> str:
    unwrapped = env.unwrapped
    for spec in (getattr(env, "spec", None), getattr(unwrapped, "spec", None)):
        if spec is not None and spec.id in _TASKS:
            return spec.id
    class_name = type(unwrapped).__name__
    if class_name in _CLASS_TO_ID:
        return _CLASS_TO_ID[class_name]
    spec = getattr(unwrapped, "spec", None)
    raise ValueError(_unknown_id_message(spec.id if spec is not None else class_name))


def task_kwargs_from_env(env: gym.Env) -> dict[str, Any]:
    """
    Read, from a (possibly wrapped) gymnasium env, every constructor setting that changes its reward/termination.

    The values are plain Python types (float, int, bool, list) so they can be saved in a zip/json and passed back to
    :func:`get_task_fns`. The env is identified by its spec id (or, for an env built without ``gym.make``, by the class
    of ``env.unwrapped``). Wrappers that change observations or actions are not accounted for.

    :param env: the env, wrapped or not.
    :return: kwargs for :func:`get_task_fns` and :func:`reward_mode`.
    :raises ValueError: if the env is not one of :func:`known_env_ids`.
    """
    task = _TASKS[_env_id_of(env)]
    unwrapped = env.unwrapped
    return {name: read(unwrapped) for name, read in task.readers.items()}


def resolve_callable(spec: str | Callable) -> Callable:
    """
    Turn a callable or an importable ``"package.module:function"`` string into a callable.

    :param spec: a callable (returned unchanged) or ``"package.module:attribute"`` (dots after the colon reach nested
        attributes, e.g. ``"pkg.mod:Class.method"``).
    :return: the callable.
    :raises ValueError: if the string is malformed or does not name a callable.
    """
    if callable(spec):
        return spec
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise ValueError(f"Expected a callable or a 'package.module:function' string, got {spec!r}")
    module_name, attr_path = spec.split(":")
    if not module_name or not attr_path:
        raise ValueError(f"Expected a callable or a 'package.module:function' string, got {spec!r}")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"Cannot import module {module_name!r} of {spec!r}: {e}") from e
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"{spec!r}: {part!r} not found") from None
    if not callable(obj):
        raise ValueError(f"{spec!r} is not callable")
    return obj
