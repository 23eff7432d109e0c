"""PETS (Chua et al., 2018): CEM over action sequences with a probabilistic ensemble; the baseline POPLIN builds on."""

from __future__ import annotations

from typing import ClassVar

from stable_baselines3.common.policies import BasePolicy

from sb3_poplin.common.base import PlanningAlgorithm
from sb3_poplin.common.policies import PlannerOnlyPolicy


class PETS(PlanningAlgorithm):
    """PETS: CEM directly over action sequences in [-1, 1] through the same ensemble, rollouts and training loop as
    POPLIN, with no policy network.

    The initial std 0.5 in [-1, 1] units (``init_sigma``'s default) is PETS' initial variance ``(high - low)^2 / 16``.
    PETS' own default propagation is ``fixed_model`` (TSinf) with 20 particles; the POPLIN paper compared against PETS
    with ``expectation``, which is the default here so that both run at equal settings.

    :param policy: ``"MlpPolicy"`` (a placeholder network, kept for SB3's action scaling and the zip layout)
    :param env: the environment (id, env or VecEnv)
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": PlannerOnlyPolicy}
    planner_name: ClassVar[str] = "actions"
    tb_log_name: ClassVar[str] = "PETS"
    default_init_sigma: ClassVar[float] = 0.5
