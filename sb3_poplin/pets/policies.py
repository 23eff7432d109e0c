"""Policies of the planning baselines (PETS, random shooting)."""

from __future__ import annotations

from typing import Any

from sb3_poplin.common.policies import POPLINPolicy


class MlpPolicy(POPLINPolicy):
    """A minimal network that the planning baselines never train nor use to act.

    SB3 algorithms own a policy (it scales actions and anchors the zip's layout); PETS and random shooting plan
    without one, so it is kept as small as possible (no hidden layer).

    :param args: see :class:`~sb3_poplin.common.policies.POPLINPolicy`
    :param net_arch: hidden widths (default none)
    :param kwargs: see :class:`~sb3_poplin.common.policies.POPLINPolicy`
    """

    def __init__(self, *args: Any, net_arch: list[int] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, net_arch=[] if net_arch is None else net_arch, **kwargs)
