"""Policy distillation: moving the policy network towards what the planner did.

A distillation scheme sees a :class:`DistillationData` built by the algorithm and updates the policy in place.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from torch import nn
from torch.nn import functional as F

from sb3_poplin.common import fitting
from sb3_poplin.common.buffers import PlanningReplayBuffer
from sb3_poplin.common.dynamics import make_adam
from sb3_poplin.common.options import (
    Option,
    boolean,
    choice,
    integer,
    learning_rate_or_schedule,
    real,
    widths,
)
from sb3_poplin.common.policies import PolicyNetwork

#: AVG's update rules: the paper's ``theta + mean(omega)`` and the authors' code's ``mean(omega)``
AVG_UPDATES = ("add", "set")
#: how the policy's input whitening is set at a distillation (``policy_whitening``): from the distillation's own data, or
#: the authors' running statistics of every planned real state
POLICY_WHITENINGS = ("fit", "planned")
#: the values ``model.predict`` can use (``predict_with``)
PREDICT_MODES = ("mpc", "policy")
#: where the distillation's (state, action) pairs come from (``distillation_data``)
DISTILLATION_DATA = ("real", "hallucination")
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


#: training and using the policy network: the algorithms that have one (POPLIN-A, POPLIN-P) take them
DISTILLATION_OPTIONS: tuple[Option, ...] = (
    Option("learning_rate", 3e-3, "float | Schedule", "learning rate of the policy distillation (a float or a schedule)",
           learning_rate_or_schedule, sb3=True),
    Option("policy_epochs", 100, "int", "max epochs of each distillation", integer(1)),
    Option("policy_batch_size", 64, "int", "minibatch size of the distillation", integer(1)),
    Option("policy_holdout_ratio", 0.2, "float", "hold-out share of the distillation, in [0, 1)",
           real(0.0, 1.0, strict_maximum=True)),
    Option("policy_patience", 5, "int", "distillation epochs without hold-out improvement before stopping", integer(1)),
    Option("policy_max_updates", None, "int | None", "cap on gradient steps per distillation (None: no cap)",
           integer(1, optional=True)),
    Option("predict_with", "mpc", "str", "what ``model.predict`` uses: ``mpc`` (plan with the model) or ``policy`` (the "
           "network alone)", choice(PREDICT_MODES)),
    Option("distillation_data", "real", "str", "``real`` (distil on real states only) or ``hallucination`` (also on the "
           "imagined states and actions of the best elite candidates, as in the paper's ablation)",
           choice(DISTILLATION_DATA)),
    Option("distillation_window", None, "int | None", "distil on the real states of the last this many steps only (with "
           "their planned actions), instead of every planned step so far (None, the paper's): the policy then follows "
           "the current plans rather than the average of all earlier ones, which were made around earlier, worse "
           "policies (BC and GAN; AVG already moves by the noise of the steps since its last update only)",
           integer(1, optional=True)),
    Option("distillation_best_episodes", None, "int | None", "distil on the planned steps of this many episodes only, "
           "those with the highest returns in the buffer (the episode still running counts with its return so far), "
           "instead of every planned step (None, the paper's). With ``distillation_window`` too, the best episodes "
           "among those with steps in the window. BC and GAN only: AVG moves by the noise of the steps since its last "
           "update", integer(1, optional=True)),
    Option("policy_whitening", "fit", "str", "how the policy's input whitening is set at each distillation: ``fit`` "
           "(from the states it is distilled on; AVG's ``add`` update fits it once) or ``planned`` (the authors' code: "
           "the mean and std of every real state planned so far, with a small prior and a variance floor of 0.01, "
           "refitted at every distillation)", choice(POLICY_WHITENINGS)),
    Option("distill_after_warmup", True, "bool", "distil after the random warm-up too (the policy then starts from the "
           "random actions and their states' whitening); False: the policy is left as initialised until the first "
           "planned steps are distilled, as in the authors' code, whose first plan runs the initial policy on "
           "unwhitened observations", boolean),
    Option("hallucination_elites", 5, "int", "with hallucinated data, how many of the best elites per planned step are "
           "imagined", integer(1)),
    Option("extra_pairs_capacity", 50_000, "int", "at most this many extra (state, action) pairs (imagined, or elite "
           "actions of POPLIN-A) are kept for distillation, newest first", integer(0)),
    Option("policy_eval_freq", 0, "int", "every this many steps, evaluate the distilled policy alone (policy control) and "
           "log it as ``eval/policy_control_return`` beside the MPC return of training (0: never)", integer(0)),
    Option("policy_eval_episodes", 5, "int", "episodes of each policy-control evaluation", integer(1)),
)  # fmt: skip


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


DistillationType = TypeVar("DistillationType", bound="type[Distillation]")
#: every registered distillation scheme, by name
DISTILLATIONS: dict[str, type[Distillation]] = {}


def register_distillation(cls: DistillationType) -> DistillationType:
    """Class decorator: make ``cls`` available as ``distillation=cls.name`` to the algorithms of ``cls.algorithms``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a name to be registered")
    if cls.name in DISTILLATIONS and DISTILLATIONS[cls.name] is not cls:
        raise ValueError(f"a distillation named {cls.name!r} is already registered ({DISTILLATIONS[cls.name].__name__})")
    DISTILLATIONS[cls.name] = cls
    return cls


