"""PETS (Chua et al., 2018): CEM over action sequences with a probabilistic ensemble; the baseline POPLIN builds on."""

from __future__ import annotations

from typing import Any, ClassVar

from stable_baselines3.common.type_aliases import GymEnv

from sb3_poplin.common.base import PlanningAlgorithm
from sb3_poplin.common.cem import CEMOptimizer
from sb3_poplin.common.planners import ActionSequencePlanner, Planner
from sb3_poplin.common.policies import POPLINPolicy
from sb3_poplin.common.rollout import ModelRollout
from sb3_poplin.pets.policies import MlpPolicy


class PETS(PlanningAlgorithm):
    """PETS: CEM directly over action sequences in [-1, 1] through the same ensemble, rollouts and training loop as
    POPLIN, with no policy network (``predict_with`` must stay ``mpc``).

    The initial std 0.5 in [-1, 1] units is PETS' initial variance ``(high - low)^2 / 16``. PETS' own default
    propagation is ``fixed_model`` (TSinf) with 20 particles; the POPLIN paper compared against PETS with
    ``expectation``, which is the default here so that both run at equal settings.

    :param policy: ``"MlpPolicy"`` (a placeholder network, kept for SB3's action scaling and the zip layout)
    :param env: the environment (id, env or VecEnv)
    :param kwargs: every argument of :class:`~sb3_poplin.common.base.PlanningAlgorithm`; ``init_sigma`` defaults to 0.5
    """

    policy_aliases: ClassVar[dict[str, type[POPLINPolicy]]] = {"MlpPolicy": MlpPolicy}
    tb_log_name: ClassVar[str] = "PETS"
    default_init_sigma: ClassVar[float] = 0.5
    uses_policy_network: ClassVar[bool] = False

    def __init__(self, policy: str | type[POPLINPolicy], env: GymEnv | str, _init_setup_model: bool = True, **kwargs: Any):
        super().__init__(policy, env, _init_setup_model=False, **kwargs)
        if _init_setup_model:
            self._setup_model()

    def _make_planner(self, rollout: ModelRollout, cem: CEMOptimizer) -> Planner:
        return ActionSequencePlanner(rollout, cem, self.act_dim, self.init_sigma)

    def _make_distillation(self) -> None:
        return None
