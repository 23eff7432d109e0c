"""POPLIN-A: model-based policy planning in action space (Wang & Ba, ICLR 2020, section 4.1)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from stable_baselines3.common.policies import BasePolicy

from sb3_poplin.common.base import PolicyPlanningAlgorithm
from sb3_poplin.common.distillation import distillations_of
from sb3_poplin.common.options import Option, choice
from sb3_poplin.common.planners import PlanOutput, PolicyActionPlanner
from sb3_poplin.common.validation import check_choice, check_int
from sb3_poplin.poplin_a.policies import MlpPolicy


def _distillation(name: str, value: Any, values: dict[str, Any]) -> str:
    return check_choice(name, value, sorted(distillations_of(POPLIN_A)))


def _elite_actions(name: str, value: Any, values: dict[str, Any]) -> int:
    n_elites = values["n_elites"]
    return check_int(name, value, 0, max(int(n_elites), 0), f"n_elites={n_elites}")


class POPLIN_A(PolicyPlanningAlgorithm):
    """POPLIN-A: CEM over additive noise on the actions a policy network proposes.

    ``planning_variant="init"``: the policy proposes a reference action sequence once per step by rolling itself through
    the model; CEM optimises noise on that sequence. ``"replan"``: the action of every candidate at every imagined step
    is ``pi(s_t) + delta_t`` on its own imagined state. The executed action is ``pi(s_0)`` plus the first noise of the
    final CEM mean. The policy is distilled from the planned actions by behaviour cloning. ``init_sigma`` defaults to
    0.5 (variance 0.25).

    :param policy: ``"MlpPolicy"`` (two hidden layers of 64) or a :class:`~sb3_poplin.common.policies.POPLINPolicy`
        subclass
    :param env: the environment (id, env or VecEnv)
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": MlpPolicy}
    planner_name: ClassVar[str] = "policy_actions"
    tb_log_name: ClassVar[str] = "POPLIN_A"
    default_init_sigma: ClassVar[float] = 0.5
    own_options: ClassVar[tuple[Option, ...]] = (
        Option("planning_variant", "init", "str", "``init`` or ``replan``", choice(PolicyActionPlanner.variants)),
        Option("distillation", "bc", "str", "``bc`` (behaviour cloning on the planned actions)", _distillation),
        Option("bc_elite_actions", 0, "int", "also clone the first actions of this many elite candidates per planned step "
               "(the authors' code did so), at most ``n_elites``; 0 clones the executed actions only. Kept up to "
               "``extra_pairs_capacity`` pairs", _elite_actions),
    )  # fmt: skip

    def _on_plan(self, raw_obs: np.ndarray, out: PlanOutput) -> None:
        super()._on_plan(raw_obs, out)
        if out.elite_first_actions is None:
            return
        k = out.elite_first_actions.shape[1]
        actions = out.elite_first_actions.cpu().numpy().reshape(-1, self.act_dim)  # [n_envs * k, act_dim]
        states = np.repeat(np.asarray(raw_obs, dtype=np.float32).reshape(-1, self.obs_dim), k, axis=0)
        self.replay_buffer.add_extra_pairs(states, actions, self.extra_pairs_capacity)