def distillations_of(algorithm: type) -> dict[str, type[Distillation]]:
    """The registered schemes an algorithm class (or a subclass of one named in their ``algorithms``) can use, by name."""
    lineage = {klass.__name__ for klass in algorithm.__mro__}
    return {name: cls for name, cls in DISTILLATIONS.items() if lineage.intersection(cls.algorithms)}


def distillation_class(name: str) -> type[Distillation]:
    """The scheme registered as ``name``; a ValueError names the registered ones."""
    if name not in DISTILLATIONS:
        raise ValueError(f"distillation must be one of {sorted(DISTILLATIONS)}, got {name!r}")
    return DISTILLATIONS[name]


@dataclass
class DistillationContext:
    """What a distillation scheme is built for.

    :param obs_dim: observation size
    :param act_dim: action size
    :param device: the policy's device
    :param generator: random generator of training (splits, shuffling, noise)
    :param init_sigma: the planner's initial noise std
    """

    obs_dim: int
    act_dim: int
    device: th.device
    generator: th.Generator | None
    init_sigma: float


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
    #: the name the ``distillation`` option gives it
    name: ClassVar[str] = ""
    #: the algorithms that can use it (by class name)
    algorithms: ClassVar[tuple[str, ...]] = ()
    #: the options that only this scheme takes (the shared ones are :data:`DISTILLATION_OPTIONS`)
    options: ClassVar[tuple[Option, ...]] = ()
    #: POPLIN-P's ``init_sigma`` when none is given, with this scheme (the paper's best settings)
    default_init_sigma: ClassVar[float] = 0.03

    @classmethod
    @abstractmethod
    def from_options(cls, values: Mapping[str, Any], context: DistillationContext) -> Distillation:
        """The scheme an algorithm's checked option values describe.

        :param values: every option's value, by option name
        :param context: what it is built for (sizes, device, random generator)
        """

    def saved_modules(self) -> dict[str, nn.Module]:
        """The modules of the scheme saved in the model's zip with their optimiser (``module.optimizer``), by the
        attribute name the algorithm keeps them under."""
        return {}

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


