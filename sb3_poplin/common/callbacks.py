"""Callbacks the planning algorithms add to ``learn``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ConvertCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.type_aliases import MaybeCallback

if TYPE_CHECKING:
    from sb3_poplin.common.base import PolicyPlanningAlgorithm


def with_callbacks(
    callback: MaybeCallback, before: Sequence[BaseCallback] = (), after: Sequence[BaseCallback] = ()
) -> MaybeCallback:
    """The user's ``learn`` callback(s) with the algorithm's own before and after them, as one (the user's unchanged when
    there are none to add).

    :param callback: what ``learn`` was given: None, a callback, a list of them, or a function (wrapped as SB3 does)
    :param before: callbacks to run before the user's
    :param after: callbacks to run after them
    """
    if not before and not after:
        return callback
    if isinstance(callback, list):
        given = list(callback)
    elif isinstance(callback, BaseCallback):
        given = [callback]
    else:
        given = [] if callback is None else [ConvertCallback(callback)]
    return CallbackList([*before, *given, *after])


class PolicyControlEvaluation(BaseCallback):
    """Evaluates the distilled policy alone (policy control) every ``eval_freq`` steps on a fresh env of the same id.

    Logs ``eval/policy_control_return`` next to ``eval/mpc_control_return``: the mean return of the latest
    ``n_episodes`` training episodes that were planned at every step (MPC control; random warm-up episodes are not
    counted, and the key is absent until one such episode has ended). Appends ``(timesteps, mean, std)`` of the policy
    control to ``model.policy_control_history``.

    :param eval_freq: steps between evaluations
    :param n_episodes: episodes per evaluation
    """

    def __init__(self, eval_freq: int, n_episodes: int) -> None:
        super().__init__()
        self.eval_freq = eval_freq
        self.n_episodes = n_episodes

    def _on_step(self) -> bool:
        model = cast("PolicyPlanningAlgorithm", self.model)  # added by PolicyPlanningAlgorithm.learn only
        if self.n_calls % self.eval_freq != 0:
            return True
        if model.task_env_id is None:
            raise ValueError("policy_eval_freq needs an env made from a gymnasium id, to build an evaluation env")
        env = make_vec_env(model.task_env_id, n_envs=1, seed=model.seed if model.seed is not None else 0)
        returns = []
        for _ in range(self.n_episodes):
            obs = env.reset()
            done, total = False, 0.0
            while not done:
                # The env gives raw observations, which the policy network expects.
                action, _ = model.policy.predict(np.asarray(obs), deterministic=True)
                obs, reward, dones, _ = env.step(action)
                total += float(reward[0])
                done = bool(dones[0])
            returns.append(total)
        env.close()
        mean, std = float(np.mean(returns)), float(np.std(returns))
        model.policy_control_history.append((model.num_timesteps, mean, std))
        self.logger.record("eval/policy_control_return", mean)
        mpc_returns = list(model.mpc_episode_returns)[-self.n_episodes :]
        if mpc_returns:
            self.logger.record("eval/mpc_control_return", float(np.mean(mpc_returns)))
        return True
