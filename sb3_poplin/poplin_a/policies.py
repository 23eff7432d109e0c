"""Policies of POPLIN-A."""

from __future__ import annotations

from typing import Any

from gymnasium import spaces
from stable_baselines3.common.type_aliases import Schedule

from sb3_poplin.common.policies import POPLINPolicy


class MlpPolicy(POPLINPolicy):
    """POPLIN-A's policy network: two hidden layers of 64 tanh units (the authors' setting), tanh output.

    :param observation_space: see :class:`~sb3_poplin.common.policies.POPLINPolicy`
    :param action_space: the action space
    :param lr_schedule: the learning rate schedule
    :param net_arch: hidden widths (default ``[64, 64]``)
    :param kwargs: see :class:`~sb3_poplin.common.policies.POPLINPolicy`
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | None = None,
        **kwargs: Any,
    ) -> None:
        net_arch = [64, 64] if net_arch is None else net_arch
        super().__init__(observation_space, action_space, lr_schedule, net_arch=net_arch, **kwargs)
