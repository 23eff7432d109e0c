"""Policies of POPLIN-P."""

from __future__ import annotations

from typing import Any

from sb3_poplin.common.policies import POPLINPolicy


class MlpPolicy(POPLINPolicy):
    """POPLIN-P's policy network: one hidden layer of 32 tanh units (the authors' setting), tanh output.

    Small on purpose: every CEM candidate perturbs all of its parameters, so the search space is ``|theta|``
    (``H x |theta|`` for the ``sep`` variant).

    :param args: see :class:`~sb3_poplin.common.policies.POPLINPolicy`
    :param net_arch: hidden widths (default ``[32]``)
    :param kwargs: see :class:`~sb3_poplin.common.policies.POPLINPolicy`
    """

    def __init__(self, *args: Any, net_arch: list[int] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, net_arch=[32] if net_arch is None else net_arch, **kwargs)
