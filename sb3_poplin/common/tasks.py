"""
Former home of the reward and termination functions, now in :mod:`sb3_poplin.rewards`.

Kept so that zips and rl-zoo3 hyperparameter files that name a function here still load: a ``reward_fn`` string
such as ``"sb3_poplin.common.tasks:inverted_pendulum_centered"`` saved in users' zips resolves to the same function
as ``"sb3_poplin.rewards:inverted_pendulum_centered"``. New code imports from :mod:`sb3_poplin.rewards`.
"""

from sb3_poplin import rewards
from sb3_poplin.rewards import *  # noqa: F403  (the same objects under the former module name)

__all__ = list(rewards.__all__)
