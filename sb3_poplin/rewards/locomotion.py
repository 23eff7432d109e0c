"""
Reward and termination of the MuJoCo v5 locomotion envs: HalfCheetah, Hopper, Walker2d, Swimmer, Ant and Humanoid.

What is approximate (see :func:`~sb3_poplin.rewards.reward_mode`) and why:

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

The terminations are exact (they only use observed quantities).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch as th

from sb3_poplin.common.type_aliases import RewardFn, TerminationFn
from sb3_poplin.rewards.registry import APPROXIMATE, EXACT, Task, read_attribute, register_task
from sb3_poplin.rewards.tensor_ops import all_finite, in_range, never_terminates, no_nan, sum_of_squares

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


def _float_list(value: Any) -> list[float]:
    return [float(v) for v in value]


def _dt(env: Any) -> float:
    return float(env.dt)


def locomotion_readers(*names: str, with_dt: bool = True) -> dict[str, Callable[[Any], Any]]:
    """
    Readers of the usual v5 locomotion settings (the private attribute is the kwarg name with a leading underscore).

    :param names: the task kwargs to read
    :param with_dt: also read the env's time step ``dt``
    :return: :attr:`~sb3_poplin.rewards.registry.Task.readers`
    """
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
    readers = {name: read_attribute("_" + name, casts[name]) for name in names}
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
        return no_nan(forward_reward_weight * x_velocity - ctrl_cost_weight * sum_of_squares(action))

    return reward, never_terminates


register_task(
    "HalfCheetah-v5",
    Task(
        defaults={"forward_reward_weight": 1.0, "ctrl_cost_weight": 0.1, _EXCLUDE: True, "dt": 0.05},
        readers=locomotion_readers("forward_reward_weight", "ctrl_cost_weight", _EXCLUDE),
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
        return no_nan(forward_reward_weight * x_velocity - ctrl_cost_weight * sum_of_squares(action))

    return reward, never_terminates


register_task(
    "Swimmer-v5",
    Task(
        defaults={"forward_reward_weight": 1.0, "ctrl_cost_weight": 1e-4, _EXCLUDE: True, "dt": 0.04},
        readers=locomotion_readers("forward_reward_weight", "ctrl_cost_weight", _EXCLUDE),
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
        healthy_state = in_range(state, *healthy_state_range).all(dim=-1)
        return (
            healthy_state
            & in_range(next_obs[..., 1 - e], *healthy_z_range)
            & in_range(next_obs[..., 2 - e], *healthy_angle_range)
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
        return in_range(next_obs[..., 1 - e], *healthy_z_range) & in_range(next_obs[..., 2 - e], *healthy_angle_range)

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
            return never_terminates(obs, action, next_obs)
        return ~is_healthy(next_obs)

    def reward(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        x_velocity = _forward_velocity(obs, next_obs, exclude, vel_index, dt)
        # v5 pays the healthy reward only while healthy, also when terminate_when_unhealthy=False.
        alive = healthy_reward * is_healthy(next_obs).to(next_obs.dtype)
        return no_nan(forward_reward_weight * x_velocity + alive - ctrl_cost_weight * sum_of_squares(action))

    return reward, termination


register_task(
    "Hopper-v5",
    Task(
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
        readers=locomotion_readers(
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

register_task(
    "Walker2d-v5",
    Task(
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
        readers=locomotion_readers(
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
        return all_finite(next_obs[..., :n_state]) & (z >= healthy_z_range[0]) & (z <= healthy_z_range[1])

    def termination(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        if not terminate_when_unhealthy:
            return never_terminates(obs, action, next_obs)
        return ~is_healthy(next_obs)

    def reward(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        x_velocity = _forward_velocity(obs, next_obs, bool(e), vel_index, dt)
        alive = healthy_reward * is_healthy(next_obs).to(next_obs.dtype)
        costs = ctrl_cost_weight * sum_of_squares(action)
        if include_cfrc_ext_in_observation:
            costs = costs + contact_cost_weight * sum_of_squares(next_obs[..., n_state : n_state + 78])
        return no_nan(forward_reward_weight * x_velocity + alive - costs)

    return reward, termination


register_task(
    "Ant-v5",
    Task(
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
        readers=locomotion_readers(
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
        return in_range(next_obs[..., z_index], *healthy_z_range)

    def termination(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        if not terminate_when_unhealthy:
            return never_terminates(obs, action, next_obs)
        return ~is_healthy(next_obs)

    def reward(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        alive = healthy_reward * is_healthy(next_obs).to(next_obs.dtype)
        costs = ctrl_cost_weight * sum_of_squares(action)
        if include_cfrc_ext_in_observation:
            contact = contact_cost_weight * sum_of_squares(next_obs[..., cfrc_start : cfrc_start + 6 * nb])
            costs = costs + th.clamp(contact, contact_cost_range[0], contact_cost_range[1])
        return no_nan(forward_reward_weight * forward_velocity(obs, next_obs) + alive - costs)

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


register_task(
    "Humanoid-v5",
    Task(
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
        readers=locomotion_readers(
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
