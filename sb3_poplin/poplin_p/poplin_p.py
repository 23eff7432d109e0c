"""POPLIN-P: model-based policy planning in parameter space (Wang & Ba, ICLR 2020, section 4.2)."""

from __future__ import annotations

from typing import Any, ClassVar

from sb3_poplin.common.base import PolicyPlanningAlgorithm
from sb3_poplin.common.distillation import (
    AVG_UPDATES,
    AdversarialDistillation,
    Discriminator,
    Distillation,
    ParameterAverage,
)
from sb3_poplin.common.dynamics import make_adam
from sb3_poplin.common.optimizers import Optimizer
from sb3_poplin.common.options import Option, choice, integer, real, widths
from sb3_poplin.common.planners import Planner, PolicyParameterPlanner
from sb3_poplin.common.policies import POPLINPolicy
from sb3_poplin.common.rollout import ModelRollout
from sb3_poplin.poplin_p.policies import MlpPolicy

DISTILLATIONS_P = ("bc", "gan", "avg")
#: default initial noise std per distillation scheme (the paper's best settings)
DEFAULT_SIGMA_P = {"bc": 0.03, "gan": 0.03, "avg": 0.1}


class POPLIN_P(PolicyPlanningAlgorithm):
    """POPLIN-P: CEM over noise on the parameters of a policy network.

    Every candidate is the policy with weights ``theta + omega``; all candidates are evaluated together with batched
    matmuls. ``planning_variant="sep"``: one noise vector per horizon step (``H x |theta|``), shifted to warm-start the
    next step; ``"uni"``: one vector for the whole horizon (``|theta|``). The executed action is the policy with the
    final CEM mean's first noise at the real state. The parameter noise of each real step is stored in the replay
    buffer when the distillation reads it (AVG).

    Distillation (``distillation``):
    - ``bc``: behaviour cloning of the zero-noise policy onto the planned actions;
    - ``gan``: the policy with parameter noise ``z ~ N(0, init_sigma^2)`` is trained as a generator against a
      discriminator of (state, action) pairs (saved in the zip with its optimiser);
    - ``avg``: ``theta <- theta + mean(omega)`` over the steps planned since the last update (the paper's), or
      ``theta <- mean(omega)`` with ``avg_update="set"`` (the authors' code; see
      :class:`~sb3_poplin.common.distillation.ParameterAverage`).

    ``init_sigma`` defaults to 0.03 with BC and GAN, 0.1 with AVG.

    :param policy: ``"MlpPolicy"`` (one hidden layer of 32) or a :class:`~sb3_poplin.common.policies.POPLINPolicy`
        subclass
    :param env: the environment (id, env or VecEnv)
    """

    policy_aliases: ClassVar[dict[str, type[POPLINPolicy]]] = {"MlpPolicy": MlpPolicy}
    tb_log_name: ClassVar[str] = "POPLIN_P"
    own_options: ClassVar[tuple[Option, ...]] = (
        Option("planning_variant", "sep", "str", "``sep`` (one parameter noise vector per horizon step) or ``uni`` (one "
               "for the whole horizon)", choice(PolicyParameterPlanner.variants)),
        Option("distillation", "bc", "str", "``bc``, ``gan`` or ``avg``", choice(DISTILLATIONS_P)),
        Option("avg_update", "add", "str", "with ``avg``: ``add`` (the paper's ``theta <- theta + mean(omega)``, "
               "whitening fitted once) or ``set`` (the authors' code: ``theta <- mean(omega)``, whitening refitted on the "
               "planned states at every update)", choice(AVG_UPDATES)),
        Option("gan_entropy_coef", 1e-3, "float", "entropy bonus of the GAN discriminator", real(0.0)),
        Option("gan_epochs", 10, "int", "passes over the data per GAN distillation", integer(1)),
        Option("discriminator_net_arch", [64, 64], "list[int]", "hidden widths of the GAN discriminator", widths),
        Option("discriminator_learning_rate", 1e-3, "float", "Adam learning rate of the discriminator",
               real(0.0, strict_minimum=True)),
    )  # fmt: skip

    def _default_init_sigma(self, values: dict[str, Any]) -> float:
        return DEFAULT_SIGMA_P[values["distillation"]]

    def _make_planner(self, rollout: ModelRollout, optimizer: Optimizer) -> Planner:
        return PolicyParameterPlanner(
            rollout, optimizer, self.act_dim, self.init_sigma, self.policy.actor, self.planning_variant
        )

    def _make_distillation(self) -> Distillation:
        if self.distillation == "avg":
            return ParameterAverage(self.avg_update)
        if self.distillation == "gan":
            self.discriminator = Discriminator(self.obs_dim, self.act_dim, self.discriminator_net_arch).to(self.device)
            self.discriminator.optimizer = make_adam(self.discriminator.parameters(), lr=self.discriminator_learning_rate)
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
