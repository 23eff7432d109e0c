"""Types shared by the planner and the reward functions."""

from __future__ import annotations

from collections.abc import Callable

import torch as th

#: ``r(obs [..., obs_dim], action in env units [..., act_dim], next_obs [..., obs_dim]) -> reward [...]``
RewardFn = Callable[[th.Tensor, th.Tensor, th.Tensor], th.Tensor]
#: the same signature, True where the episode terminates: ``[...]`` bool
TerminationFn = Callable[[th.Tensor, th.Tensor, th.Tensor], th.Tensor]
