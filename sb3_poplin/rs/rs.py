"""Random shooting: the simplest model-based planner, one round of uniformly drawn action sequences."""

from __future__ import annotations

from typing import Any, ClassVar

from stable_baselines3.common.type_aliases import GymEnv

from sb3_poplin.common.base import PlanningAlgorithm
from sb3_poplin.common.cem import CEMOptimizer
from sb3_poplin.common.planners import Planner, RandomShootingPlanner
from sb3_poplin.common.policies import POPLINPolicy
from sb3_poplin.common.rollout import ModelRollout
from sb3_poplin.pets.policies import MlpPolicy


class RS(PlanningAlgorithm):
    """Random shooting (RS): ``population_size`` action sequences drawn uniformly in the action bounds, scored
    through the learned ensemble; the best is executed. ``cem_iterations``, ``cem_alpha`` and ``init_sigma`` play no
    role. At equal budget, compare it with PETS at ``population_size x cem_iterations`` candidates.

    :param policy: ``"MlpPolicy"`` (a placeholder network, as for PETS)
    :param env: the environment (id, env or VecEnv)
    :param kwargs: every argument of :class:`~sb3_poplin.common.base.PlanningAlgorithm`
    """

    policy_aliases: ClassVar[dict[str, type[POPLINPolicy]]] = {"MlpPolicy": MlpPolicy}
    tb_log_name: ClassVar[str] = "RS"
    default_init_sigma: ClassVar[float] = 1.0
    uses_policy_network: ClassVar[bool] = False

    def __init__(self, policy: str | type[POPLINPolicy], env: GymEnv | str, _init_setup_model: bool = True, **kwargs: Any):
        kwargs.setdefault("cem_iterations", 1)
        super().__init__(policy, env, _init_setup_model=False, **kwargs)
        if _init_setup_model:
            self._setup_model()

    def _make_planner(self, rollout: ModelRollout, cem: CEMOptimizer) -> Planner:
        return RandomShootingPlanner(rollout, cem, self.act_dim, self.init_sigma, return_mean=False)

    def _make_distillation(self) -> None:
        return None