@register_distillation
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

    name = "bc"
    algorithms = ("POPLIN_A", "POPLIN_P")

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

    @classmethod
    def from_options(cls, values: Mapping[str, Any], context: DistillationContext) -> BehaviorCloning:
        return cls(
            epochs=values["policy_epochs"],
            batch_size=values["policy_batch_size"],
            holdout_ratio=values["policy_holdout_ratio"],
            patience=values["policy_patience"],
            max_updates=values["policy_max_updates"],
            generator=context.generator,
        )

    def distill(self, policy_net: PolicyNetwork, optimizer: th.optim.Optimizer, data: DistillationData) -> dict[str, float]:
        obs, target = data.observations, data.actions
        n = obs.shape[0]
        device = obs.device
        perm = th.randperm(n, generator=self.generator).to(device)
        n_holdout = int(n * self.holdout_ratio) if n >= 10 else 0
        hold_idx, train_idx = perm[:n_holdout], perm[n_holdout:]
        self.whiten(policy_net, data, obs[train_idx])

        def holdout_loss() -> th.Tensor:
            idx = hold_idx if n_holdout > 0 else train_idx
            with th.no_grad():
                return F.mse_loss(policy_net(obs[idx]), target[idx])

        best_state = {k: v.clone() for k, v in policy_net.state_dict().items()}

        def keep_parameters(improved: th.Tensor) -> None:
            best_state.update({k: v.clone() for k, v in policy_net.state_dict().items()})

        def epoch_batches() -> list[th.Tensor]:
            return list(train_idx[th.randperm(n_train, generator=self.generator).to(device)].split(self.batch_size))

        def train_step(batch: th.Tensor) -> th.Tensor:
            loss = F.mse_loss(policy_net(obs[batch]), target[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return loss.detach()

        n_train = train_idx.shape[0]
        result = fitting.fit(
            train_step,
            epoch_batches,
            self.epochs,
            score=holdout_loss,
            on_improvement=keep_parameters,
            patience=self.patience,
            max_updates=self.max_updates,
        )
        policy_net.load_state_dict(best_state)
        assert result.best is not None
        return {
            "policy_loss": float(result.mean_loss.item()),
            "policy_holdout_loss": float(result.best.item()),
            "policy_updates": float(result.updates),
        }


@th.no_grad()
def imitation_error(policy_net: PolicyNetwork, data: DistillationData) -> float:
    """Mean squared distance between the policy's actions and the planned ones (a diagnostic for every scheme)."""
    if data.observations.shape[0] == 0:
        return float("nan")
    return F.mse_loss(policy_net(data.observations), data.actions).item()


@register_distillation
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
    name = "avg"
    algorithms = ("POPLIN_P",)
    default_init_sigma = 0.1
    options = (
        Option("avg_update", "add", "str", "with ``avg``: ``add`` (the paper's ``theta <- theta + mean(omega)``, "
               "whitening fitted once) or ``set`` (the authors' code: ``theta <- mean(omega)``, whitening refitted on the "
               "planned states at every update)", choice(AVG_UPDATES)),
    )  # fmt: skip

    def __init__(self, update: str = "add") -> None:
        if update not in AVG_UPDATES:
            raise ValueError(f"update must be one of {AVG_UPDATES}, got {update!r}")
        self.update = update
        self.refits_normalizer = update == "set"

    @classmethod
    def from_options(cls, values: Mapping[str, Any], context: DistillationContext) -> ParameterAverage:
        return cls(values["avg_update"])

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

    # buffers (registered in __init__), typed for the checker
    obs_mean: th.Tensor
    obs_std: th.Tensor
    #: its optimiser (saved in the zip beside it)
    optimizer: th.optim.Optimizer

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


@register_distillation
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

    name = "gan"
    algorithms = ("POPLIN_P",)
    options = (
        Option("gan_entropy_coef", 1e-3, "float", "entropy bonus of the GAN discriminator", real(0.0)),
        Option("gan_epochs", 10, "int", "passes over the data per GAN distillation", integer(1)),
        Option("discriminator_net_arch", [64, 64], "list[int]", "hidden widths of the GAN discriminator", widths),
        Option("discriminator_learning_rate", 1e-3, "float", "Adam learning rate of the discriminator",
               real(0.0, strict_minimum=True)),
    )  # fmt: skip

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

    @classmethod
    def from_options(cls, values: Mapping[str, Any], context: DistillationContext) -> AdversarialDistillation:
        discriminator = Discriminator(context.obs_dim, context.act_dim, values["discriminator_net_arch"]).to(context.device)
        discriminator.optimizer = make_adam(discriminator.parameters(), lr=values["discriminator_learning_rate"])
        return cls(
            discriminator,
            discriminator.optimizer,
            sigma=context.init_sigma,
            entropy_coef=values["gan_entropy_coef"],
            epochs=values["gan_epochs"],
            batch_size=values["policy_batch_size"],
            max_updates=values["policy_max_updates"],
            generator=context.generator,
        )

    def saved_modules(self) -> dict[str, nn.Module]:
        return {"discriminator": self.discriminator}

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

        def epoch_batches() -> list[th.Tensor]:
            return list(th.randperm(obs.shape[0], generator=self.generator).to(obs.device).split(self.batch_size))

        def train_step(batch: th.Tensor) -> th.Tensor:
            """One discriminator step, then one generator step: ``[discriminator loss, generator loss]``."""
            d_loss = self.discriminator_loss(policy_net, obs[batch], planned[batch])
            self.discriminator_optimizer.zero_grad(set_to_none=True)
            d_loss.backward()
            self.discriminator_optimizer.step()
            fake_logits = self.discriminator(obs[batch], self.generate(policy_net, obs[batch]))
            g_loss = F.binary_cross_entropy_with_logits(fake_logits, th.ones_like(fake_logits))
            optimizer.zero_grad(set_to_none=True)
            g_loss.backward()
            optimizer.step()
            return th.stack([d_loss.detach(), g_loss.detach()])

        result = fitting.fit(train_step, epoch_batches, self.epochs, max_updates=self.max_updates)
        d_loss, g_loss = result.mean_loss.expand(2).tolist()  # NaN for both without a step
        return {
            "policy_loss": imitation_error(policy_net, data),
            "discriminator_loss": d_loss,
            "generator_loss": g_loss,
            "policy_updates": float(result.updates),
        }
