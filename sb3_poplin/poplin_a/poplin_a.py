"""POPLIN-A: model-based policy planning in action space (Wang & Ba, ICLR 2020, section 4.1)."""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar

import numpy as np
import torch as th
from stable_baselines3.common.type_aliases import GymEnv

from sb3_poplin.common.base import PlanningAlgorithm
from sb3_poplin.common.cem import CEMOptimizer
from sb3_poplin.common.distillation import BehaviorCloning, Distillation, DistillationData
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
        authors' code did so); 0 clones the executed actions only
    :param bc_elite_capacity: at most this many (state, elite action) pairs are kept (newest first)
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
        bc_elite_capacity: int = 50_000,
        _init_setup_model: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(policy, env, _init_setup_model=False, **kwargs)
        self.planning_variant = planning_variant.lower()
        self.distillation_name = distillation.lower()
        if self.distillation_name not in DISTILLATIONS_A:
            raise ValueError(f"POPLIN_A distils with one of {DISTILLATIONS_A}, got {distillation!r}")
        self.bc_elite_actions = bc_elite_actions
        self.bc_elite_capacity = bc_elite_capacity
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        super()._setup_model()
        self._elite_pairs: deque[tuple[np.ndarray, np.ndarray]] = deque()
        self._n_elite_pairs = 0

    def _make_planner(self, rollout: ModelRollout, cem: CEMOptimizer) -> Planner:
        return PolicyActionPlanner(rollout, cem, self.act_dim, self.init_sigma, self.policy.actor, self.planning_variant)

    def _make_distillation(self) -> Distillation:
        return BehaviorCloning(
            epochs=self.policy_epochs,
            batch_size=self.policy_batch_size,
            holdout_ratio=self.policy_holdout_ratio,
            patience=self.policy_patience,
            max_updates=self.policy_max_updates,
            generator=self.train_generator,
        )

    def _on_plan(self, raw_obs: np.ndarray, out: PlanOutput) -> None:
        if self.bc_elite_actions <= 0:
            return
        k = min(self.bc_elite_actions, out.elite_first_actions.shape[1])
        actions = out.elite_first_actions[:, :k].cpu().numpy().reshape(-1, self.act_dim)  # [n_envs * k, act_dim]
        states = np.repeat(np.asarray(raw_obs, dtype=np.float32).reshape(-1, self.obs_dim), k, axis=0)
        self._elite_pairs.append((states, actions))
        self._n_elite_pairs += len(actions)
        while self._n_elite_pairs > self.bc_elite_capacity and len(self._elite_pairs) > 1:
            self._n_elite_pairs -= len(self._elite_pairs.popleft()[1])

    def _distillation_data(self, data: dict[str, np.ndarray]) -> DistillationData:
        real = super()._distillation_data(data)
        if not self._elite_pairs:
            return real
        states = th.as_tensor(np.concatenate([s for s, _ in self._elite_pairs]), device=self.device)
        actions = th.as_tensor(np.concatenate([a for _, a in self._elite_pairs]), device=self.device)
        return DistillationData(
            observations=th.cat([real.observations, states]),
            actions=th.cat([real.actions, actions]),
            noises=real.noises,
        )

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_elite_pairs", "_n_elite_pairs"]
