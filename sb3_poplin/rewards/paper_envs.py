"""
Reward and termination of the POPLIN paper's variants of the MuJoCo envs, registered with gymnasium by
:mod:`sb3_poplin.envs`: PETS' Cheetah (``sb3_poplin/PETSHalfCheetah-v0``) and the fixed Swimmer
(``sb3_poplin/FixedSwimmer-v0``).

Both observe the velocity they are rewarded for, so their rewards are exact. This module defines their ids (which
:mod:`sb3_poplin.envs` imports to register the envs) and names the env classes by string only: the dependency goes one
way, from :mod:`sb3_poplin.envs` to :mod:`sb3_poplin.rewards`.
"""

from __future__ import annotations

import torch as th

from sb3_poplin.common.processing import AngleAndVelocityProcessing
from sb3_poplin.common.type_aliases import RewardFn, TerminationFn
from sb3_poplin.rewards.locomotion import locomotion_readers
from sb3_poplin.rewards.registry import Task, register_task
from sb3_poplin.rewards.tensor_ops import never_terminates, no_nan, sum_of_squares

#: gymnasium id of PETS' Cheetah (:class:`sb3_poplin.envs.PETSHalfCheetahEnv`)
PETS_HALF_CHEETAH_ID = "sb3_poplin/PETSHalfCheetah-v0"
#: gymnasium id of the paper's fixed Swimmer (:class:`sb3_poplin.envs.FixedSwimmerEnv`)
FIXED_SWIMMER_ID = "sb3_poplin/FixedSwimmer-v0"


def _velocity_in_obs(
    forward_reward_weight: float, ctrl_cost_weight: float, velocity_index: int
) -> tuple[RewardFn, TerminationFn]:
    # The variants observe the step's mean forward velocity (finite difference of the tracked point over the step), so
    # reward = w_f * next_obs[velocity_index] - w_c * |a|^2 is exact.
    def reward(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        return no_nan(forward_reward_weight * next_obs[..., velocity_index] - ctrl_cost_weight * sum_of_squares(action))

    return reward, never_terminates


register_task(
    PETS_HALF_CHEETAH_ID,
    Task(
        defaults={"forward_reward_weight": 1.0, "ctrl_cost_weight": 0.1},
        readers=locomotion_readers("forward_reward_weight", "ctrl_cost_weight", with_dt=False),
        # obs = [x velocity over the step, HalfCheetah-v5 obs]: the velocity is first.
        build=lambda **kw: _velocity_in_obs(kw["forward_reward_weight"], kw["ctrl_cost_weight"], 0),
        obs_dim=lambda **_: 18,
        # PETS' model of its Cheetah (kept by POPLIN): it reads [obs[1], sin(obs[2]), cos(obs[2]), obs[3:]] (obs[2] is
        # the root's pitch; the step's velocity obs[0] is not read) and predicts obs[0] as it is, the rest as a change.
        processing=AngleAndVelocityProcessing(angles=(2,), absolute=(0,), not_read=(0,)),
    ),
    env_class="sb3_poplin.envs.PETSHalfCheetahEnv",
)

register_task(
    FIXED_SWIMMER_ID,
    Task(
        defaults={"forward_reward_weight": 1.0, "ctrl_cost_weight": 1e-4},
        readers=locomotion_readers("forward_reward_weight", "ctrl_cost_weight", with_dt=False),
        # obs = [Swimmer-v5 obs, head x velocity over the step]: the velocity is last.
        build=lambda **kw: _velocity_in_obs(kw["forward_reward_weight"], kw["ctrl_cost_weight"], -1),
        obs_dim=lambda **_: 9,
    ),
    env_class="sb3_poplin.envs.FixedSwimmerEnv",
)
