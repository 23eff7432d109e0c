"""Random shooting: the simplest model-based planner, one round of uniformly drawn action sequences."""

from __future__ import annotations

from typing import Any, ClassVar

import torch as th
from stable_baselines3.common.type_aliases import GymEnv, Schedule

from sb3_poplin.common.base import PLANNING_PARAMETERS_DOC, PlanningAlgorithm
from sb3_poplin.common.buffers import PlanningReplayBuffer
from sb3_poplin.common.cem import CEMOptimizer
from sb3_poplin.common.planners import Planner, RandomShootingPlanner
from sb3_poplin.common.policies import POPLINPolicy
from sb3_poplin.common.rollout import ModelRollout
from sb3_poplin.pets.policies import MlpPolicy


class RS(PlanningAlgorithm):
    __doc__ = (
        """Random shooting (RS): ``population_size`` action sequences drawn uniformly in the action bounds, scored
    through the learned ensemble; the best is executed. ``cem_iterations`` (default 1), ``cem_alpha``,
    ``cem_early_stop_tol``, ``cem_mirrored``, ``cem_noise_table`` and ``init_sigma`` play no role (one uniform
    draw). At equal budget, compare it with PETS at ``population_size x cem_iterations`` candidates.

    :param policy: ``"MlpPolicy"`` (a placeholder network, as for PETS)
    :param env: the environment (id, env or VecEnv)"""
        + PLANNING_PARAMETERS_DOC
    )

    policy_aliases: ClassVar[dict[str, type[POPLINPolicy]]] = {"MlpPolicy": MlpPolicy}
    tb_log_name: ClassVar[str] = "RS"
    default_init_sigma: ClassVar[float] = 1.0
    uses_policy_network: ClassVar[bool] = False

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
        cem_iterations: int = 1,
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
        _init_setup_model: bool = True,
    ) -> None:
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
            init_sigma=init_sigma,
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
        if _init_setup_model:
            self._setup_model()

    def _make_planner(self, rollout: ModelRollout, cem: CEMOptimizer) -> Planner:
        return RandomShootingPlanner(rollout, cem, self.act_dim, self.init_sigma, return_mean=False)

    def _make_distillation(self) -> None:
        return None
