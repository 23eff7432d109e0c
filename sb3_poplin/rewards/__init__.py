"""
Batched torch reward and termination functions of the benchmark environments.

The MPC planner imagines trajectories with a learned dynamics model, so it needs the environment's reward
``r(obs, action, next_obs)`` and termination ``done(obs, action, next_obs)`` as pure torch functions that work on any
leading batch shape, device and dtype. This package provides them for the gymnasium environments POPLIN is benchmarked
on, one module per family of envs (:mod:`~sb3_poplin.rewards.classic`, :mod:`~sb3_poplin.rewards.manipulation`,
:mod:`~sb3_poplin.rewards.locomotion`, and :mod:`~sb3_poplin.rewards.paper_envs` for the paper's variants registered by
:mod:`sb3_poplin.envs`), each registering its envs in :mod:`~sb3_poplin.rewards.registry` when imported.

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
* ``"approximate"``: some term of the reward depends on a quantity that is not in the observation, so it is estimated
  (the locomotion envs' forward velocity unless their position is observed, Ant's and Humanoid's body kinematics,
  InvertedDoublePendulum's tip). The docstrings of :mod:`~sb3_poplin.rewards.locomotion` and
  :mod:`~sb3_poplin.rewards.manipulation` say what is estimated and why.

The termination functions are exact in all cases (they only use observed quantities). See ``docs/rewards.md`` (written
by ``benchmarks/reward_accuracy.py``) for the measured errors.
"""

from sb3_poplin.common.type_aliases import RewardFn, TerminationFn
from sb3_poplin.rewards import classic, locomotion, manipulation, paper_envs  # noqa: F401  (each registers its envs on import)
from sb3_poplin.rewards.manipulation import inverted_pendulum_centered
from sb3_poplin.rewards.paper_envs import FIXED_SWIMMER_ID, PETS_HALF_CHEETAH_ID
from sb3_poplin.rewards.registry import (
    get_processing,
    get_task_fns,
    known_env_ids,
    position_indices,
    resolve_callable,
    reward_mode,
    task_kwargs_from_env,
)

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
