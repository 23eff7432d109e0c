"""Policy distillation: moving the policy network towards what the planner did.

A distillation scheme sees a :class:`DistillationData` built by the algorithm and updates the policy in place.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch as th
from torch.nn import functional as F

from sb3_poplin.common.policies import PolicyNetwork


@dataclass
class DistillationData:
    """What the planner produced, as tensors on the policy's device.

    :param observations: real (and, with hallucinated data, imagined) states ``[N, obs_dim]``
    :param actions: the planned actions at those states, in [-1, 1], ``[N, act_dim]``
    :param noises: the planning noise executed at each real step ``[M, noise_dim]`` (AVG)
    """

    observations: th.Tensor
    actions: th.Tensor
    noises: th.Tensor | None = None


class Distillation(ABC):
    """A policy distillation scheme."""

    #: whether the scheme reads the whitening of the policy's inputs from the data before training
    refits_normalizer: bool = True

    @abstractmethod
    def distill(self, policy_net: PolicyNetwork, optimizer: th.optim.Optimizer, data: DistillationData) -> dict[str, float]:
        """Update ``policy_net`` from ``data``; return figures to log (``policy_loss`` at least)."""


class BehaviorCloning(Distillation):
    """Regress the policy onto the planned actions: ``min ||pi_theta(s) - a||^2`` (paper eq. 7).

    Trains up to ``epochs`` passes with minibatches, stopping when the loss on a hold-out split has not improved for
    ``patience`` epochs, and keeps the parameters of the best hold-out epoch.

    :param epochs: max passes over the training split
    :param batch_size: minibatch size
    :param holdout_ratio: share of the pairs used to stop early
    :param patience: epochs without hold-out improvement before stopping
    :param max_updates: cap on gradient steps per distillation (None: no cap)
    :param generator: random generator for the split and shuffling
    """

    def __init__(
        self,
        epochs: int = 100,
        batch_size: int = 64,
        holdout_ratio: float = 0.2,
        patience: int = 5,
        max_updates: int | None = None,
        generator: th.Generator | None = None,
    ) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.holdout_ratio = holdout_ratio
        self.patience = patience
        self.max_updates = max_updates
        self.generator = generator

    def distill(self, policy_net: PolicyNetwork, optimizer: th.optim.Optimizer, data: DistillationData) -> dict[str, float]:
        obs, target = data.observations, data.actions
        n = obs.shape[0]
        device = obs.device
        perm = th.randperm(n, generator=self.generator).to(device)
        n_holdout = int(n * self.holdout_ratio) if n >= 10 else 0
        hold_idx, train_idx = perm[:n_holdout], perm[n_holdout:]
        policy_net.fit_obs_normalizer(obs[train_idx])

        def holdout_loss() -> float:
            idx = hold_idx if n_holdout > 0 else train_idx
            with th.no_grad():
                return F.mse_loss(policy_net(obs[idx]), target[idx]).item()

        best = holdout_loss()
        best_state = {k: v.clone() for k, v in policy_net.state_dict().items()}
        losses: list[float] = []
        stale = 0
        updates = 0
        n_train = train_idx.shape[0]
        for _ in range(self.epochs):
            order = train_idx[th.randperm(n_train, generator=self.generator).to(device)]
            for start in range(0, n_train, self.batch_size):
                batch = order[start : start + self.batch_size]
                loss = F.mse_loss(policy_net(obs[batch]), target[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
                updates += 1
                if self.max_updates is not None and updates >= self.max_updates:
                    break
            current = holdout_loss()
            if current < best:
                best, stale = current, 0
                best_state = {k: v.clone() for k, v in policy_net.state_dict().items()}
            else:
                stale += 1
            if stale >= self.patience or (self.max_updates is not None and updates >= self.max_updates):
                break
        policy_net.load_state_dict(best_state)
        return {
            "policy_loss": float(np.mean(losses)) if losses else float("nan"),
            "policy_holdout_loss": best,
            "policy_updates": float(updates),
        }


DISTILLATIONS = {"bc": BehaviorCloning}
