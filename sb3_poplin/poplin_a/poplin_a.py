"""POPLIN-A: model-based policy planning in action space (Wang & Ba, ICLR 2020, section 4.1)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from stable_baselines3.common.type_aliases import GymEnv

from sb3_poplin.common.base import PlanningAlgorithm
from sb3_poplin.common.cem import CEMOptimizer
from sb3_poplin.common.distillation import Distillation
from sb3_poplin.common.planners import Planner, PlanOutput, PolicyActionPlanner
from sb3_poplin.common.policies import POPLINPolicy
from sb3_poplin.common.rollout import ModelRollout
from sb3_poplin.poplin_a.policies import MlpPolicy

DISTILLATIONS_A = ("bc",)


class POPLIN_A(PlanningAlgorithm):
    """POPLIN-A: CEM over additive noise on the actions a policy network proposes.

    ``planning_variant="init"``: the policy proposes a reference action sequence once per step by rolling itself through
    the model; CEM optimises noise on that sequence. ``"replan"``: the action of every candidate at every imagined step
    is ``pi(s_t) + delta_t`` on its own imagined state. The executed action is ``pi(s_0)`` plus the first noise of the
    final CEM mean. The policy is distilled from the planned actions by behaviour cloning.

    :param policy: ``"MlpPolicy"`` or a :class:`~sb3_poplin.common.policies.POPLINPolicy` subclass
    :param env: the environment (id, env or VecEnv)
    :param planning_variant: ``init`` or ``replan``
    :param distillation: ``bc`` (behaviour cloning on the planned actions)
    :param bc_elite_actions: also clone the first actions of this many elite candidates per planned step (the
        authors' code did so); 0 clones the executed actions only. Kept up to ``extra_pairs_capacity`` pairs
    :param kwargs: every other argument of :class:`~sb3_poplin.common.base.PlanningAlgorithm` (CEM, horizon, ensemble,
        distillation schedule, reward function, ``predict_with``, ...); ``init_sigma`` defaults to 0.5 (variance 0.25)
    """

    policy_aliases: ClassVar[dict[str, type[POPLINPolicy]]] = {"MlpPolicy": MlpPolicy}
    tb_log_name: ClassVar[str] = "POPLIN_A"
    default_init_sigma: ClassVar[float] = 0.5

    def __init__(
        self,
        policy: str | type[POPLINPolicy],
        env: GymEnv | str,
        planning_variant: str = "init",
        distillation: str = "bc",
        bc_elite_actions: int = 0,
        _init_setup_model: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(policy, env, _init_setup_model=False, **kwargs)
        self.planning_variant = planning_variant.lower()
        self.distillation = distillation.lower()
        if self.distillation not in DISTILLATIONS_A:
            raise ValueError(f"POPLIN_A distils with one of {DISTILLATIONS_A}, got {distillation!r}")
        self.bc_elite_actions = bc_elite_actions
        if _init_setup_model:
            self._setup_model()

    def _make_planner(self, rollout: ModelRollout, cem: CEMOptimizer) -> Planner:
        planner = PolicyActionPlanner(rollout, cem, self.act_dim, self.init_sigma, self.policy.actor, self.planning_variant)
        planner.elite_actions = min(max(self.bc_elite_actions, 0), self.n_elites)
        return planner

    def _make_distillation(self) -> Distillation:
        return self._behavior_cloning()

    def _on_plan(self, raw_obs: np.ndarray, out: PlanOutput) -> None:
        super()._on_plan(raw_obs, out)
        if out.elite_first_actions is None:
            return
        k = out.elite_first_actions.shape[1]
        actions = out.elite_first_actions.cpu().numpy().reshape(-1, self.act_dim)  # [n_envs * k, act_dim]
        states = np.repeat(np.asarray(raw_obs, dtype=np.float32).reshape(-1, self.obs_dim), k, axis=0)
        self.replay_buffer.add_extra_pairs(states, actions, self.extra_pairs_capacity)
