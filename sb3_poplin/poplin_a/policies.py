"""Policies of POPLIN-A."""

from __future__ import annotations

from typing import Any

from sb3_poplin.common.policies import POPLINPolicy


class MlpPolicy(POPLINPolicy):
    """POPLIN-A's policy network: two hidden layers of 64 tanh units (the authors' setting), tanh output.

    :param args: see :class:`~sb3_poplin.common.policies.POPLINPolicy`
    :param net_arch: hidden widths (default ``[64, 64]``)
    :param kwargs: see :class:`~sb3_poplin.common.policies.POPLINPolicy`
    """

    def __init__(self, *args: Any, net_arch: list[int] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, net_arch=[64, 64] if net_arch is None else net_arch, **kwargs)
