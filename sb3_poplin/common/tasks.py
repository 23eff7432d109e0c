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
  The termination functions are exact in all cases (they only use observed quantities).

What is approximate and why:

* The v5 locomotion envs reward the forward velocity ``(x_after - x_before) / dt``, but by default
  (``exclude_current_positions_from_observation=True``) the x (and y) position is not observed and the observed
  velocity is only the one at the end of the step. The approximate mode uses the trapezoidal estimate
  ``(v(obs) + v(next_obs)) / 2``, which tracks the displacement better than ``v(next_obs)`` alone. When the env is made
  with ``exclude_current_positions_from_observation=False``, x is ``obs[..., 0]`` and the reward is exact,
  ``(next_obs[..., 0] - obs[..., 0]) / dt``, for HalfCheetah, Hopper, Walker2d and Swimmer.
* Ant and Humanoid are never exact: their reward uses MuJoCo body positions (``xpos``/``xipos``), which after
  ``mj_step`` hold the kinematics of the last RK4 stage, not of the observed final state. With x observed the position
  difference is still used (error ~1e-2 for Ant, ~1e-3 for Humanoid). Humanoid rewards the velocity of the centre of
  mass, which is recovered from the observed ``cinert`` (and ``cvel``) blocks; without them the root's velocity stands
  in for it. Their contact cost needs the external contact forces, observed when ``include_cfrc_ext_in_observation``
  (the v5 default; Ant-v4 called it ``use_contact_forces``); without them it is taken as zero.
* InvertedDoublePendulum rewards the tip position from the site kinematics (same RK4-stage caveat) and penalises the
  unclipped pole velocities, which the observation clips to +-10 (error ~1e-4).

See ``docs/rewards.md`` (written by ``benchmarks/reward_accuracy.py``) for the measured errors.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import gymnasium as gym
import torch as th

from sb3_poplin.common.processing import AngleAndVelocityProcessing, DeltaProcessing, DynamicsProcessing

