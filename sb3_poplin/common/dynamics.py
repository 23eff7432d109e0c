"""Probabilistic ensemble of Gaussian MLPs (the PE model of PETS, used by POPLIN).

Every member is evaluated in one batched call: the weights of layer ``l`` are stored as one tensor
``[E, in_l, out_l]`` and inputs as ``[E, N, in]``, so the whole ensemble is a chain of ``baddbmm``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch as th
from torch import nn
from torch.nn import functional as F

from sb3_poplin.common import fitting
from sb3_poplin.common.validation import check_indices

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
}


PETS_WEIGHT_DECAYS = (2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4)
#: which epoch's parameters a fit keeps (``dynamics_keep_epoch``): each member's best by hold-out error, or the last
DYNAMICS_KEEP_EPOCHS = ("best", "last")

FUSED_ADAM_DEVICES = ("cpu", "cuda")


def check_adam_kwargs(name: str, kwargs: Any) -> dict[str, Any]:
    """Keyword arguments for :func:`make_adam`: a dict of ``torch.optim.Adam``'s own arguments other than ``params`` and
    ``lr`` (the algorithms take the learning rate as its own argument).

    :param name: the argument's name, for the error message
    :param kwargs: the user's value (None for none)
    """
    if kwargs is None:
        return {}
    if not isinstance(kwargs, dict):
        raise ValueError(f"{name} must be a dict of torch.optim.Adam keyword arguments or None, got {type(kwargs).__name__}")
    allowed = set(inspect.signature(th.optim.Adam).parameters) - {"params", "lr"}
    unknown = sorted(str(key) for key in kwargs if key not in allowed)
    if "lr" in kwargs:
        raise ValueError(f"{name} cannot set 'lr': pass the learning rate as dynamics_learning_rate")
    if unknown:
        raise ValueError(f"{name} has unknown Adam arguments {unknown}; valid: {sorted(allowed)}")
    return dict(kwargs)


def make_adam(parameters: Iterable[nn.Parameter], lr: float, **kwargs: Any) -> th.optim.Adam:
    """Adam with torch's fused kernel on CPU and CUDA, the default implementation on other devices.

    The update rule is the same; the fused kernel updates every tensor in one pass instead of a chain of element-wise
    ops per tensor, which matters for the ensemble's small batches (measured in docs/results.md, *cheetah-fitting*).

    :param parameters: the parameters to optimise
    :param lr: learning rate
    :param kwargs: further ``torch.optim.Adam`` arguments; an explicit ``fused`` (or ``foreach``) is kept as given
    """
    params = list(parameters)
    if "fused" not in kwargs and not kwargs.get("foreach") and not kwargs.get("differentiable"):
        # torch checks the devices only at the first step: decide here, from the devices with a fused kernel we know.
        if all(p.device.type in FUSED_ADAM_DEVICES and p.is_floating_point() for p in params):
            kwargs = {**kwargs, "fused": True}
    return th.optim.Adam(params, lr=lr, **kwargs)


class EnsembleLinear(nn.Module):
    """``E`` independent linear layers applied in one batched matmul.

    :param n_members: number of ensemble members ``E``
    :param in_features: input size
    :param out_features: output size
    """

    def __init__(self, n_members: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.n_members = n_members
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(th.empty(n_members, in_features, out_features))
        self.bias = nn.Parameter(th.zeros(n_members, 1, out_features))
        # Truncated normal with std 1/(2 sqrt(in)): the PETS initialisation, each member drawn independently.
        std = 1.0 / (2.0 * math.sqrt(in_features))
        nn.init.trunc_normal_(self.weight, std=std, a=-2 * std, b=2 * std)

    def forward(self, x: th.Tensor) -> th.Tensor:
        """:param x: ``[E, N, in]`` :return: ``[E, N, out]``"""
        return th.baddbmm(self.bias, x, self.weight)

    def extra_repr(self) -> str:
        return f"n_members={self.n_members}, in_features={self.in_features}, out_features={self.out_features}"


def read_mask(size: int, ignored: Sequence[int]) -> th.Tensor:
    """``[size]`` float mask: 1 for an input a network reads, 0 for an ignored one (multiplied into the whitened input)."""
    mask = th.ones(size)
    mask[list(ignored)] = 0.0
    return mask


class ProbabilisticEnsemble(nn.Module):
    """Ensemble of Gaussian MLPs mapping inputs to the mean and log-variance of a target.

    The inputs are whitened with a normaliser held as float buffers (saved with the state dict); dimensions whose
    standard deviation is (near) zero are left unscaled instead of being divided by ~0.
    The log-variance is squashed between learned soft bounds (``max_logvar`` / ``min_logvar``) as in PETS.

    :param in_dim: input size (observation + action, for a dynamics model)
    :param out_dim: output size (state delta, plus a reward column for a learned reward)
    :param n_members: number of members ``E``
    :param hidden_sizes: hidden layer widths
    :param activation: activation name (``silu``/``swish``, ``relu``, ``tanh``, ``elu``)
    :param weight_decays: L2 penalty per layer (one per hidden layer plus the output layer); a single float applies to all.
        Default: PETS' (2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4) for 4 hidden layers, else evenly spaced from 2.5e-5 to 1e-4
    :param init_max_logvar: initial value of the learned upper bound of the log-variance
    :param init_min_logvar: initial value of the learned lower bound of the log-variance
    :param logvar_bound_coef: weight of the penalty that keeps the learned bounds tight
    :param n_elite_members: number of members used for prediction, chosen on hold-out loss (default: all)
    :param ignored_inputs: input indices the networks do not read (e.g. absolute positions the dynamics do not depend
        on, :func:`~sb3_poplin.rewards.position_indices`): their whitened value is multiplied by zero
    """

    # buffers (registered in __init__), typed for the checker
    input_mean: th.Tensor
    input_std: th.Tensor
    input_mask: th.Tensor
    elite_idx: th.Tensor
    elite_mask: th.Tensor
    #: the optimiser that fits it, attached by its owner (saved in the zip beside it)
    optimizer: th.optim.Optimizer
    #: the dtype of planning's matrix products (the engine sets it from ``planning_dtype``)
    planning_dtype: th.dtype

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        n_members: int = 5,
        hidden_sizes: Sequence[int] = (200, 200, 200, 200),
        activation: str = "silu",
        weight_decays: float | Sequence[float] | None = None,
        init_max_logvar: float = 0.5,
        init_min_logvar: float = -10.0,
        logvar_bound_coef: float = 0.01,
        n_elite_members: int | None = None,
        ignored_inputs: Sequence[int] = (),
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"Unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
        n_elite_members = n_members if n_elite_members is None else n_elite_members
        if not 1 <= n_elite_members <= n_members:
            raise ValueError(f"n_elite_members must be in [1, n_members={n_members}], got {n_elite_members}")
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.n_members = n_members
        self.n_elite_members = n_elite_members
        sizes = [in_dim, *hidden_sizes, 2 * out_dim]
        # A ModuleList (registered, state-dict keys ``layers.<i>.*``), read as the list of ensemble layers it is
        self.layers = cast(
            list[EnsembleLinear], nn.ModuleList(EnsembleLinear(n_members, a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        )
        self.activation = ACTIVATIONS[activation]()
        if weight_decays is None:
            n_layers = len(self.layers)
            weight_decays = PETS_WEIGHT_DECAYS if n_layers == 5 else np.linspace(2.5e-5, 1e-4, n_layers).tolist()
        if isinstance(weight_decays, (int, float)):
            weight_decays = [float(weight_decays)] * len(self.layers)
        if len(weight_decays) != len(self.layers):
            raise ValueError(f"weight_decays needs {len(self.layers)} values (one per layer), got {len(weight_decays)}")
        self.weight_decays = [float(w) for w in weight_decays]
        self.max_logvar = nn.Parameter(th.full((1, 1, out_dim), float(init_max_logvar)))
        self.min_logvar = nn.Parameter(th.full((1, 1, out_dim), float(init_min_logvar)))
        self.logvar_bound_coef = logvar_bound_coef
        self.register_buffer("input_mean", th.zeros(in_dim))
        self.register_buffer("input_std", th.ones(in_dim))
        self.ignored_inputs = check_indices("ignored_inputs", ignored_inputs, in_dim)
        # 1 for a read input, 0 for an ignored one. Not persistent: it follows from a constructor argument, and state
        # dicts saved before the argument existed load unchanged.
        self.register_buffer("input_mask", read_mask(in_dim, self.ignored_inputs), persistent=False)
        # Indices of the elite members, sorted; all members until the first hold-out evaluation. Bookkeeping, not a
        # weight: kept out of the state dict, which holds it as the float ``elite_mask`` (1 for an elite member) so that
        # every saved tensor is a float SB3's get/set_parameters can round-trip (see _save_to_state_dict).
        self.register_buffer("elite_idx", th.arange(n_elite_members, dtype=th.long), persistent=False)
        self.register_buffer("elite_mask", th.zeros(n_members))
        #: dtype of the planning passes' matrix products (:mod:`sb3_poplin.common.precision`); inputs and outputs of
        #: :meth:`forward_elites` and :meth:`forward_elites_mean` stay float32. Set by the algorithm, not saved here.
        self.planning_dtype = th.float32
        self._elite_cache: _PlanningWeights | None = None

    # ------------------------------------------------------------------ normaliser
    @th.no_grad()
    def fit_input_normalizer(self, inputs: th.Tensor, min_std: float = 1e-6) -> None:
        """Set the input whitening from data.

        :param inputs: ``[N, in_dim]``
        :param min_std: dimensions with a smaller std (e.g. constant ones) keep std 1 so they are not blown up
        """
        mean = inputs.mean(dim=0)
        std = inputs.std(dim=0, unbiased=False) if inputs.shape[0] > 1 else th.ones_like(mean)
        std = th.where(std < min_std, th.ones_like(std), std)
        self.input_mean.copy_(mean)
        self.input_std.copy_(std)
        self._elite_cache = None

    # ------------------------------------------------------------------ forward
    def _bounded_logvar(self, raw_logvar: th.Tensor) -> th.Tensor:
        # Soft clamp between the learned bounds: smooth, so gradients reach the bounds themselves.
        logvar = self.max_logvar - F.softplus(self.max_logvar - raw_logvar)
        return self.min_logvar + F.softplus(logvar - self.min_logvar)

    def forward(self, inputs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """All members on their own inputs.

        :param inputs: ``[E, N, in_dim]`` (unnormalised)
        :return: mean and log-variance, each ``[E, N, out_dim]``
        """
        x = (inputs - self.input_mean) / self.input_std
        if self.ignored_inputs:
            x = x * self.input_mask
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        out = self.layers[-1](x)
        mean, raw_logvar = out[..., : self.out_dim], out[..., self.out_dim :]
        return mean, self._bounded_logvar(raw_logvar)

    def _elite_layers(self) -> _PlanningWeights:
        """Planning weights of the elite members, derived once per model update instead of once per planning call.

        Rebuilt when the cache was invalidated (training, normaliser, state dict) or the module moved device or dtype.
        """
        cache = self._elite_cache
        weight = self.layers[0].weight
        dtype = self.planning_dtype if weight.dtype == th.float32 else weight.dtype  # a float64 model plans in float64
        if cache is None or cache.layers[0][0].device != weight.device or cache.layers[0][0].dtype != dtype:
            # Built outside inference mode (planning runs in it): the cache outlives the plan and must stay usable by
            # any caller, autograd enabled or not.
            with th.inference_mode(False):
                cache = self._elite_cache = _PlanningWeights.build(self, dtype)
        return cache

    def forward_elites(self, inputs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """Elite members only, for planning (no gradients).

        :param inputs: ``[n_elite_members, N, in_dim]`` (unnormalised)
        :return: mean and log-variance, each ``[n_elite_members, N, out_dim]``
        """
        layers = self._elite_layers().layers
        # The 1/std of the whitening is folded into the first layer; only the centring is left to do here (in the
        # inputs' precision: the centred value is what the planning dtype rounds).
        x = (inputs - self.input_mean).to(layers[0][0].dtype)
        for weight, bias in layers[:-1]:
            x = self.activation(th.baddbmm(bias, x, weight))
        weight, bias = layers[-1]
        out = th.baddbmm(bias, x, weight).to(inputs.dtype)
        mean, raw_logvar = out[..., : self.out_dim], out[..., self.out_dim :]
        return mean, self._bounded_logvar(raw_logvar)

    def forward_elites_mean(self, inputs: th.Tensor) -> th.Tensor:
        """Mean prediction averaged over the elite members, every member on the same rows (expectation propagation).

        Equal to ``forward_elites(inputs.expand(n_elite_members, -1, -1))[0].mean(0)`` up to float rounding, but the first
        layer of all members is one ``[N, in] x [in, n_elite_members * hidden]`` matmul (no ``[n_elite_members, N, in]``
        copy of the inputs) and neither the log-variance columns nor their bounds are computed.

        :param inputs: ``[N, in_dim]`` (unnormalised)
        :return: ``[N, out_dim]``
        """
        cache = self._elite_layers()
        if len(cache.layers) == 1:
            # No hidden layer: the first layer is the output layer, nothing to share.
            return self.forward_elites(inputs.unsqueeze(0).expand(self.n_elite_members, -1, -1))[0].mean(dim=0)
        n_rows = inputs.shape[0]
        centred = (inputs - self.input_mean).to(cache.first_weight.dtype)
        x = th.addmm(cache.first_bias, centred, cache.first_weight)  # [N, n_elite_members * hidden]
        # Member-major view of the same memory: [n_elite_members, N, hidden] with row stride n_elite_members * hidden (no copy;
        # batched matmuls take the strided operand as is).
        x = self.activation(x).view(n_rows, self.n_elite_members, -1).transpose(0, 1)
        for weight, bias in cache.layers[1:-1]:
            x = self.activation(th.baddbmm(bias, x, weight))
        out = th.baddbmm(cache.last_bias_mean, x, cache.last_weight_mean)  # [n_elite_members, N, out_dim]
        return out.to(inputs.dtype).mean(dim=0)  # averaged over the members in the inputs' precision

    def invalidate_cache(self) -> None:
        """Forget the derived planning weights: call after the parameters, the elites or the normaliser buffers were
        changed other than by :meth:`fit`, :meth:`fit_input_normalizer` or ``load_state_dict`` (the input scale is
        folded into them)."""
        self._elite_cache = None

    def _elites_of_mask(self) -> th.Tensor:
        """The ``n_elite_members`` members with the largest mask values, sorted: any float mask (even a random one, as SB3's
        parameter tests write) names distinct members."""
        return th.sort(th.topk(self.elite_mask, self.n_elite_members).indices).values

    @th.no_grad()
    def _sync_elite_mask(self) -> None:
        """Rewrite the mask from ``elite_idx`` when they disagree (``fit`` sets ``elite_idx``); a mask that already
        names the elites is kept as it is, so the state dict round-trips exactly."""
        if not th.equal(self._elites_of_mask(), self.elite_idx):
            self.elite_mask.zero_().index_fill_(0, self.elite_idx, 1.0)

    def _save_to_state_dict(self, destination: dict[str, Any], prefix: str, keep_vars: bool) -> None:
        self._sync_elite_mask()
        super()._save_to_state_dict(destination, prefix, keep_vars)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        self._elite_cache = None
        self._sync_elite_mask()  # a state dict without the mask (strict=False) keeps the current elites
        legacy_idx = state_dict.pop(prefix + "elite_idx", None)
        if legacy_idx is not None and prefix + "elite_mask" not in state_dict:
            # A zip of sb3-poplin 0.1 stored the elites as an integer buffer of indices.
            mask = th.zeros(self.n_members)
            mask[th.as_tensor(legacy_idx, dtype=th.long)] = 1.0
            state_dict[prefix + "elite_mask"] = mask
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        with th.no_grad():
            self.elite_idx.copy_(self._elites_of_mask())

    # ------------------------------------------------------------------ losses
    def nll_loss(self, inputs: th.Tensor, targets: th.Tensor) -> th.Tensor:
        """Gaussian negative log-likelihood (up to a constant), summed over members, with the log-variance bound
        penalty and the per-layer weight decay.

        :param inputs: ``[E, B, in_dim]``
        :param targets: ``[E, B, out_dim]``
        """
        mean, logvar = self(inputs)
        inv_var = th.exp(-logvar)
        nll = (((mean - targets) ** 2) * inv_var + logvar).mean(dim=(1, 2)).sum()
        bound_penalty = self.logvar_bound_coef * (self.max_logvar.sum() - self.min_logvar.sum())
        decay = sum(wd * 0.5 * (layer.weight**2).sum() for wd, layer in zip(self.weight_decays, self.layers))
        return nll + bound_penalty + decay

    @th.no_grad()
    def member_mse(self, inputs: th.Tensor, targets: th.Tensor, batch_size: int = 4096) -> th.Tensor:
        """Mean squared error of each member's mean on the same data.

        :param inputs: ``[N, in_dim]``
        :param targets: ``[N, out_dim]``
        :return: ``[E]``
        """
        total = th.zeros(self.n_members, device=inputs.device)
        for start in range(0, inputs.shape[0], batch_size):
            x = inputs[start : start + batch_size].unsqueeze(0).expand(self.n_members, -1, -1)
            mean, _ = self(x)
            total += ((mean - targets[start : start + batch_size]) ** 2).mean(dim=2).sum(dim=1)
        return total / max(inputs.shape[0], 1)

    # ------------------------------------------------------------------ training
    def _member_keys(self) -> list[str]:
        """State-dict keys whose first dimension indexes the members."""
        return [f"layers.{i}.{name}" for i in range(len(self.layers)) for name in ("weight", "bias")]

    def fit(
        self,
        inputs: th.Tensor,
        targets: th.Tensor,
        optimizer: th.optim.Optimizer,
        max_epochs: int = 5,
        batch_size: int = 32,
        holdout_ratio: float = 0.1,
        max_holdout: int = 5000,
        patience: int = 5,
        max_updates: int | None = None,
        bootstrap: bool = True,
        generator: th.Generator | None = None,
        keep_epoch: str = "best",
    ) -> dict[str, float]:
        """Train every member on its own bootstrap resample, stop early on hold-out MSE and pick the elites.

        :param inputs: ``[N, in_dim]``
        :param targets: ``[N, out_dim]``
        :param optimizer: optimiser over this module's parameters
        :param max_epochs: maximal number of passes over the training split
        :param batch_size: minibatch size per member
        :param holdout_ratio: share of the data kept out of training to evaluate the members
        :param max_holdout: cap on the number of hold-out samples
        :param patience: epochs without hold-out improvement of any member before stopping
        :param max_updates: cap on the number of gradient steps (keeps iterations affordable on large buffers)
        :param bootstrap: resample the training split with replacement for each member
        :param generator: random generator for the split, resampling and shuffling
        :param keep_epoch: ``best``: each member ends with the parameters of its epoch with the lowest hold-out error (the
            training error without a hold-out); ``last``: with those of the last epoch, as PETS' and the authors' code
        :return: ``{"loss", "holdout_mse", "epochs", "updates"}`` (``holdout_mse`` of the elites) and
            ``holdout_mse_member_<i>`` for every member
        """
        n = inputs.shape[0]
        device = inputs.device
        perm = th.randperm(n, generator=generator, device="cpu").to(device)
        n_holdout = min(int(n * holdout_ratio), max_holdout) if n >= 10 else 0
        hold_idx, train_idx = perm[:n_holdout], perm[n_holdout:]
        n_train = train_idx.shape[0]
        self.fit_input_normalizer(inputs[train_idx])
        if bootstrap:
            member_idx = train_idx[th.randint(n_train, (self.n_members, n_train), generator=generator).to(device)]
        else:
            member_idx = train_idx.unsqueeze(0).expand(self.n_members, -1)

        def holdout_scores() -> th.Tensor:
            if n_holdout == 0:
                return self.member_mse(inputs[train_idx], targets[train_idx])
            return self.member_mse(inputs[hold_idx], targets[hold_idx])

        if keep_epoch not in DYNAMICS_KEEP_EPOCHS:
            raise ValueError(f"keep_epoch must be one of {DYNAMICS_KEEP_EPOCHS}, got {keep_epoch!r}")
        best_state = {k: v.clone() for k, v in self.state_dict().items()} if keep_epoch == "best" else {}

        def keep_improved_members(improved: th.Tensor) -> None:
            # Keep, per member, the parameters of its best epoch (members are independent slices).
            if keep_epoch == "best":
                state = self.state_dict()
                for key in self._member_keys():
                    best_state[key][improved] = state[key][improved].clone()

        def epoch_batches() -> list[th.Tensor]:
            order = th.argsort(th.rand(self.n_members, n_train, generator=generator), dim=1).to(device)
            shuffled = th.gather(member_idx, 1, order)  # [E, n_train], each member its own order
            return [shuffled[:, start : start + batch_size] for start in range(0, n_train, batch_size)]  # [E, B] each

        def train_step(batch: th.Tensor) -> th.Tensor:
            loss = self.nll_loss(inputs[batch], targets[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return loss.detach()

        self.train()
        result = fitting.fit(
            train_step,
            epoch_batches,
            max_epochs,
            score=holdout_scores,
            on_improvement=keep_improved_members,
            patience=patience,
            max_updates=max_updates,
            min_relative_improvement=1e-8,
        )
        assert result.best is not None and result.last is not None
        best = result.best
        if keep_epoch == "best":
            # The shared entries (bounds, normaliser) take their final values; per-member ones their best epoch.
            member_keys = set(self._member_keys())
            for key, value in self.state_dict().items():
                if key not in member_keys:
                    best_state[key] = value
            self.load_state_dict(best_state)
        else:
            best = result.last  # the errors of the weights kept
        # ``best`` already holds each member's hold-out error at the kept weights (the mean prediction does not depend on
        # the shared entries that took their final values): no second scoring pass.
        self.elite_idx.copy_(th.sort(th.argsort(best)[: self.n_elite_members]).values)
        self._elite_cache = None
        self.eval()
        return {
            "loss": float(result.mean_loss.item()),
            "holdout_mse": float(best[self.elite_idx].mean().item()),
            "epochs": float(result.epochs),
            "updates": float(result.updates),
            **{f"holdout_mse_member_{i}": float(score) for i, score in enumerate(best.tolist())},
        }


class TerminationClassifier(nn.Module):
    """Learned termination for tasks without a known one: ``P(terminated | next_obs)``.

    Gymnasium's terminations (falling, leaving a healthy range) are functions of the state reached, so the classifier
    reads the next observation only. Trained with class-balanced binary cross-entropy: terminal steps are rare.

    :param obs_dim: observation size
    :param hidden_sizes: hidden widths
    """

    # buffers (registered in __init__), typed for the checker
    obs_mean: th.Tensor
    obs_std: th.Tensor
    trained: th.Tensor
    #: the optimiser that fits it, attached by its owner (saved in the zip beside it)
    optimizer: th.optim.Optimizer

    def __init__(self, obs_dim: int, hidden_sizes: Sequence[int] = (64, 64)) -> None:
        super().__init__()
        sizes = [obs_dim, *hidden_sizes]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.SiLU()]
        layers.append(nn.Linear(sizes[-1], 1))
        self.net = nn.Sequential(*layers)
        self.register_buffer("obs_mean", th.zeros(obs_dim))
        self.register_buffer("obs_std", th.ones(obs_dim))
        # 0 until a terminal transition has been seen: before that, nothing is predicted to terminate. A float flag, so
        # every saved tensor is a float (zips holding the former bool load into it unchanged).
        self.register_buffer("trained", th.tensor(0.0))

    def forward(self, next_obs: th.Tensor) -> th.Tensor:
        """:return: logits ``[...]``"""
        return self.net((next_obs - self.obs_mean) / self.obs_std).squeeze(-1)

    def termination_fn(self, obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        """Same signature as a known termination function: True where termination is more likely than not."""
        if not bool(self.trained):
            return th.zeros(next_obs.shape[:-1], dtype=th.bool, device=next_obs.device)
        return self(next_obs) > 0.0

    def fit(
        self,
        next_obs: th.Tensor,
        terminated: th.Tensor,
        optimizer: th.optim.Optimizer,
        epochs: int = 5,
        batch_size: int = 256,
        generator: th.Generator | None = None,
    ) -> dict[str, float]:
        """Train on (next state, terminated) pairs; does nothing while no termination was observed.

        :param next_obs: ``[N, obs_dim]``
        :param terminated: ``[N]`` in {0, 1}
        :return: ``{"termination_loss", "termination_accuracy"}``
        """
        n_terminal = float(terminated.sum().item())
        if n_terminal == 0:
            return {}
        std = next_obs.std(dim=0, unbiased=False)
        self.obs_mean.copy_(next_obs.mean(dim=0))
        self.obs_std.copy_(th.where(std < 1e-6, th.ones_like(std), std))
        pos_weight = th.tensor((len(terminated) - n_terminal) / n_terminal, device=next_obs.device)

        def epoch_batches() -> list[th.Tensor]:
            order = th.randperm(len(terminated), generator=generator).to(next_obs.device)
            return list(order.split(batch_size))

        def train_step(batch: th.Tensor) -> th.Tensor:
            loss = F.binary_cross_entropy_with_logits(self(next_obs[batch]), terminated[batch], pos_weight=pos_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return loss.detach()

        result = fitting.fit(train_step, epoch_batches, epochs)
        self.trained.fill_(1.0)
        with th.no_grad():
            accuracy = ((self(next_obs) > 0).float() == terminated).float().mean().item()
        return {"termination_loss": float(result.mean_loss.item()), "termination_accuracy": accuracy}


@dataclass
class _PlanningWeights:
    """Elite weights of an ensemble laid out for planning (derived tensors, never trained).

    :param layers: ``(weight [n_elite_members, in, out], bias [n_elite_members, 1, out])`` per layer; the first weight is
        divided by the input std (the whitening folded in; the inputs still need centring)
    :param first_weight: the first layer of all elites side by side ``[in, n_elite_members * out_0]`` (member-major columns)
    :param first_bias: ``[n_elite_members * out_0]``
    :param last_weight_mean: the mean columns of the output layer ``[n_elite_members, hidden, out_dim]``
    :param last_bias_mean: ``[n_elite_members, 1, out_dim]``
    """

    layers: list[tuple[th.Tensor, th.Tensor]]
    first_weight: th.Tensor
    first_bias: th.Tensor
    last_weight_mean: th.Tensor
    last_bias_mean: th.Tensor

    @classmethod
    @th.no_grad()
    def build(cls, model: ProbabilisticEnsemble, dtype: th.dtype = th.float32) -> _PlanningWeights:
        """Gather the elites of ``model``, fold its input scaling into the first layer and cast them to ``dtype``."""
        idx = model.elite_idx
        layers = [(layer.weight[idx].detach(), layer.bias[idx].detach()) for layer in model.layers]
        # ((x - m) / s) @ W == (x - m) @ (W / s). Only the scale is folded: folding the centring too (x @ W' - m @ W')
        # would cancel catastrophically on dimensions whose mean is large compared with their std.
        # Ignored inputs get zero rows: (x - m) @ (W * mask / s) == ((x - m) / s * mask) @ W, as in forward().
        first_weight = layers[0][0] * (model.input_mask / model.input_std).view(1, -1, 1)  # [n_elite_members, in, out_0]
        # Folded in the model's precision, then rounded once to the planning dtype.
        layers = [(first_weight.to(dtype), layers[0][1].to(dtype))] + [(w.to(dtype), b.to(dtype)) for w, b in layers[1:]]
        first_weight = layers[0][0]
        n_elite_members, in_dim, out_0 = first_weight.shape
        weight, bias = layers[-1]
        return cls(
            layers=layers,
            first_weight=first_weight.permute(1, 0, 2).reshape(in_dim, n_elite_members * out_0).contiguous(),
            first_bias=layers[0][1].reshape(n_elite_members * out_0).contiguous(),
            last_weight_mean=weight[..., : model.out_dim].contiguous(),
            last_bias_mean=bias[..., : model.out_dim].contiguous(),
        )
