"""
Reward and termination of the MuJoCo v5 envs with a fixed base: the balancing envs (InvertedPendulum-v5,
InvertedDoublePendulum-v5) and the arms (Reacher-v5, Pusher-v5), plus :func:`inverted_pendulum_centered`, a planning
objective for InvertedPendulum-v5.

All are exact but InvertedDoublePendulum's reward: it rewards the tip position from the site kinematics, which MuJoCo
last computed at an intermediate stage of the RK4 step rather than at the observed final state, and penalises the
unclipped pole velocities, which the observation clips to +-10 (error ~1e-4).
"""

from __future__ import annotations

import torch as th

from sb3_poplin.common.type_aliases import RewardFn, TerminationFn
from sb3_poplin.rewards.registry import APPROXIMATE, Task, read_attribute, register_task
from sb3_poplin.rewards.tensor_ops import all_finite, never_terminates, no_nan, sum_of_squares


def _inverted_pendulum() -> tuple[RewardFn, TerminationFn]:
    # InvertedPendulum-v5: obs = [qpos(cart, pole), qvel]; terminates when |pole angle| > 0.2 after the step,
    # reward is 1 while not terminated (0 on the terminating step).
    def termination(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        return ~all_finite(next_obs) | (th.abs(next_obs[..., 1]) > 0.2)

    def reward(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        return (~termination(obs, action, next_obs)).to(next_obs.dtype)

    return reward, termination


register_task(
    "InvertedPendulum-v5",
    Task(defaults={}, readers={}, build=_inverted_pendulum, obs_dim=lambda **_: 4),
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
    step alive. Use it with ``reward_fn="sb3_poplin.rewards:inverted_pendulum_centered"``; the returns reported
    (logger, ``evaluate_policy``) stay the env's own. Measured in ``docs/inverted_pendulum.md``.
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
        return no_nan(alive - dist_penalty - vel_penalty)

    return reward, termination


register_task(
    "InvertedDoublePendulum-v5",
    Task(
        defaults={"healthy_reward": 10.0},
        readers={"healthy_reward": read_attribute("_healthy_reward", float)},
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
        return no_nan(-reward_dist_weight * dist - reward_control_weight * sum_of_squares(action))

    return reward, never_terminates


register_task(
    "Reacher-v5",
    Task(
        defaults={"reward_dist_weight": 1.0, "reward_control_weight": 1.0},
        readers={
            "reward_dist_weight": read_attribute("_reward_dist_weight", float),
            "reward_control_weight": read_attribute("_reward_control_weight", float),
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
        return no_nan(-reward_near_weight * near - reward_dist_weight * dist - reward_control_weight * sum_of_squares(action))

    return reward, never_terminates


register_task(
    "Pusher-v5",
    Task(
        defaults={"reward_near_weight": 0.5, "reward_dist_weight": 1.0, "reward_control_weight": 0.1},
        readers={
            "reward_near_weight": read_attribute("_reward_near_weight", float),
            "reward_dist_weight": read_attribute("_reward_dist_weight", float),
            "reward_control_weight": read_attribute("_reward_control_weight", float),
        },
        build=_pusher,
        obs_dim=lambda **_: 23,
    ),
    env_class="gymnasium.envs.mujoco.pusher_v5.PusherEnv",
)
