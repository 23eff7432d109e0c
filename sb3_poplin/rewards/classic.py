"""
Reward and termination of the classic-control envs with continuous actions: Pendulum-v1 and MountainCarContinuous-v0.

Both are exact: the env computes them from the observed state and the action.
"""

from __future__ import annotations

import torch as th

from sb3_poplin.common.type_aliases import RewardFn, TerminationFn
from sb3_poplin.rewards.registry import Task, read_attribute, register_task
from sb3_poplin.rewards.tensor_ops import never_terminates, no_nan


def _pendulum(max_torque: float) -> tuple[RewardFn, TerminationFn]:
    # Pendulum-v1: cost = angle_normalize(th)^2 + 0.1 thdot^2 + 0.001 u^2 on the PRE-step state, u clipped to max_torque.
    def reward(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        # atan2 of (sin, cos) is already the normalised angle in [-pi, pi]; the obs stores cos first.
        theta = th.atan2(obs[..., 1], obs[..., 0])
        theta_dot = obs[..., 2]
        u = th.clamp(action[..., 0], -max_torque, max_torque)
        return no_nan(-(th.square(theta) + 0.1 * th.square(theta_dot) + 0.001 * th.square(u)))

    return reward, never_terminates


register_task(
    "Pendulum-v1",
    Task(
        defaults={"max_torque": 2.0},
        readers={"max_torque": read_attribute("max_torque", float)},
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
        return no_nan(bonus - 0.1 * th.square(action[..., 0]))

    return reward, termination


register_task(
    "MountainCarContinuous-v0",
    Task(
        defaults={"goal_position": 0.45, "goal_velocity": 0.0},
        readers={
            "goal_position": read_attribute("goal_position", float),
            "goal_velocity": read_attribute("goal_velocity", float),
        },
        build=_mountain_car,
        obs_dim=lambda **_: 2,
    ),
    env_class="gymnasium.envs.classic_control.continuous_mountain_car.Continuous_MountainCarEnv",
)
