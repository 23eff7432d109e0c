"""POPLIN-P: model-based policy planning in parameter space (Wang & Ba, ICLR 2020, section 4.2)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch as th
from stable_baselines3.common.type_aliases import GymEnv, Schedule

from sb3_poplin.common.base import PLANNING_PARAMETERS_DOC, PlanningAlgorithm
from sb3_poplin.common.buffers import PlanningReplayBuffer
from sb3_poplin.common.cem import CEMOptimizer
from sb3_poplin.common.distillation import (
    AVG_UPDATES,
    AdversarialDistillation,
    Discriminator,
    Distillation,
    ParameterAverage,
)
from sb3_poplin.common.dynamics import make_adam
from sb3_poplin.common.planners import Planner, PolicyParameterPlanner
from sb3_poplin.common.policies import POPLINPolicy
from sb3_poplin.common.rollout import ModelRollout
from sb3_poplin.common.validation import check_choice, check_float, check_int, check_widths
from sb3_poplin.poplin_p.policies import MlpPolicy

DISTILLATIONS_P = ("bc", "gan", "avg")
#: default initial noise std per distillation scheme (the paper's best settings)
DEFAULT_SIGMA_P = {"bc": 0.03, "gan": 0.03, "avg": 0.1}


class POPLIN_P(PlanningAlgorithm):
    __doc__ = (
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

    ``init_sigma`` defaults to 0.03 with BC and GAN, 0.1 with AVG.

    :param policy: ``"MlpPolicy"`` (one hidden layer of 32) or a :class:`~sb3_poplin.common.policies.POPLINPolicy`
        subclass
    :param env: the environment (id, env or VecEnv)
    :param planning_variant: ``sep`` or ``uni``
    :param distillation: ``bc``, ``gan`` or ``avg``
    :param avg_update: with ``avg``: ``add`` (the paper's ``theta <- theta + mean(omega)``, whitening fitted once) or
        ``set`` (the authors' code: ``theta <- mean(omega)``, whitening refitted on the planned states at every update)
    :param gan_entropy_coef: entropy bonus of the GAN discriminator
    :param gan_epochs: passes over the data per GAN distillation
    :param discriminator_net_arch: hidden widths of the GAN discriminator
    :param discriminator_learning_rate: Adam learning rate of the discriminator"""
        + PLANNING_PARAMETERS_DOC
    )

    policy_aliases: ClassVar[dict[str, type[POPLINPolicy]]] = {"MlpPolicy": MlpPolicy}
    tb_log_name: ClassVar[str] = "POPLIN_P"

    def __init__(
        self,
        policy: str | type[POPLINPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 3e-3,
        buffer_size: int = 1_000_000,
        learning_starts: int = 1000,
        train_freq: int | tuple[int, str] | None = None,
        population_size: int = 500,
        n_elites: int = 50,
        cem_iterations: int = 5,
        cem_alpha: float = 0.1,
        cem_early_stop_tol: float = 0.0,
        cem_mirrored: bool = False,
        cem_noise_table: int = 0,
        horizon: int = 30,
        init_sigma: float | None = None,
        propagation: str = "expectation",
        num_particles: int = 20,
        pessimism: float = 0.0,
        ensemble_size: int = 5,
        n_elite_members: int | None = None,
        dynamics_net_arch: list[int] | None = None,
        dynamics_activation: str = "silu",
        dynamics_weight_decay: float | list[float] | None = None,
        dynamics_learning_rate: float = 1e-3,
        dynamics_optimizer_kwargs: dict[str, Any] | None = None,
        dynamics_epochs: int = 5,
        dynamics_min_updates: int = 1000,
        dynamics_batch_size: int = 32,
        dynamics_holdout_ratio: float = 0.1,
        dynamics_patience: int = 5,
        dynamics_max_updates: int | None = 5000,
        dynamics_ignore_positions: bool = True,
        dynamics_processing: Any = None,
        policy_epochs: int = 100,
        policy_batch_size: int = 64,
        policy_holdout_ratio: float = 0.2,
        policy_patience: int = 5,
        policy_max_updates: int | None = None,
        reward_fn: Any = None,
        termination_fn: Any = None,
        predict_with: str = "mpc",
        distillation_data: str = "real",
        distillation_window: int | None = None,
        distillation_best_episodes: int | None = None,
        hallucination_elites: int = 5,
        extra_pairs_capacity: int = 50_000,
        policy_eval_freq: int = 0,
        policy_eval_episodes: int = 5,
        replay_buffer_class: type[PlanningReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        cuda_graph: bool | None = None,
        n_threads: int | None = None,
        planning_variant: str = "sep",
        distillation: str = "bc",
        avg_update: str = "add",
        gan_entropy_coef: float = 1e-3,
        gan_epochs: int = 10,
        discriminator_net_arch: list[int] | None = None,
        discriminator_learning_rate: float = 1e-3,
        _init_setup_model: bool = True,
    ) -> None:
        planning_variant = check_choice("planning_variant", planning_variant, PolicyParameterPlanner.variants)
        distillation = check_choice("distillation", distillation, DISTILLATIONS_P)
        avg_update = check_choice("avg_update", avg_update, AVG_UPDATES)
        gan_entropy_coef = check_float("gan_entropy_coef", gan_entropy_coef, 0.0)
        gan_epochs = check_int("gan_epochs", gan_epochs, 1)
        discriminator_net_arch = check_widths(
            "discriminator_net_arch", [64, 64] if discriminator_net_arch is None else discriminator_net_arch
        )
        discriminator_learning_rate = check_float(
            "discriminator_learning_rate", discriminator_learning_rate, 0.0, min_inclusive=False
        )
        self.distillation = distillation
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            buffer_size=buffer_size,
            learning_starts=learning_starts,
            train_freq=train_freq,
            population_size=population_size,
            n_elites=n_elites,
            cem_iterations=cem_iterations,
            cem_alpha=cem_alpha,
            cem_early_stop_tol=cem_early_stop_tol,
            cem_mirrored=cem_mirrored,
            cem_noise_table=cem_noise_table,
            horizon=horizon,
            init_sigma=DEFAULT_SIGMA_P[distillation] if init_sigma is None else init_sigma,
            propagation=propagation,
            num_particles=num_particles,
            pessimism=pessimism,
            ensemble_size=ensemble_size,
            n_elite_members=n_elite_members,
            dynamics_net_arch=dynamics_net_arch,
            dynamics_activation=dynamics_activation,
            dynamics_weight_decay=dynamics_weight_decay,
            dynamics_learning_rate=dynamics_learning_rate,
            dynamics_optimizer_kwargs=dynamics_optimizer_kwargs,
            dynamics_epochs=dynamics_epochs,
            dynamics_min_updates=dynamics_min_updates,
            dynamics_batch_size=dynamics_batch_size,
            dynamics_holdout_ratio=dynamics_holdout_ratio,
            dynamics_patience=dynamics_patience,
            dynamics_max_updates=dynamics_max_updates,
            dynamics_ignore_positions=dynamics_ignore_positions,
            dynamics_processing=dynamics_processing,
            policy_epochs=policy_epochs,
            policy_batch_size=policy_batch_size,
            policy_holdout_ratio=policy_holdout_ratio,
            policy_patience=policy_patience,
            policy_max_updates=policy_max_updates,
            reward_fn=reward_fn,
            termination_fn=termination_fn,
            predict_with=predict_with,
            distillation_data=distillation_data,
            distillation_window=distillation_window,
            distillation_best_episodes=distillation_best_episodes,
            hallucination_elites=hallucination_elites,
            extra_pairs_capacity=extra_pairs_capacity,
            policy_eval_freq=policy_eval_freq,
            policy_eval_episodes=policy_eval_episodes,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            seed=seed,
            device=device,
            cuda_graph=cuda_graph,
            n_threads=n_threads,
            _init_setup_model=False,
        )
        self.planning_variant = planning_variant
        self.avg_update = avg_update
        self.gan_entropy_coef = gan_entropy_coef
        self.gan_epochs = gan_epochs
        self.discriminator_net_arch = discriminator_net_arch
        self.discriminator_learning_rate = discriminator_learning_rate
        if _init_setup_model:
            self._setup_model()

    def _make_planner(self, rollout: ModelRollout, cem: CEMOptimizer) -> Planner:
        return PolicyParameterPlanner(rollout, cem, self.act_dim, self.init_sigma, self.policy.actor, self.planning_variant)

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