__all__ = [
    "FIXED_SWIMMER_ID",
    "PETS_HALF_CHEETAH_ID",
    "RewardFn",
    "TerminationFn",
    "get_processing",
    "get_task_fns",
    "inverted_pendulum_centered",
    "known_env_ids",
    "position_indices",
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
    :param obs_dim: ``obs_dim(**kwargs) -> int``, the observation size the functions expect (checked against the env by
        :func:`task_kwargs_from_env` to catch observation wrappers and custom models).
    :param mode: ``mode(**kwargs) -> "exact" | "approximate"``.
    :param positions: ``positions(**kwargs) -> tuple[int, ...]``, the observation indices that hold the body's absolute
        position along directions the dynamics do not depend on (see :func:`position_indices`).
    :param processing: what a dynamics model of this env reads and predicts, where the env's authors chose it (None:
        the raw observation and its change; see :func:`get_processing`).
    """

    defaults: dict[str, Any]
    readers: dict[str, Callable[[Any], Any]]
    build: Callable[..., tuple[RewardFn, TerminationFn]]
    obs_dim: Callable[..., int]
    mode: Callable[..., str] = field(default=lambda **_: EXACT)
    positions: Callable[..., tuple[int, ...]] = field(default=lambda **_: ())
    processing: DynamicsProcessing | None = None


_TASKS: dict[str, _Task] = {}
# "module.Class" of ``env.unwrapped`` -> env id, to recognise envs created without ``gym.make`` (no spec) or registered
# under another id. The module names the version (hopper_v4 and hopper_v5 both define HopperEnv).
_CLASS_TO_ID: dict[str, str] = {}


def _register(env_id: str, task: _Task, env_class: str) -> None:
    _TASKS[env_id] = task
    _CLASS_TO_ID[env_class] = env_id


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
        obs_dim=lambda **_: 3,
    ),
    env_class="gymnasium.envs.classic_control.pendulum.PendulumEnv",
)


def _mountain_car(goal_position: float, goal_velocity: float) -> tuple[RewardFn, TerminationFn]:
    # MountainCarContinuous-v0: terminates when the POST-step position/velocity reach the goal; the reward is 100 on
    # that step minus 0.1 * action^2 with the UNCLIPPED action (the force applied is clipped, the cost is not).
    def termination(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        return (next_obs[..., 0] >= goal_position) & (next_obs[..., 1] >= goal_velocity)

    def reward(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        bonus = 100.0 * termination(obs, action, next_obs).to(action.dtype)
        return _no_nan(bonus - 0.1 * th.square(action[..., 0]))

    return reward, termination


_register(
    "MountainCarContinuous-v0",
    _Task(
        defaults={"goal_position": 0.45, "goal_velocity": 0.0},
        readers={"goal_position": _attr("goal_position", float), "goal_velocity": _attr("goal_velocity", float)},
        build=_mountain_car,
        obs_dim=lambda **_: 2,
    ),
    env_class="gymnasium.envs.classic_control.continuous_mountain_car.Continuous_MountainCarEnv",
)


# ----------------------------------------------------------------------------------------------------------------------
# MuJoCo v5: balancing and manipulation
# ----------------------------------------------------------------------------------------------------------------------
def _inverted_pendulum() -> tuple[RewardFn, TerminationFn]:
    # InvertedPendulum-v5: obs = [qpos(cart, pole), qvel]; terminates when |pole angle| > 0.2 after the step,
    # reward is 1 while not terminated (0 on the terminating step).
    def termination(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        return ~_all_finite(next_obs) | (th.abs(next_obs[..., 1]) > 0.2)

    def reward(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        return (~termination(obs, action, next_obs)).to(next_obs.dtype)

    return reward, termination


_register(
    "InvertedPendulum-v5",
    _Task(defaults={}, readers={}, build=_inverted_pendulum, obs_dim=lambda **_: 4),
    env_class="gymnasium.envs.mujoco.inverted_pendulum_v5.InvertedPendulumEnv",
)


#: weight of the tie-breaking penalty of :func:`inverted_pendulum_centered`
_CENTERED_WEIGHT = 0.01
_, _inverted_pendulum_termination = _inverted_pendulum()


def inverted_pendulum_centered(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
    """A planning objective for InvertedPendulum-v5: the env's reward (1 per step alive) minus a small penalty for
    pole angle and cart offset, ``0.01 * ((angle / 0.2)^2 + min(x^2, 1))``, at most 0.02 per step.

    Why: with the env's reward every candidate that survives the planning horizon scores the same, so CEM cannot rank
    them; the executed plan wanders, and the cart drifts onto the rail at ``|x| = 1`` (a joint limit the model has never
    seen), where the pole cannot be saved. The penalty breaks those ties towards an upright pole on a centred cart.
    It never outweighs survival: over a horizon ``H < 50`` a plan loses at most ``0.02 * H < 1``, less than one more
    step alive. Use it with ``reward_fn="sb3_poplin.common.tasks:inverted_pendulum_centered"``; the returns reported
    (logger, ``evaluate_policy``) stay the env's own. Measured in ``docs/results.md`` (inverted-pendulum-centred).
    """
    angle, cart = next_obs[..., 1], next_obs[..., 0]
    penalty = (angle / 0.2) ** 2 + th.clamp(cart**2, max=1.0)
    terminated = _inverted_pendulum_termination(obs, action, next_obs)
    return th.where(terminated, th.zeros_like(penalty), 1.0 - _CENTERED_WEIGHT * penalty)


# Both poles of inverted_double_pendulum.xml are 0.6 long and hinge about the y axis; the tip site is at their end.
_IDP_POLE_LENGTH = 0.6


def _inverted_double_pendulum(healthy_reward: float) -> tuple[RewardFn, TerminationFn]:
    # InvertedDoublePendulum-v5: obs = [cart x, sin q1, sin q2, cos q1, cos q2, clip(qvel, +-10) (3), clip(qfrc_constraint)].
    # Reward and termination use the POST-step tip position (x, y) and the unclipped pole velocities qvel[1:3].
    def tip(next_obs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        s1, s2, c1, c2 = next_obs[..., 1], next_obs[..., 2], next_obs[..., 3], next_obs[..., 4]
        # sin/cos of the absolute angle of the second pole by the angle-sum identities (no atan2 needed).
        s12 = s1 * c2 + c1 * s2
        c12 = c1 * c2 - s1 * s2
        x = next_obs[..., 0] + _IDP_POLE_LENGTH * (s1 + s12)
        y = _IDP_POLE_LENGTH * (c1 + c12)
        return x, y

    def termination(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        return tip(next_obs)[1] <= 1.0

    def reward(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        x, y = tip(next_obs)
        dist_penalty = 0.01 * th.square(x) + th.square(y - 2.0)
        vel_penalty = 1e-3 * th.square(next_obs[..., 6]) + 5e-3 * th.square(next_obs[..., 7])
        alive = healthy_reward * (y > 1.0).to(next_obs.dtype)
        return _no_nan(alive - dist_penalty - vel_penalty)

    return reward, termination


_register(
    "InvertedDoublePendulum-v5",
    _Task(
        defaults={"healthy_reward": 10.0},
        readers={"healthy_reward": _attr("_healthy_reward", float)},
        build=_inverted_double_pendulum,
        # The tip comes from the kinematics MuJoCo last computed inside the RK4 step, not from the final qpos that is
        # observed, and the observed velocities are clipped to +-10 (see the module docstring).
        mode=lambda **_: APPROXIMATE,
        obs_dim=lambda **_: 9,
    ),
    env_class="gymnasium.envs.mujoco.inverted_double_pendulum_v5.InvertedDoublePendulumEnv",
)


def _reacher(reward_dist_weight: float, reward_control_weight: float) -> tuple[RewardFn, TerminationFn]:
    # Reacher-v5: the POST-step fingertip - target vector is obs[8:10] (its z component is always 0: both bodies move in
    # the plane z = 0.01), and v5 computes the reward after the step, so it is a function of next_obs only.
    def reward(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        dist = th.linalg.vector_norm(next_obs[..., 8:10], dim=-1)
        return _no_nan(-reward_dist_weight * dist - reward_control_weight * _sq_sum(action))

    return reward, _never


_register(
    "Reacher-v5",
    _Task(
        defaults={"reward_dist_weight": 1.0, "reward_control_weight": 1.0},
        readers={
            "reward_dist_weight": _attr("_reward_dist_weight", float),
            "reward_control_weight": _attr("_reward_control_weight", float),
        },
        build=_reacher,
        obs_dim=lambda **_: 10,
    ),
    env_class="gymnasium.envs.mujoco.reacher_v5.ReacherEnv",
)


def _pusher(
    reward_near_weight: float, reward_dist_weight: float, reward_control_weight: float
) -> tuple[RewardFn, TerminationFn]:
    # Pusher-v5: obs = [qpos[:7], qvel[:7], tips_arm (3), object (3), goal (3)], all POST-step, as in the reward.
    def reward(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        tips_arm, obj, goal = next_obs[..., 14:17], next_obs[..., 17:20], next_obs[..., 20:23]
        near = th.linalg.vector_norm(obj - tips_arm, dim=-1)
        dist = th.linalg.vector_norm(obj - goal, dim=-1)
        return _no_nan(-reward_near_weight * near - reward_dist_weight * dist - reward_control_weight * _sq_sum(action))

    return reward, _never


_register(
    "Pusher-v5",
    _Task(
        defaults={"reward_near_weight": 0.5, "reward_dist_weight": 1.0, "reward_control_weight": 0.1},
        readers={
            "reward_near_weight": _attr("_reward_near_weight", float),
            "reward_dist_weight": _attr("_reward_dist_weight", float),
            "reward_control_weight": _attr("_reward_control_weight", float),
        },
        build=_pusher,
        obs_dim=lambda **_: 23,
    ),
    env_class="gymnasium.envs.mujoco.pusher_v5.PusherEnv",
)


# ----------------------------------------------------------------------------------------------------------------------
# MuJoCo v5: locomotion
# ----------------------------------------------------------------------------------------------------------------------
_EXCLUDE = "exclude_current_positions_from_observation"


def _forward_velocity(obs: th.Tensor, next_obs: th.Tensor, exclude: bool, vel_index: int, dt: float) -> th.Tensor:
    """
    Mean forward velocity over the step.

    Exact when the x position is observed (``obs[..., 0]``). Otherwise the mean of the start and end velocities
    ``obs[..., vel_index]`` and ``next_obs[..., vel_index]`` estimates it (trapezoidal rule over the step), which tracks
    the displacement better than the end-of-step velocity alone.
    """
    if not exclude:
        return (next_obs[..., 0] - obs[..., 0]) / dt
    return 0.5 * (obs[..., vel_index] + next_obs[..., vel_index])


def _mode_from_exclude(**kwargs: Any) -> str:
    return APPROXIMATE if kwargs[_EXCLUDE] else EXACT


def _x_observed(**kwargs: Any) -> tuple[int, ...]:
    """Planar runners (HalfCheetah, Hopper, Walker2d): the root's x is ``obs[0]`` when positions are observed."""
    return () if kwargs[_EXCLUDE] else (0,)


