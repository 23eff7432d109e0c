"""
The POPLIN paper's benchmark variants of the gymnasium MuJoCo envs, registered with gymnasium on import (idempotent).

Both are built on the installed v5 envs and MuJoCo models (no new XML); only the observation (and, for the Swimmer,
the point whose velocity is rewarded) changes:

* ``sb3_poplin/PETSHalfCheetah-v0`` -- the "Cheetah" of PETS (Chua et al., 2018) used by POPLIN: HalfCheetah-v5 whose
  observation starts with the forward velocity of the root over the last step, ``(x_after - x_before) / dt``. The
  reward is HalfCheetah-v5's, ``w_f * that velocity - w_c * |a|^2``, so it is an exact function of the next
  observation (and a dynamics model sees the quantity it is rewarded for). It resets as PETS' env does: the initial
  positions and velocities plus Gaussian noise of std ``reset_noise_scale`` = 0.001 each (HalfCheetah-v5: uniform
  noise of half-width 0.1 on the positions, Gaussian noise of std 0.1 on the velocities).
* ``sb3_poplin/FixedSwimmer-v0`` -- the fixed "Swimmer" of the POPLIN paper (appendix A.2.1): Swimmer-v5 rewards the
  velocity of the torso frame's origin, a point between the head and the middle segment, which makes the task prone
  to a local optimum around a return of 130. The paper moves the velocity "sensor" to the head: here the rewarded
  velocity is that of the front tip of the head segment, ``(head_x_after - head_x_before) / dt``, and it is appended
  to the Swimmer-v5 observation so the reward ``w_f * head velocity - w_c * |a|^2`` is exact.

On reset, where no step has been taken yet, the velocity entry holds the instantaneous velocity of the tracked point.
The reward and termination functions are in :mod:`sb3_poplin.rewards` under the same ids.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv
from gymnasium.envs.mujoco.swimmer_v5 import SwimmerEnv
from gymnasium.spaces import Box

from sb3_poplin.rewards import FIXED_SWIMMER_ID, PETS_HALF_CHEETAH_ID

__all__ = [
    "FIXED_SWIMMER_ID",
    "PETS_HALF_CHEETAH_ID",
    "PETS_RESET_NOISE_SCALE",
    "FixedSwimmerEnv",
    "PETSHalfCheetahEnv",
    "register_envs",
]

# Distance from the swimmer's torso frame origin to the front end of the head segment (swimmer.xml: the torso capsule
# goes from x = 1.5 to x = 0.5 in the torso frame).
_SWIMMER_HEAD_OFFSET = 1.5


def _with_one_more_dim(space: gym.Space) -> Box:
    assert isinstance(space, Box) and len(space.shape) == 1
    return Box(low=-np.inf, high=np.inf, shape=(space.shape[0] + 1,), dtype=np.float64)


#: std of PETS' reset noise on its Cheetah's positions and velocities
PETS_RESET_NOISE_SCALE = 0.001


class PETSHalfCheetahEnv(HalfCheetahEnv):
    """
    HalfCheetah-v5 whose observation is ``[x velocity over the last step, HalfCheetah-v5 observation]`` and whose reset
    adds Gaussian noise of std ``reset_noise_scale`` (default 0.001) to the initial positions and velocities (PETS' Cheetah).

    :param args: positional arguments of :class:`HalfCheetahEnv` (accepted so that EzPickle can rebuild the env).
    :param kwargs: keyword arguments of :class:`HalfCheetahEnv` (e.g. ``ctrl_cost_weight``, ``reset_noise_scale``).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._step_x_velocity = 0.0  # set before the parent builds anything that could call _get_obs
        kwargs.setdefault("reset_noise_scale", PETS_RESET_NOISE_SCALE)
        super().__init__(*args, **kwargs)
        self.observation_space = _with_one_more_dim(self.observation_space)

    def do_simulation(self, ctrl: Any, n_frames: int) -> None:
        x_before = float(self.data.qpos[0])
        super().do_simulation(ctrl, n_frames)
        # Same expression as HalfCheetahEnv.step, so the observed velocity equals the rewarded one bit for bit.
        self._step_x_velocity = (float(self.data.qpos[0]) - x_before) / self.dt

    def reset_model(self) -> np.ndarray:
        # PETS' reset: Gaussian noise on both (HalfCheetah-v5 draws the positions' noise uniformly).
        scale = self._reset_noise_scale
        qpos = self.init_qpos + scale * self.np_random.standard_normal(self.model.nq)
        qvel = self.init_qvel + scale * self.np_random.standard_normal(self.model.nv)
        self.set_state(qpos, qvel)
        self._step_x_velocity = math.nan  # no step taken yet: _get_obs takes the velocity from qvel
        return self._get_obs()

    def _get_obs(self) -> np.ndarray:
        velocity = float(self.data.qvel[0]) if math.isnan(self._step_x_velocity) else self._step_x_velocity
        return np.concatenate(([velocity], super()._get_obs()))


class FixedSwimmerEnv(SwimmerEnv):
    """
    Swimmer-v5 rewarded for the forward velocity of the head's tip, observed as ``[Swimmer-v5 observation, velocity]``.

    :param args: positional arguments of :class:`SwimmerEnv` (accepted so that EzPickle can rebuild the env).
    :param kwargs: keyword arguments of :class:`SwimmerEnv` (e.g. ``ctrl_cost_weight``).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._head_x_velocity = 0.0
        super().__init__(*args, **kwargs)
        self.observation_space = _with_one_more_dim(self.observation_space)

    def _head_x(self) -> float:
        # From qpos rather than data.site_xpos: after mj_step MuJoCo's body/site positions are those of the last RK4
        # stage, not of the final state, and the observation holds the final state.
        x, _, angle = self.data.qpos[0:3]
        return float(x + _SWIMMER_HEAD_OFFSET * math.cos(angle))

    def do_simulation(self, ctrl: Any, n_frames: int) -> None:
        head_before = self._head_x()
        super().do_simulation(ctrl, n_frames)
        self._head_x_velocity = (self._head_x() - head_before) / self.dt

    def reset_model(self) -> np.ndarray:
        self._head_x_velocity = math.nan
        return super().reset_model()

    def _get_obs(self) -> np.ndarray:
        velocity = self._head_x_velocity
        if math.isnan(velocity):
            # d/dt (x + L cos(angle)) at the reset state.
            angle, angle_velocity = self.data.qpos[2], self.data.qvel[2]
            velocity = float(self.data.qvel[0] - _SWIMMER_HEAD_OFFSET * math.sin(angle) * angle_velocity)
        return np.concatenate((super()._get_obs(), [velocity]))

    # MujocoEnv types the reward and info values as numpy float64: ours are Python floats, which gymnasium accepts
    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:  # type: ignore[override]
        observation, _, terminated, truncated, info = super().step(action)
        forward_reward = self._forward_reward_weight * self._head_x_velocity
        ctrl_cost = self.control_cost(action)
        info = {**info, "head_x_velocity": self._head_x_velocity, "reward_forward": forward_reward}
        return observation, float(forward_reward - ctrl_cost), terminated, truncated, info


def register_envs() -> None:
    """
    Register ``sb3_poplin/PETSHalfCheetah-v0`` and ``sb3_poplin/FixedSwimmer-v0`` with gymnasium (no-op if done).
    """
    for env_id, entry_point in (
        (PETS_HALF_CHEETAH_ID, f"{__name__}:PETSHalfCheetahEnv"),
        (FIXED_SWIMMER_ID, f"{__name__}:FixedSwimmerEnv"),
    ):
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, max_episode_steps=1000)


register_envs()
