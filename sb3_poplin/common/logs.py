"""What a long planning run tells its user: the logger's keys beyond SB3's, and a progress bar that shows them.

SB3's off-policy logs (``verbose=1`` table at every ``log_interval`` episodes, tensorboard) already have the steps per
second (``time/fps``) and the mean return of the recent episodes (``rollout/ep_rew_mean``); its progress bar shows the
steps done, their rate and the time left. A planned step can take a second and the first episodes are random warm-up,
so :class:`PlanningLogs` adds:

==========================================  ============================================================================
``rollout/ep_rew_last``                     return of the latest finished episode
``rollout/mpc_ep_rew_mean``                 mean return of the recent episodes planned at every step (warm-up excluded)
``time/plan_ms``                            mean planning time per planned step since the last dump
``time/eta_s``                              seconds left in this ``learn`` call at the current steps per second
``time/dynamics_train_s``                   seconds of the latest model fit (``time/distillation_s``: of the distillation)
``train/dynamics_holdout_mse``              hold-out MSE of the model's elite members (``..._member_<i>``: each member,
                                            tensorboard and the file formats only)
``rollout/predicted_return``                the model's return of the executed plans over the horizon, and the env's
``rollout/realized_return``                 over the same steps (``rollout/exploitation_gap``: the first less the
                                            second), mean since the last dump (:mod:`sb3_poplin.common.exploitation`)
==========================================  ============================================================================

The progress bar (``learn(progress_bar=True)``) shows the latest return, planning ms per step and model fitting time
beside SB3's steps, rate and time left.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, ProgressBarCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.type_aliases import MaybeCallback

from sb3_poplin.common.callbacks import with_callbacks
from sb3_poplin.common.exploitation import PlanOutcome

#: where the per-member hold-out errors go: everywhere but the stdout table, which would grow by a row per member
PER_MEMBER_EXCLUDE = ("stdout",)


class PlanningProgressBar(ProgressBarCallback):
    """SB3's progress bar (steps, steps per second, time left) with the latest episode's return, the mean planning
    time per step and the latest model fitting time in its description, refreshed when an episode ends."""

    def _on_step(self) -> bool:
        super()._on_step()
        dones = self.locals.get("dones")
        if dones is not None and np.any(dones):
            model = self.model
            parts = []
            # this step's infos: the model's episode buffer is updated only after the callbacks ran
            episodes = [info["episode"] for info in self.locals.get("infos", []) if "episode" in info]
            if episodes:
                parts.append(f"return {episodes[-1]['r']:.0f}")
            engine = getattr(model, "engine", None)
            plan_times = engine.plan_times if engine is not None else None
            if plan_times:
                parts.append(f"plan {1000.0 * float(np.mean(plan_times)):.0f} ms/step")
            fit_seconds = getattr(model, "last_model_fit_s", None)
            if fit_seconds is not None:
                parts.append(f"model fit {fit_seconds:.1f} s")
            self.pbar.set_description(" | ".join(parts))
        return True


class PlanningLogs(OffPolicyAlgorithm):
    """The logging half of :class:`~sb3_poplin.common.base.PlanningAlgorithm`: records the keys listed in this module's
    docstring and installs :class:`PlanningProgressBar`.

    Reads from the algorithm: ``_last_executed_noise`` (None on a random step), set by its action sampling.
    """

    #: the noise of the step just executed (None on a random step)
    _last_executed_noise: np.ndarray | None = None

    #: the seconds of the latest model fit (None before the first)
    last_model_fit_s: float | None = None

    def _setup_learn(self, total_timesteps: int, *args: Any, **kwargs: Any) -> Any:
        out = super()._setup_learn(total_timesteps, *args, **kwargs)
        reset = kwargs.get("reset_num_timesteps", args[1] if len(args) > 1 else True)
        if getattr(self, "mpc_episode_returns", None) is None or reset:
            #: returns of the recent training episodes planned at every step (MPC control)
            self.mpc_episode_returns: deque[float] = deque(maxlen=self._stats_window_size)
        # whether every step of each env's current episode was planned; a run starts mid-nothing, so True
        self._episode_planned = np.ones(self.n_envs, dtype=bool)
        return out

    def _init_callback(self, callback: MaybeCallback, progress_bar: bool = False) -> BaseCallback:
        # The algorithm's callbacks before the caller's, and SB3's own bar replaced by ours after them, before SB3
        # initialises them all once
        callback = with_callbacks(callback, self._learn_callbacks(), [PlanningProgressBar()] if progress_bar else [])
        return super()._init_callback(callback, progress_bar=False)

    def _update_info_buffer(self, infos: list[dict[str, Any]], dones: np.ndarray | None = None) -> None:
        super()._update_info_buffer(infos, dones)
        if dones is None:
            return
        # The step just taken was planned unless it was a random one (warm-up); see _sample_action.
        self._episode_planned &= self._last_executed_noise is not None
        for i, done in enumerate(dones):
            if not done:
                continue
            episode = infos[i].get("episode")
            if episode is not None and self._episode_planned[i]:
                self.mpc_episode_returns.append(float(episode["r"]))
            self._episode_planned[i] = True

    def _learn_callbacks(self) -> list[BaseCallback]:
        """Callbacks the algorithm adds to the user's in ``learn`` (run before them)."""
        return []

    def _record_plan(self, plan_seconds: float, iterations: int) -> None:
        """Log one planned training step: its seconds and the optimizer's iterations."""
        self.logger.record_mean("time/plan_ms", 1000.0 * plan_seconds)
        self.logger.record_mean("rollout/cem_iterations", iterations)

    def _record_exploitation(self, outcomes: Iterable[PlanOutcome]) -> None:
        """Log the executed plans whose horizon the env has just completed (:mod:`sb3_poplin.common.exploitation`)."""
        for outcome in outcomes:
            self.logger.record_mean("rollout/predicted_return", outcome.predicted)
            self.logger.record_mean("rollout/realized_return", outcome.realized)
            self.logger.record_mean("rollout/exploitation_gap", outcome.gap)

    def _record_model_fit(self, info: dict[str, float], seconds: float, plan_times: Sequence[float]) -> dict[str, float]:
        """Log one fit of the model that took ``seconds`` (``info`` as ``PlanningEngine.fit_model`` returns it) and the
        median of the latest ``plan_times``.

        :return: the ensemble's part of ``info`` (without the termination classifier's and the reward's figures)
        """
        logger = self.logger
        info = dict(info)
        for key in ("termination_loss", "termination_accuracy", "reward_mse"):
            if key in info:
                logger.record(f"train/{key}", info.pop(key))
        if plan_times:
            logger.record("time/plan_ms_median", 1000.0 * float(np.median(plan_times)))
        logger.record("train/dynamics_loss", info["loss"])
        logger.record("train/dynamics_holdout_mse", info["holdout_mse"])
        logger.record("train/dynamics_epochs", info["epochs"])
        for key, value in info.items():
            if key.startswith("holdout_mse_member_"):
                logger.record(f"train/dynamics_{key}", value, exclude=PER_MEMBER_EXCLUDE)
        logger.record("time/dynamics_train_s", seconds)
        self.last_model_fit_s = seconds
        return info

    def dump_logs(self) -> None:
        """SB3's log dump, with the latest episode's return, the return under MPC control and the time left."""
        if self.ep_info_buffer:
            self.logger.record("rollout/ep_rew_last", float(self.ep_info_buffer[-1]["r"]))
        if self.mpc_episode_returns:
            self.logger.record("rollout/mpc_ep_rew_mean", float(np.mean(self.mpc_episode_returns)))
        elapsed = max((time.time_ns() - self.start_time) / 1e9, sys.float_info.epsilon)
        steps_per_second = (self.num_timesteps - self._num_timesteps_at_start) / elapsed
        if steps_per_second > 0:
            remaining = max(0, self._total_timesteps - self.num_timesteps)
            self.logger.record("time/eta_s", remaining / steps_per_second)
        super().dump_logs()

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "mpc_episode_returns", "_episode_planned"]