def _xy_observed(**kwargs: Any) -> tuple[int, ...]:
    """Swimmer, Ant, Humanoid: the root's x and y are ``obs[0:2]`` when positions are observed."""
    return () if kwargs[_EXCLUDE] else (0, 1)


def _locomotion_readers(*names: str, with_dt: bool = True) -> dict[str, Callable[[Any], Any]]:
    """Readers of the usual v5 locomotion settings (the private attribute is the kwarg name with a leading underscore)."""
    casts: dict[str, Callable[[Any], Any]] = {
        "forward_reward_weight": float,
        "ctrl_cost_weight": float,
        "contact_cost_weight": float,
        "healthy_reward": float,
        "terminate_when_unhealthy": bool,
        "healthy_state_range": _float_list,
        "healthy_z_range": _float_list,
        "healthy_angle_range": _float_list,
        "contact_cost_range": _float_list,
        _EXCLUDE: bool,
        "include_cinert_in_observation": bool,
        "include_cvel_in_observation": bool,
        "include_qfrc_actuator_in_observation": bool,
        "include_cfrc_ext_in_observation": bool,
    }
    readers = {name: _attr("_" + name, casts[name]) for name in names}
    if with_dt:
        readers["dt"] = _dt
    return readers


def _half_cheetah(
    forward_reward_weight: float, ctrl_cost_weight: float, exclude_current_positions_from_observation: bool, dt: float
) -> tuple[RewardFn, TerminationFn]:
    # HalfCheetah-v5: nq = nv = 9, obs = [qpos[1:] (or qpos), qvel]; never terminates.
    exclude = exclude_current_positions_from_observation
    vel_index = 9 - exclude

    def reward(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        x_velocity = _forward_velocity(obs, next_obs, exclude, vel_index, dt)
        return _no_nan(forward_reward_weight * x_velocity - ctrl_cost_weight * _sq_sum(action))

    return reward, _never


_register(
    "HalfCheetah-v5",
    _Task(
        defaults={"forward_reward_weight": 1.0, "ctrl_cost_weight": 0.1, _EXCLUDE: True, "dt": 0.05},
        readers=_locomotion_readers("forward_reward_weight", "ctrl_cost_weight", _EXCLUDE),
        build=_half_cheetah,
        mode=_mode_from_exclude,
        obs_dim=lambda **kw: 18 - kw[_EXCLUDE],
        positions=_x_observed,
    ),
    env_class="gymnasium.envs.mujoco.half_cheetah_v5.HalfCheetahEnv",
)


def _swimmer(
    forward_reward_weight: float, ctrl_cost_weight: float, exclude_current_positions_from_observation: bool, dt: float
) -> tuple[RewardFn, TerminationFn]:
    # Swimmer-v5: nq = nv = 5, obs = [qpos[2:] (or qpos), qvel]; never terminates.
    exclude = exclude_current_positions_from_observation
    vel_index = 5 - 2 * exclude

    def reward(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        x_velocity = _forward_velocity(obs, next_obs, exclude, vel_index, dt)
        return _no_nan(forward_reward_weight * x_velocity - ctrl_cost_weight * _sq_sum(action))

    return reward, _never


_register(
    "Swimmer-v5",
    _Task(
        defaults={"forward_reward_weight": 1.0, "ctrl_cost_weight": 1e-4, _EXCLUDE: True, "dt": 0.04},
        readers=_locomotion_readers("forward_reward_weight", "ctrl_cost_weight", _EXCLUDE),
        build=_swimmer,
        mode=_mode_from_exclude,
        obs_dim=lambda **kw: 10 - 2 * kw[_EXCLUDE],
        positions=_xy_observed,
    ),
    env_class="gymnasium.envs.mujoco.swimmer_v5.SwimmerEnv",
)


def _hopper(
    forward_reward_weight: float,
    ctrl_cost_weight: float,
    healthy_reward: float,
    terminate_when_unhealthy: bool,
    healthy_state_range: list[float],
    healthy_z_range: list[float],
    healthy_angle_range: list[float],
    exclude_current_positions_from_observation: bool,
    dt: float,
) -> tuple[RewardFn, TerminationFn]:
    # Hopper-v5: nq = nv = 6, obs = [qpos[1:] (or qpos), clip(qvel, +-10)]. Health is judged on the POST-step state:
    # z = qpos[1], angle = qpos[2] and state_vector()[2:] = (qpos[2:], qvel), which is exactly the observation from
    # qpos[2] on, except that the observed qvel is clipped to +-10 (so a |qvel| beyond both 10 and the state range
    # bound cannot be seen; with the default bound of 100 that does not happen in practice).
    e = int(exclude_current_positions_from_observation)
    vel_index = 6 - e

    def is_healthy(next_obs: th.Tensor) -> th.Tensor:
        state = next_obs[..., 2 - e :]
        healthy_state = _in_range(state, *healthy_state_range).all(dim=-1)
        return (
            healthy_state
            & _in_range(next_obs[..., 1 - e], *healthy_z_range)
            & _in_range(next_obs[..., 2 - e], *healthy_angle_range)
        )

    return _healthy_walker_fns(
        is_healthy, forward_reward_weight, ctrl_cost_weight, healthy_reward, terminate_when_unhealthy, bool(e), vel_index, dt
    )


def _walker2d(
    forward_reward_weight: float,
    ctrl_cost_weight: float,
    healthy_reward: float,
    terminate_when_unhealthy: bool,
    healthy_z_range: list[float],
    healthy_angle_range: list[float],
    exclude_current_positions_from_observation: bool,
    dt: float,
) -> tuple[RewardFn, TerminationFn]:
    # Walker2d-v5: nq = nv = 9, obs = [qpos[1:] (or qpos), clip(qvel, +-10)]; z = qpos[1], angle = qpos[2] POST-step.
    e = int(exclude_current_positions_from_observation)
    vel_index = 9 - e

    def is_healthy(next_obs: th.Tensor) -> th.Tensor:
        return _in_range(next_obs[..., 1 - e], *healthy_z_range) & _in_range(next_obs[..., 2 - e], *healthy_angle_range)

    return _healthy_walker_fns(
        is_healthy, forward_reward_weight, ctrl_cost_weight, healthy_reward, terminate_when_unhealthy, bool(e), vel_index, dt
    )


def _healthy_walker_fns(
    is_healthy: Callable[[th.Tensor], th.Tensor],
    forward_reward_weight: float,
    ctrl_cost_weight: float,
    healthy_reward: float,
    terminate_when_unhealthy: bool,
    exclude: bool,
    vel_index: int,
    dt: float,
) -> tuple[RewardFn, TerminationFn]:
    """Reward ``w_f * v_x + healthy_reward * is_healthy - w_c * |a|^2`` and termination shared by Hopper and Walker2d."""

    def termination(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        if not terminate_when_unhealthy:
            return _never(obs, action, next_obs)
        return ~is_healthy(next_obs)

    def reward(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        x_velocity = _forward_velocity(obs, next_obs, exclude, vel_index, dt)
        # v5 pays the healthy reward only while healthy, also when terminate_when_unhealthy=False.
        alive = healthy_reward * is_healthy(next_obs).to(next_obs.dtype)
        return _no_nan(forward_reward_weight * x_velocity + alive - ctrl_cost_weight * _sq_sum(action))

    return reward, termination


_register(
    "Hopper-v5",
    _Task(
        defaults={
            "forward_reward_weight": 1.0,
            "ctrl_cost_weight": 1e-3,
            "healthy_reward": 1.0,
            "terminate_when_unhealthy": True,
            "healthy_state_range": [-100.0, 100.0],
            "healthy_z_range": [0.7, math.inf],
            "healthy_angle_range": [-0.2, 0.2],
            _EXCLUDE: True,
            "dt": 0.008,
        },
        readers=_locomotion_readers(
            "forward_reward_weight",
            "ctrl_cost_weight",
            "healthy_reward",
            "terminate_when_unhealthy",
            "healthy_state_range",
            "healthy_z_range",
            "healthy_angle_range",
            _EXCLUDE,
        ),
        build=_hopper,
        mode=_mode_from_exclude,
        obs_dim=lambda **kw: 12 - kw[_EXCLUDE],
        positions=_x_observed,
    ),
    env_class="gymnasium.envs.mujoco.hopper_v5.HopperEnv",
)

_register(
    "Walker2d-v5",
    _Task(
        defaults={
            "forward_reward_weight": 1.0,
            "ctrl_cost_weight": 1e-3,
            "healthy_reward": 1.0,
            "terminate_when_unhealthy": True,
            "healthy_z_range": [0.8, 2.0],
            "healthy_angle_range": [-1.0, 1.0],
            _EXCLUDE: True,
            "dt": 0.008,
        },
        readers=_locomotion_readers(
            "forward_reward_weight",
            "ctrl_cost_weight",
            "healthy_reward",
            "terminate_when_unhealthy",
            "healthy_z_range",
            "healthy_angle_range",
            _EXCLUDE,
        ),
        build=_walker2d,
        mode=_mode_from_exclude,
        obs_dim=lambda **kw: 18 - kw[_EXCLUDE],
        positions=_x_observed,
    ),
    env_class="gymnasium.envs.mujoco.walker2d_v5.Walker2dEnv",
)


def _ant(
    forward_reward_weight: float,
    ctrl_cost_weight: float,
    contact_cost_weight: float,
    healthy_reward: float,
    terminate_when_unhealthy: bool,
    healthy_z_range: list[float],
    exclude_current_positions_from_observation: bool,
    include_cfrc_ext_in_observation: bool,
    dt: float,
) -> tuple[RewardFn, TerminationFn]:
    # Ant-v5: nq = 15, nv = 14, obs = [qpos[2:] (or qpos), qvel, clipped cfrc_ext[1:] (13 x 6, if included)].
    # The forward reward uses the torso's body position, which MuJoCo computed at the last RK4 stage of the step, not
    # the observed final qpos: even with the x position observed the reward is only approximate (error ~1e-2).
    # Health (POST-step): state_vector() finite and min_z <= qpos[2] <= max_z (inclusive bounds, unlike Hopper).
    # The contact cost is on the POST-step clipped forces, which are observed as they are when included (the world
    # body's cfrc_ext[0], left out of the obs, is always zero).
    e = int(exclude_current_positions_from_observation)
    n_state = 29 - 2 * e  # qpos + qvel in the obs
    vel_index = 15 - 2 * e

    def is_healthy(next_obs: th.Tensor) -> th.Tensor:
        z = next_obs[..., 2 - 2 * e]
        return _all_finite(next_obs[..., :n_state]) & (z >= healthy_z_range[0]) & (z <= healthy_z_range[1])

    def termination(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        if not terminate_when_unhealthy:
            return _never(obs, action, next_obs)
        return ~is_healthy(next_obs)

    def reward(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        x_velocity = _forward_velocity(obs, next_obs, bool(e), vel_index, dt)
        alive = healthy_reward * is_healthy(next_obs).to(next_obs.dtype)
        costs = ctrl_cost_weight * _sq_sum(action)
        if include_cfrc_ext_in_observation:
            costs = costs + contact_cost_weight * _sq_sum(next_obs[..., n_state : n_state + 78])
        return _no_nan(forward_reward_weight * x_velocity + alive - costs)

    return reward, termination


_register(
    "Ant-v5",
    _Task(
        defaults={
            "forward_reward_weight": 1.0,
            "ctrl_cost_weight": 0.5,
            "contact_cost_weight": 5e-4,
            "healthy_reward": 1.0,
            "terminate_when_unhealthy": True,
            "healthy_z_range": [0.2, 1.0],
            _EXCLUDE: True,
            "include_cfrc_ext_in_observation": True,
            "dt": 0.05,
        },
        readers=_locomotion_readers(
            "forward_reward_weight",
            "ctrl_cost_weight",
            "contact_cost_weight",
            "healthy_reward",
            "terminate_when_unhealthy",
            "healthy_z_range",
            _EXCLUDE,
            "include_cfrc_ext_in_observation",
        ),
        build=_ant,
        # Never exact: see the comment in _ant about the torso position.
        mode=lambda **_: APPROXIMATE,
        obs_dim=lambda **kw: 29 - 2 * kw[_EXCLUDE] + 78 * kw["include_cfrc_ext_in_observation"],
        positions=_xy_observed,
    ),
    env_class="gymnasium.envs.mujoco.ant_v5.AntEnv",
)

# Centre of mass of humanoid.xml's torso body in its own frame (model.body_ipos[1]), needed to recover the torso's
# centre of mass from the observed root position and orientation.
_HUMANOID_TORSO_IPOS = (-0.002539380550841599, 0.0, 0.034662588380112245)
_HUMANOID_N_BODIES = 13  # bodies after the world body, i.e. the rows of cinert[1:], cvel[1:], cfrc_ext[1:]


def _humanoid(
    forward_reward_weight: float,
    ctrl_cost_weight: float,
    contact_cost_weight: float,
    contact_cost_range: list[float],
    healthy_reward: float,
    terminate_when_unhealthy: bool,
    healthy_z_range: list[float],
    exclude_current_positions_from_observation: bool,
    include_cinert_in_observation: bool,
    include_cvel_in_observation: bool,
    include_qfrc_actuator_in_observation: bool,
    include_cfrc_ext_in_observation: bool,
    dt: float,
) -> tuple[RewardFn, TerminationFn]:
    # Humanoid-v5: nq = 24, nv = 23, obs = [qpos[2:] (or qpos), qvel, cinert[1:] (13 x 10), cvel[1:] (13 x 6),
    # qfrc_actuator[6:] (17), cfrc_ext[1:] (13 x 6)], each block after qvel only if included.
    # The forward reward is the x velocity of the centre of mass (COM), which is not observed:
    # * with the root position and cinert observed, COM_x = torso COM_x - (mass * offset from COM)_x / mass from the
    #   torso's cinert row, the torso COM being the root position + R(quat) @ ipos; the velocity is its finite difference
    #   (approximate only because MuJoCo computed the reward's kinematics at the last RK4 stage, error ~1e-3);
    # * with cinert and cvel observed, the COM velocity is sum_i (m_i lin_i + ang_i x (m_i offset_i)) / sum_i m_i at the
    #   start and at the end of the step, averaged (trapezoidal rule);
    # * otherwise the root's x velocity qvel[0], averaged the same way.
    # Health (POST-step): min_z < qpos[2] < max_z. Contact cost = clip(w * sum(cfrc_ext^2), range), POST-step; the
    # world body's cfrc_ext[0], left out of the obs, is always zero; without cfrc_ext in the obs it is taken as 0.
    e = int(exclude_current_positions_from_observation)
    nb = _HUMANOID_N_BODIES
    z_index = 2 - 2 * e
    vel_index = 24 - 2 * e
    cinert_start = 47 - 2 * e
    cvel_start = cinert_start + 10 * nb * include_cinert_in_observation
    qfrc_start = cvel_start + 6 * nb * include_cvel_in_observation
    cfrc_start = qfrc_start + 17 * include_qfrc_actuator_in_observation
    ipos_x, _, ipos_z = _HUMANOID_TORSO_IPOS

    def cinert(x: th.Tensor) -> th.Tensor:
        return x[..., cinert_start : cinert_start + 10 * nb].reshape(*x.shape[:-1], nb, 10)

    def total_mass(rows: th.Tensor) -> th.Tensor:
        # The masses are model constants, but a learned model predicts them: keep the division finite.
        return th.clamp(rows[..., 9].sum(dim=-1), min=1e-6)

    def com_x(x: th.Tensor) -> th.Tensor:
        rows = cinert(x)
        w, qx, qy, qz = x[..., 3], x[..., 4], x[..., 5], x[..., 6]
        # First row of the rotation matrix of the unit quaternion (w, x, y, z); its middle entry multiplies ipos_y = 0.
        r00 = 1.0 - 2.0 * (qy * qy + qz * qz)
        r02 = 2.0 * (qx * qz + w * qy)
        torso_com_x = x[..., 0] + r00 * ipos_x + r02 * ipos_z
        torso_mass = th.clamp(rows[..., 0, 9], min=1e-6)
        return torso_com_x - rows[..., 0, 6] / torso_mass

    def com_velocity_x(x: th.Tensor) -> th.Tensor:
        rows = cinert(x)
        cvel = x[..., cvel_start : cvel_start + 6 * nb].reshape(*x.shape[:-1], nb, 6)
        mass, offset = rows[..., 9], rows[..., 6:9]  # offset is mass * (body COM - model COM)
        ang, lin = cvel[..., 0:3], cvel[..., 3:6]
        # x component of ang x offset; the velocity of each body's COM is lin + ang x (offset / mass).
        cross_x = ang[..., 1] * offset[..., 2] - ang[..., 2] * offset[..., 1]
        return (mass * lin[..., 0] + cross_x).sum(dim=-1) / total_mass(rows)

    def forward_velocity(obs: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        if not e and include_cinert_in_observation:
            return (com_x(next_obs) - com_x(obs)) / dt
        if include_cinert_in_observation and include_cvel_in_observation:
            return 0.5 * (com_velocity_x(obs) + com_velocity_x(next_obs))
        return 0.5 * (obs[..., vel_index] + next_obs[..., vel_index])

    def is_healthy(next_obs: th.Tensor) -> th.Tensor:
        return _in_range(next_obs[..., z_index], *healthy_z_range)

    def termination(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        if not terminate_when_unhealthy:
            return _never(obs, action, next_obs)
        return ~is_healthy(next_obs)

    def reward(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        alive = healthy_reward * is_healthy(next_obs).to(next_obs.dtype)
        costs = ctrl_cost_weight * _sq_sum(action)
        if include_cfrc_ext_in_observation:
            contact = contact_cost_weight * _sq_sum(next_obs[..., cfrc_start : cfrc_start + 6 * nb])
            costs = costs + th.clamp(contact, contact_cost_range[0], contact_cost_range[1])
        return _no_nan(forward_reward_weight * forward_velocity(obs, next_obs) + alive - costs)

    return reward, termination


def _humanoid_obs_dim(**kw: Any) -> int:
    nb = _HUMANOID_N_BODIES
    return (
        47
        - 2 * kw[_EXCLUDE]
        + 10 * nb * kw["include_cinert_in_observation"]
        + 6 * nb * kw["include_cvel_in_observation"]
        + 17 * kw["include_qfrc_actuator_in_observation"]
        + 6 * nb * kw["include_cfrc_ext_in_observation"]
    )


_register(
    "Humanoid-v5",
    _Task(
        defaults={
            "forward_reward_weight": 1.25,
            "ctrl_cost_weight": 0.1,
            "contact_cost_weight": 5e-7,
            "contact_cost_range": [-math.inf, 10.0],
            "healthy_reward": 5.0,
            "terminate_when_unhealthy": True,
            "healthy_z_range": [1.0, 2.0],
            _EXCLUDE: True,
            "include_cinert_in_observation": True,
            "include_cvel_in_observation": True,
            "include_qfrc_actuator_in_observation": True,
            "include_cfrc_ext_in_observation": True,
            "dt": 0.015,
        },
        readers=_locomotion_readers(
            "forward_reward_weight",
            "ctrl_cost_weight",
            "contact_cost_weight",
            "contact_cost_range",
            "healthy_reward",
            "terminate_when_unhealthy",
            "healthy_z_range",
            _EXCLUDE,
            "include_cinert_in_observation",
            "include_cvel_in_observation",
            "include_qfrc_actuator_in_observation",
            "include_cfrc_ext_in_observation",
        ),
        build=_humanoid,
        # Never exact: the COM is not observed and the reward's kinematics are from the last RK4 stage (see _humanoid).
        mode=lambda **_: APPROXIMATE,
        obs_dim=_humanoid_obs_dim,
        positions=_xy_observed,
    ),
    env_class="gymnasium.envs.mujoco.humanoid_v5.HumanoidEnv",
)


# ----------------------------------------------------------------------------------------------------------------------
# The POPLIN paper's variants (registered with gymnasium by sb3_poplin.envs)
# ----------------------------------------------------------------------------------------------------------------------
PETS_HALF_CHEETAH_ID = "sb3_poplin/PETSHalfCheetah-v0"
FIXED_SWIMMER_ID = "sb3_poplin/FixedSwimmer-v0"


def _velocity_in_obs(
    forward_reward_weight: float, ctrl_cost_weight: float, velocity_index: int
) -> tuple[RewardFn, TerminationFn]:
    # The variants observe the step's mean forward velocity (finite difference of the tracked point over the step), so
    # reward = w_f * next_obs[velocity_index] - w_c * |a|^2 is exact.
    def reward(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        return _no_nan(forward_reward_weight * next_obs[..., velocity_index] - ctrl_cost_weight * _sq_sum(action))

    return reward, _never


_register(
    PETS_HALF_CHEETAH_ID,
    _Task(
        defaults={"forward_reward_weight": 1.0, "ctrl_cost_weight": 0.1},
        readers=_locomotion_readers("forward_reward_weight", "ctrl_cost_weight", with_dt=False),
        # obs = [x velocity over the step, HalfCheetah-v5 obs]: the velocity is first.
        build=lambda **kw: _velocity_in_obs(kw["forward_reward_weight"], kw["ctrl_cost_weight"], 0),
        obs_dim=lambda **_: 18,
        # PETS' model of its Cheetah (kept by POPLIN): it reads [obs[1], sin(obs[2]), cos(obs[2]), obs[3:]] (obs[2] is
        # the root's pitch; the step's velocity obs[0] is not read) and predicts obs[0] as it is, the rest as a change.
        processing=AngleAndVelocityProcessing(angles=(2,), absolute=(0,), not_read=(0,)),
    ),
    env_class="sb3_poplin.envs.PETSHalfCheetahEnv",
)

_register(
    FIXED_SWIMMER_ID,
    _Task(
        defaults={"forward_reward_weight": 1.0, "ctrl_cost_weight": 1e-4},
        readers=_locomotion_readers("forward_reward_weight", "ctrl_cost_weight", with_dt=False),
        # obs = [Swimmer-v5 obs, head x velocity over the step]: the velocity is last.
        build=lambda **kw: _velocity_in_obs(kw["forward_reward_weight"], kw["ctrl_cost_weight"], -1),
        obs_dim=lambda **_: 9,
    ),
    env_class="sb3_poplin.envs.FixedSwimmerEnv",
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


def position_indices(env_id: str, **task_kwargs: Any) -> tuple[int, ...]:
    """
    Observation indices that hold the body's absolute position along directions the dynamics do not depend on.

    A locomotion env made with ``exclude_current_positions_from_observation=False`` observes the root's x (and y where
    the body moves in the plane); its physics are the same wherever the body stands, so a dynamics model should not
    read them: they drift out of the range of the training data as the agent runs. The reward reads them (the exact
    forward velocity), the model still predicts their change. Heights (Hopper's z, obs[1] there) are not among them:
    the dynamics and the termination depend on them.

    :param env_id: gymnasium id.
    :param task_kwargs: the same kwargs as for :func:`get_task_fns`.
    :return: sorted indices; empty when the env does not observe such positions (the v5 default).
    """
    return tuple(_task(env_id).positions(**_full_kwargs(env_id, task_kwargs)))


def get_processing(env_id: str | None, obs_dim: int) -> DynamicsProcessing:
    """
    What a dynamics model of an env reads and predicts: the processing its authors chose, else the raw observation and
    its change (:class:`~sb3_poplin.common.processing.DeltaProcessing`).

    :param env_id: gymnasium id (None or an unknown id: the default)
    :param obs_dim: the size of the observations the model will see; a registered processing applies only to the
        registered env's own observation (a wrapper that changes it gets the default)
    :return: the processing
    """
    task = _TASKS.get(env_id) if env_id is not None else None
    if task is None or task.processing is None or task.obs_dim(**task.defaults) != obs_dim:
        return DeltaProcessing()
    return task.processing


def _env_id_of(env: gym.Env) -> str:
    unwrapped = env.unwrapped
    for spec in (getattr(env, "spec", None), getattr(unwrapped, "spec", None)):
        if spec is not None and spec.id in _TASKS:
            return spec.id
    env_class = f"{type(unwrapped).__module__}.{type(unwrapped).__qualname__}"
    if env_class in _CLASS_TO_ID:
        return _CLASS_TO_ID[env_class]
    spec = getattr(unwrapped, "spec", None)
    raise ValueError(_unknown_id_message(spec.id if spec is not None else env_class))


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
    env_id = _env_id_of(env)
    task = _TASKS[env_id]
    unwrapped = env.unwrapped
    kwargs = {name: read(unwrapped) for name, read in task.readers.items()}
    shape = getattr(env.observation_space, "shape", None)
    expected = task.obs_dim(**{**task.defaults, **kwargs})
    if shape != (expected,):
        # The functions index into the observation: a wrapper that changes it (frame stacking, a custom model...) would
        # make them silently wrong.
        raise ValueError(
            f"The observation space of this {env_id!r} env has shape {shape}, but the reward/termination functions "
            f"expect ({expected},) for the settings {kwargs}. Observation wrappers and custom models are not supported; "
            "pass reward_fn explicitly."
        )
    return kwargs


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
