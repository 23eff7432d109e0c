"""POPLIN-P: model-based policy planning in parameter space (Wang & Ba, ICLR 2020, section 4.2)."""

from __future__ import annotations

from typing import Any, ClassVar

from stable_baselines3.common.policies import BasePolicy

from sb3_poplin.common.base import PolicyPlanningAlgorithm
from sb3_poplin.common.distillation import distillation_class, distillations_of
from sb3_poplin.common.options import Option, choice
from sb3_poplin.common.planners import PolicyParameterPlanner
from sb3_poplin.common.validation import check_choice
from sb3_poplin.poplin_p.policies import MlpPolicy


def _distillation(name: str, value: Any, values: dict[str, Any]) -> str:
    return check_choice(name, value, sorted(distillations_of(POPLIN_P)))


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

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": MlpPolicy}
    planner_name: ClassVar[str] = "policy_parameters"
    tb_log_name: ClassVar[str] = "POPLIN_P"
    own_options: ClassVar[tuple[Option, ...]] = (
        Option("planning_variant", "sep", "str", "``sep`` (one parameter noise vector per horizon step) or ``uni`` (one "
               "for the whole horizon)", choice(PolicyParameterPlanner.variants)),
        Option("distillation", "bc", "str", "``bc``, ``gan`` or ``avg`` (each with its own options below)", _distillation),
    )  # fmt: skip

    def _default_init_sigma(self, values: dict[str, Any]) -> float:
        return distillation_class(values["distillation"]).default_init_sigma
