"""Policy distillation: moving the policy network towards what the planner did.

A distillation scheme sees a :class:`DistillationData` built by the algorithm and updates the policy in place.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch as th
from torch import nn
from torch.nn import functional as F

from sb3_poplin.common.buffers import PlanningReplayBuffer
from sb3_poplin.common.policies import PolicyNetwork

#: AVG's update rules: the paper's ``theta + mean(omega)`` and the authors' code's ``mean(omega)``
AVG_UPDATES = ("add", "set")
#: how the policy's input whitening is set at a distillation (``policy_whitening``): from the distillation's own data, or
#: the authors' running statistics of every planned real state
POLICY_WHITENINGS = ("fit", "planned")
#: the authors' running whitening: a prior pseudo-count of states (with squared sum equal to it), and a floor on the
#: variance of each dimension
PLANNED_WHITENING_PRIOR = 0.01
PLANNED_WHITENING_MIN_VAR = 0.01


@th.no_grad()
def planned_whitening(states: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
    """The authors' whitening statistics of ``states [N, obs_dim]``: mean and std with a prior of
    :data:`PLANNED_WHITENING_PRIOR` pseudo-states (of squared sum equal to it) and the variance floored at
    :data:`PLANNED_WHITENING_MIN_VAR`, so no dimension is scaled up by more than 10.

    :return: mean and std, ``[obs_dim]`` each
    """
    count = states.shape[0] + PLANNED_WHITENING_PRIOR
    mean = states.sum(dim=0) / count
    square_mean = (states.square().sum(dim=0) + PLANNED_WHITENING_PRIOR) / count
    variance = (square_mean - mean.square()).clamp(min=PLANNED_WHITENING_MIN_VAR)
    return mean, (variance + 1e-6).sqrt()


@dataclass
class DistillationData:
    """What the planner produced, as tensors on the policy's device.

    :param observations: real (and, with hallucinated data, imagined) states ``[N, obs_dim]``
    :param actions: the planned actions at those states, in [-1, 1], ``[N, act_dim]``
    :param noises: the planning noise executed at the real steps planned since the last distillation
        ``[M, noise_dim]`` (AVG)
    :param planned_states: every real state planned so far ``[K, obs_dim]``, whatever ``observations`` selects (the
        ``planned`` whitening reads them); None to whiten from ``observations``
    """

    observations: th.Tensor
    actions: th.Tensor
    noises: th.Tensor | None = None
    planned_states: th.Tensor | None = None


def select_distillation_data(
    data: dict[str, np.ndarray],
    buffer: PlanningReplayBuffer,
    new_steps: int,
    device: th.device,
    window: int | None = None,
    best_episodes: int | None = None,
    with_planned: bool = False,
) -> DistillationData:
    """What a distillation learns from: the real states with the planned actions executed there (the random warm-up
    steps are skipped), the buffer's extra pairs (imagined, or elite actions), and the noise of the steps planned since
    the last distillation.

    :param data: the buffer's transitions (``buffer.all_transitions()``; views, never written)
    :param buffer: the replay buffer
    :param new_steps: steps added since the last distillation (whose executed noise AVG reads)
    :param device: where the tensors go
    :param window: only the planned steps among the last this many (``distillation_window``)
    :param best_episodes: only the planned steps of this many best episodes (``distillation_best_episodes``)
    :param with_planned: also every planned real state (``DistillationData.planned_states``, for the ``planned``
        whitening); a copy of them otherwise not made
    """
    planned = data["planned"]  # a view of the buffer: combined into new arrays, never written
    if window is not None:
        planned = planned & buffer.recent_mask(window)
    if best_episodes is not None and planned.any():
        episode, returns = buffer.episodes()
        candidates = np.unique(episode[planned])
        # Highest return first; among equal returns the older episode (a stable sort of the negated returns).
        best = candidates[np.argsort(-returns[candidates], kind="stable")[:best_episodes]]
        planned = planned & np.isin(episode, best)
    if not planned.any():
        planned = np.ones_like(planned)  # nothing planned yet: use the warm-up data, so the policy sees the states
    obs, actions = data["observations"][planned], data["actions"][planned]
    if buffer.extra_pairs:
        obs = np.concatenate([obs, *(s for s, _ in buffer.extra_pairs)])
        actions = np.concatenate([actions, *(a for _, a in buffer.extra_pairs)])
    return DistillationData(
        observations=th.as_tensor(obs, dtype=th.float32, device=device),
        actions=th.as_tensor(actions, dtype=th.float32, device=device),
        noises=th.as_tensor(buffer.recent_noises(new_steps), dtype=th.float32, device=device),
        planned_states=(
            th.as_tensor(data["observations"][data["planned"]], dtype=th.float32, device=device) if with_planned else None
        ),
    )


class Distillation(ABC):
    """A policy distillation scheme.

    :attr:`whitening` says how it sets the policy's input whitening before it trains: ``fit`` from the states it learns
    from (its own data), ``planned`` from every real state planned so far with the authors' prior and variance floor
    (:func:`planned_whitening`), at every distillation.
    """

    #: whether the scheme reads the whitening of the policy's inputs from the data before training
    refits_normalizer: bool = True
    #: whether the scheme reads the planning noise of the real steps (``DistillationData.noises``): only then does the
    #: replay buffer keep it
    reads_noise: bool = False
    #: one of :data:`POLICY_WHITENINGS`
    whitening: str = "fit"

    def whiten(self, policy_net: PolicyNetwork, data: DistillationData, states: th.Tensor) -> None:
        """Set the policy's input whitening for this distillation.

        :param data: the distillation's data
        :param states: the states the ``fit`` rule reads (e.g. a scheme's training split)
        """
        if self.whitening == "planned" and data.planned_states is not None and data.planned_states.shape[0] > 0:
            policy_net.set_obs_normalizer(*planned_whitening(data.planned_states))
        elif self.whitening == "fit":
            policy_net.fit_obs_normalizer(states)

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
        self.whiten(policy_net, data, obs[train_idx])

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


@th.no_grad()
def imitation_error(policy_net: PolicyNetwork, data: DistillationData) -> float:
    """Mean squared distance between the policy's actions and the planned ones (a diagnostic for every scheme)."""
    if data.observations.shape[0] == 0:
        return float("nan")
    return F.mse_loss(policy_net(data.observations), data.actions).item()


class ParameterAverage(Distillation):
    """AVG (POPLIN-P): set the parameters from the mean parameter noise executed since the last distillation.

    ``update="add"`` (default, the paper's equation): ``theta <- theta + mean(omega)``. The mean is taken over the steps
    planned since the previous update (``data.noises``), because each recorded omega is relative to the theta it was
    planned around; averaging older steps again would count them twice as theta moves. The input whitening is fitted
    once (on the first data, the random warm-up) and then frozen: refitting it would change what every recorded omega
    means.

    ``update="set"`` (the authors' code): ``theta <- mean(omega)``, the old theta discarded, and the whitening refitted
    on the planned real states before every update, as that code does. The omega of each step is the first step's
    block of the final CEM mean, in both.

    :param update: ``"add"`` or ``"set"``
    """

    reads_noise = True

    def __init__(self, update: str = "add") -> None:
        if update not in AVG_UPDATES:
            raise ValueError(f"update must be one of {AVG_UPDATES}, got {update!r}")
        self.update = update
        self.refits_normalizer = update == "set"

    def _whiten_if_needed(self, policy_net: PolicyNetwork, data: DistillationData, refit: bool) -> None:
        # The ``planned`` rule is the authors' and refits at every update, as their code does.
        if refit or self.whitening == "planned" or not bool(policy_net.obs_normalizer_fitted):
            self.whiten(policy_net, data, data.observations)

    def distill(self, policy_net: PolicyNetwork, optimizer: th.optim.Optimizer, data: DistillationData) -> dict[str, float]:
        noises = data.noises
        if noises is None or noises.shape[0] == 0:
            self._whiten_if_needed(policy_net, data, refit=False)
            return {"policy_loss": imitation_error(policy_net, data), "policy_update_norm": 0.0}
        mean_noise = noises.mean(dim=0)
        theta = policy_net.flat_parameters().detach()
        new_theta = theta + mean_noise if self.update == "add" else mean_noise
        self._whiten_if_needed(policy_net, data, refit=self.refits_normalizer)
        policy_net.set_flat_parameters(new_theta)
        return {"policy_loss": imitation_error(policy_net, data), "policy_update_norm": (new_theta - theta).norm().item()}


class Discriminator(nn.Module):
    """``D(s, a)``: logit that a (state, action) pair was planned rather than generated by the noisy policy.

    :param obs_dim: observation size
    :param act_dim: action size
    :param hidden_sizes: hidden widths
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden_sizes: list[int] | None = None) -> None:
        super().__init__()
        sizes = [obs_dim + act_dim, *(hidden_sizes or [64, 64])]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.Tanh()]
        layers.append(nn.Linear(sizes[-1], 1))
        self.net = nn.Sequential(*layers)
        self.register_buffer("obs_mean", th.zeros(obs_dim))
        self.register_buffer("obs_std", th.ones(obs_dim))

    def forward(self, obs: th.Tensor, action: th.Tensor) -> th.Tensor:
        """:return: logits ``[N]``"""
        return self.net(th.cat([(obs - self.obs_mean) / self.obs_std, action], dim=-1)).squeeze(-1)


class AdversarialDistillation(Distillation):
    """GAN (POPLIN-P, paper eq. 8): the generator is the policy with parameter noise ``z ~ N(0, sigma_0^2)``; the
    discriminator scores (state, action) pairs against the planned ones.

    Discriminator loss: binary cross-entropy (planned = 1, generated = 0) minus ``entropy_coef`` times the mean entropy
    of its predictions (the paper's entropy bonus, which it found sensitive; default 1e-3). Generator loss: the
    non-saturating ``-log D(s, pi_{theta+z}(s))``. One discriminator step and one generator step per minibatch.

    :param discriminator: the discriminator (saved in the model's zip with its optimiser)
    :param discriminator_optimizer: its optimiser
    :param sigma: std of the parameter noise of the generator (the initial CEM sigma)
    :param entropy_coef: weight of the discriminator's entropy bonus
    :param epochs: passes over the data per distillation
    :param batch_size: minibatch size
    :param max_updates: cap on minibatches per distillation
    :param generator: random generator for shuffling and the parameter noise
    """

    def __init__(
        self,
        discriminator: Discriminator,
        discriminator_optimizer: th.optim.Optimizer,
        sigma: float,
        entropy_coef: float = 1e-3,
        epochs: int = 10,
        batch_size: int = 64,
        max_updates: int | None = None,
        generator: th.Generator | None = None,
    ) -> None:
        self.discriminator = discriminator
        self.discriminator_optimizer = discriminator_optimizer
        self.sigma = sigma
        self.entropy_coef = entropy_coef
        self.epochs = epochs
        self.batch_size = batch_size
        self.max_updates = max_updates
        self.generator = generator

    def discriminator_loss(self, policy_net: PolicyNetwork, obs: th.Tensor, planned: th.Tensor) -> th.Tensor:
        """BCE of planned vs generated pairs minus the entropy bonus (generated actions carry no gradient)."""
        with th.no_grad():
            generated = self.generate(policy_net, obs)
        real_logits = self.discriminator(obs, planned)
        fake_logits = self.discriminator(obs, generated)
        bce = F.binary_cross_entropy_with_logits(real_logits, th.ones_like(real_logits)) + F.binary_cross_entropy_with_logits(
            fake_logits, th.zeros_like(fake_logits)
        )
        logits = th.cat([real_logits, fake_logits])
        p = th.sigmoid(logits)
        entropy = -(p * F.logsigmoid(logits) + (1 - p) * F.logsigmoid(-logits)).mean()
        return bce - self.entropy_coef * entropy

    def generate(self, policy_net: PolicyNetwork, obs: th.Tensor) -> th.Tensor:
        """Actions of the policy with fresh parameter noise per sample: ``pi_{theta + z}(s)``, ``[N, act_dim]``."""
        theta = policy_net.flat_parameters()
        z = th.randn(obs.shape[0], theta.shape[0], generator=self.generator).to(obs.device) * self.sigma
        return policy_net.forward_batched(obs.unsqueeze(1), theta + z)[:, 0]

    def distill(self, policy_net: PolicyNetwork, optimizer: th.optim.Optimizer, data: DistillationData) -> dict[str, float]:
        obs, planned = data.observations, data.actions
        self.whiten(policy_net, data, obs)
        self.discriminator.obs_mean.copy_(policy_net.obs_mean)
        self.discriminator.obs_std.copy_(policy_net.obs_std)
        n = obs.shape[0]
        d_losses, g_losses = [], []
        updates = 0
        for _ in range(self.epochs):
            order = th.randperm(n, generator=self.generator).to(obs.device)
            for start in range(0, n, self.batch_size):
                batch = order[start : start + self.batch_size]
                d_loss = self.discriminator_loss(policy_net, obs[batch], planned[batch])
                self.discriminator_optimizer.zero_grad(set_to_none=True)
                d_loss.backward()
                self.discriminator_optimizer.step()
                fake_logits = self.discriminator(obs[batch], self.generate(policy_net, obs[batch]))
                g_loss = F.binary_cross_entropy_with_logits(fake_logits, th.ones_like(fake_logits))
                optimizer.zero_grad(set_to_none=True)
                g_loss.backward()
                optimizer.step()
                d_losses.append(d_loss.item())
                g_losses.append(g_loss.item())
                updates += 1
                if self.max_updates is not None and updates >= self.max_updates:
                    break
            if self.max_updates is not None and updates >= self.max_updates:
                break
        return {
            "policy_loss": imitation_error(policy_net, data),
            "discriminator_loss": float(np.mean(d_losses)) if d_losses else float("nan"),
            "generator_loss": float(np.mean(g_losses)) if g_losses else float("nan"),
            "policy_updates": float(updates),
        }
