"""
Former home of the reward and termination functions, now in :mod:`sb3_poplin.rewards`.

Kept so that zips and rl-zoo3 hyperparameter files that name a function here still load: a ``reward_fn`` string
such as ``"sb3_poplin.common.tasks:inverted_pendulum_centered"`` saved in users' zips resolves to the same function
as ``"sb3_poplin.rewards:inverted_pendulum_centered"``. New code imports from :mod:`sb3_poplin.rewards`.
"""

from sb3_poplin.rewards import (
    FIXED_SWIMMER_ID,
    PETS_HALF_CHEETAH_ID,
    RewardFn,
    TerminationFn,
    get_processing,
    get_task_fns,
    inverted_pendulum_centered,
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
