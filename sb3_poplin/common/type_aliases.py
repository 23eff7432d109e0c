"""Types shared by the modules of sb3_poplin (named after ``stable_baselines3.common.type_aliases``)."""

from collections.abc import Callable

import torch as th

#: ``reward_fn(obs [..., obs_dim], action in env units [..., act_dim], next_obs [..., obs_dim]) -> reward [...]``
RewardFn = Callable[[th.Tensor, th.Tensor, th.Tensor], th.Tensor]
#: ``termination_fn(obs, action, next_obs) -> terminated [...]`` (bool, True where the episode terminates)
TerminationFn = Callable[[th.Tensor, th.Tensor, th.Tensor], th.Tensor]
