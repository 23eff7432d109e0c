"""POPLIN-P: model-based policy planning in parameter space (Wang & Ba, ICLR 2020, section 4.2)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch as th
from stable_baselines3.common.type_aliases import GymEnv

from sb3_poplin.common.base import PlanningAlgorithm
from sb3_poplin.common.cem import CEMOptimizer
from sb3_poplin.common.distillation import (
    AdversarialDistillation,
    Discriminator,
    Distillation,
    ParameterAverage,
)
from sb3_poplin.common.planners import Planner, PolicyParameterPlanner
from sb3_poplin.common.policies import POPLINPolicy
from sb3_poplin.common.rollout import ModelRollout
from sb3_poplin.poplin_p.policies import MlpPolicy

DISTILLATIONS_P = ("bc", "gan", "avg")
#: default initial noise std per distillation scheme (the paper's best settings)
DEFAULT_SIGMA_P = {"bc": 0.03, "gan": 0.03, "avg": 0.1}


class POPLIN_P(PlanningAlgorithm):
    """POPLIN-P: CEM over noise on the parameters of a policy network.

    Every candidate is the policy with weights ``theta + omega``; all candidates are evaluated together with batched
    matmuls. ``planning_variant="sep"``: one noise vector per horizon step (``H x |theta|``), shifted to warm-start the
    next step; ``"uni"``: one vector for the whole horizon (``|theta|``). The executed action is the policy with the
    final CEM mean's first noise at the real state. The parameter noise of each real step is stored in the replay
    buffer.

    Distillation (``distillation``):
    - ``bc``: behaviour cloning of the zero-noise policy onto the planned actions;
    - ``gan``: the policy with parameter noise ``z ~ N(0, init_sigma^2)`` is trained as a generator against a
      discriminator of (state, action) pairs (saved in the zip with its optimiser);
    - ``avg``: ``theta <- theta + mean(omega)`` over the steps planned since the last update (see
      :class:`~sb3_poplin.common.distillation.ParameterAverage` for why, and for the authors' code's difference).

    :param policy: ``"MlpPolicy"`` or a :class:`~sb3_poplin.common.policies.POPLINPolicy` subclass
    :param env: the environment (id, env or VecEnv)
    :param planning_variant: ``sep`` or ``uni``
    :param distillation: ``bc``, ``gan`` or ``avg``
    :param gan_entropy_coef: entropy bonus of the GAN discriminator
    :param gan_epochs: passes over the data per GAN distillation
    :param discriminator_net_arch: hidden widths of the GAN discriminator
    :param discriminator_learning_rate: Adam learning rate of the discriminator
    :param kwargs: every other argument of :class:`~sb3_poplin.common.base.PlanningAlgorithm`; ``init_sigma`` defaults to
        0.03 with BC and GAN, 0.1 with AVG
    """

    policy_aliases: ClassVar[dict[str, type[POPLINPolicy]]] = {"MlpPolicy": MlpPolicy}
    tb_log_name: ClassVar[str] = "POPLIN_P"

    def __init__(
        self,
        policy: str | type[POPLINPolicy],
        env: GymEnv | str,
        planning_variant: str = "sep",
        distillation: str = "bc",
        gan_entropy_coef: float = 1e-3,
        gan_epochs: int = 10,
        discriminator_net_arch: list[int] | None = None,
        discriminator_learning_rate: float = 1e-3,
        _init_setup_model: bool = True,
        **kwargs: Any,
    ) -> None:
        self.distillation = distillation.lower()
        if self.distillation not in DISTILLATIONS_P:
            raise ValueError(f"POPLIN_P distils with one of {DISTILLATIONS_P}, got {distillation!r}")
        if kwargs.get("init_sigma") is None:
            kwargs["init_sigma"] = DEFAULT_SIGMA_P[self.distillation]
        super().__init__(policy, env, _init_setup_model=False, **kwargs)
        self.planning_variant = planning_variant.lower()
        self.gan_entropy_coef = gan_entropy_coef
        self.gan_epochs = gan_epochs
        self.discriminator_net_arch = [64, 64] if discriminator_net_arch is None else list(discriminator_net_arch)
        self.discriminator_learning_rate = discriminator_learning_rate
        if _init_setup_model:
            self._setup_model()

    def _make_planner(self, rollout: ModelRollout, cem: CEMOptimizer) -> Planner:
        return PolicyParameterPlanner(rollout, cem, self.act_dim, self.init_sigma, self.policy.actor, self.planning_variant)

    def _make_distillation(self) -> Distillation:
        if self.distillation == "avg":
            return ParameterAverage()
        if self.distillation == "gan":
            self.discriminator = Discriminator(self.obs_dim, self.act_dim, self.discriminator_net_arch).to(self.device)
            self.discriminator.optimizer = th.optim.Adam(self.discriminator.parameters(), lr=self.discriminator_learning_rate)
            return AdversarialDistillation(
                self.discriminator,
                self.discriminator.optimizer,
                sigma=self.init_sigma,
                entropy_coef=self.gan_entropy_coef,
                epochs=self.gan_epochs,
                batch_size=self.policy_batch_size,
                max_updates=self.policy_max_updates,
                generator=self.train_generator,
            )
        return self._behavior_cloning()

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "discriminator"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, tensors = super()._get_torch_save_params()
        if self.distillation == "gan":
            state_dicts = [*state_dicts, "discriminator", "discriminator.optimizer"]
        return state_dicts, tensors
