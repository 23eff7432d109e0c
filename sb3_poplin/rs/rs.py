"""Random shooting: the simplest model-based planner, one round of uniformly drawn action sequences."""

from __future__ import annotations

from typing import Any, ClassVar

from stable_baselines3.common.policies import BasePolicy

from sb3_poplin.common.base import PlanningAlgorithm
from sb3_poplin.common.policies import PlannerOnlyPolicy


class RS(PlanningAlgorithm):
    """Random shooting (RS): ``population_size`` action sequences drawn uniformly in the action bounds, scored through
    the learned ensemble; the best is executed. ``optimizer`` and the options of the optimizers (``cem_iterations``,
    default 1, ``cem_alpha``, ``cem_execute``, ``init_sigma``, ``cem_*``, ``icem_*``) play no role (one uniform draw, whose
    best is executed). At equal budget, compare it with PETS at ``population_size x cem_iterations`` candidates.

    :param policy: ``"MlpPolicy"`` (a placeholder network, as for PETS)
    :param env: the environment (id, env or VecEnv)
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": PlannerOnlyPolicy}
    planner_name: ClassVar[str] = "random"
    tb_log_name: ClassVar[str] = "RS"
    default_init_sigma: ClassVar[float] = 1.0
    option_defaults: ClassVar[dict[str, Any]] = {"cem_iterations": 1, "cem_execute": "best"}
