"""The policy network that POPLIN plans around and distils into, and its SB3 policy wrapper."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import FlattenExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from sb3_poplin.common.dynamics import read_mask
from sb3_poplin.common.validation import check_indices, check_widths

POLICY_ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "silu": nn.SiLU, "elu": nn.ELU}
#: how the last layer's output becomes an action in [-1, 1]: squashed by tanh, or linear and clipped (the authors' code)
POLICY_OUTPUTS = ("tanh", "clip")
#: initialisations of the policy's layers: PyTorch's default, or normc (the authors' code: each unit's incoming weights
#: drawn normal and scaled to norm 1 in hidden layers and 0.01 in the output layer, biases zero)
POLICY_INITS = ("torch", "normc")
#: the norm of each unit's incoming weights under normc: hidden layers, output layer
NORMC_NORMS = (1.0, 0.01)
#: the policy's ``activation`` name of each torch.nn class that SB3 users pass as ``activation_fn``
ACTIVATION_NAMES: dict[type[nn.Module], str] = {module: name for name, module in POLICY_ACTIVATIONS.items()}

#: why POPLIN's policy network cannot take a features extractor, for the error messages
_FLAT_MLP_ONLY = (
    "POPLIN's policy network is a plain MLP on flat vector observations: POPLIN-P evaluates every CEM candidate with "
    "its own perturbed copy of the network's flat weights in batched matmuls, which layers outside that flat vector "
    "(a features extractor) would not take part in"
)


def resolve_policy_options(
    activation: str | None,
    activation_fn: type[nn.Module] | None,
    features_extractor_class: type[nn.Module] | None,
    features_extractor_kwargs: dict[str, Any] | None,
    share_features_extractor: bool | None,
    optimizer_kwargs: dict[str, Any] | None,
) -> str:
    """
    Check the policy keyword arguments that SB3 users pass to SB3's own policies and POPLIN's network cannot take as
    they are, and give the hidden activation's name.

    ``activation_fn`` (a torch.nn class, as in SB3 and rl-zoo3's ``policy_kwargs`` strings) maps to the policy's own
    ``activation`` name; a features extractor other than SB3's default flattening is refused (see ``_FLAT_MLP_ONLY``).

    :param activation: the policy's ``activation`` name, None when not given
    :param activation_fn: SB3's ``activation_fn``: one of the classes of :data:`ACTIVATION_NAMES`, or None
    :param features_extractor_class: SB3's ``features_extractor_class``: None or ``FlattenExtractor`` (what the
        network does to observations anyway)
    :param features_extractor_kwargs: SB3's ``features_extractor_kwargs``: None or empty
    :param share_features_extractor: SB3's ``share_features_extractor``: None (there is neither a critic nor a
        features extractor to share)
    :param optimizer_kwargs: the distillation optimiser's keyword arguments (the learning rate is not one of them)
    :return: the hidden activation's name, a key of :data:`POLICY_ACTIVATIONS`
    :raises ValueError: for an option the policy cannot honour, saying what to use instead
    """
    if features_extractor_class is not None and features_extractor_class is not FlattenExtractor:
        raise ValueError(
            f"policy_kwargs' features_extractor_class={features_extractor_class!r} is not supported. {_FLAT_MLP_ONLY}. "
            "Turn the observations into a flat vector before the algorithm sees them, with an observation wrapper "
            "(e.g. gymnasium.wrappers.FlattenObservation, or your own gymnasium.ObservationWrapper; rl-zoo3: env_wrapper), "
            "and leave features_extractor_class out."
        )
    if features_extractor_kwargs:
        raise ValueError(
            f"policy_kwargs' features_extractor_kwargs={features_extractor_kwargs!r} have no features extractor to "
            f"configure. {_FLAT_MLP_ONLY}. Leave features_extractor_kwargs out; transform observations with an "
            "observation wrapper (e.g. gymnasium.wrappers.FlattenObservation) instead."
        )
    if share_features_extractor is not None:
        raise ValueError(
            f"policy_kwargs' share_features_extractor={share_features_extractor!r} has nothing to act on: POPLIN's "
            "policy has no critic and no features extractor to share. Leave share_features_extractor out."
        )
    if optimizer_kwargs is not None and "lr" in optimizer_kwargs:
        raise ValueError(
            f"policy_kwargs' optimizer_kwargs={optimizer_kwargs!r} set 'lr': the distillation optimiser's learning rate "
            "is the algorithm's learning_rate argument (a float or a schedule). Pass it there and leave 'lr' out."
        )
    if activation_fn is None:
        return "tanh" if activation is None else activation
    supported = ", ".join(f"nn.{module.__name__}" for module in ACTIVATION_NAMES)
    if isinstance(activation_fn, str):
        raise ValueError(
            f"policy_kwargs' activation_fn={activation_fn!r} is a string; SB3 takes a torch.nn class ({supported}). "
            "In an rl-zoo3 yml, plain YAML keeps it a string: write policy_kwargs as a Python string "
            f'("dict(activation_fn=nn.ReLU)"), or give the policy\'s own activation by name (activation: relu; one of '
            f"{sorted(POLICY_ACTIVATIONS)})."
        )
    name = ACTIVATION_NAMES.get(activation_fn) if isinstance(activation_fn, type) else None
    if name is None:
        raise ValueError(
            f"policy_kwargs' activation_fn={activation_fn!r} is not an activation of POPLIN's policy network; "
            f"the supported ones are {supported} (the classes themselves, not instances or subclasses), or by name "
            f"activation={sorted(POLICY_ACTIVATIONS)}."
        )
    if activation is not None and activation != name:
        raise ValueError(
            f"policy_kwargs give both activation={activation!r} and activation_fn={activation_fn!r}, which disagree: "
            "pass only one of them."
        )
    return name


class PolicyNetwork(nn.Module):
    """Deterministic MLP ``obs -> action in [-1, 1]`` (tanh or clipped linear output) with whitened inputs.

    Besides the usual forward pass, it evaluates many parameter vectors at once (:meth:`forward_batched`):
    POPLIN-P gives every CEM candidate its own perturbed weights ``theta + omega``, evaluated as batched matmuls.
    The flat parameter layout is ``[W_0, b_0, W_1, b_1, ...]`` with ``W_l`` of shape ``[out_l, in_l]`` (nn.Linear's).

    :param obs_dim: observation size
    :param act_dim: action size
    :param hidden_sizes: hidden layer widths
    :param activation: hidden activation name (``tanh``, ``relu``, ``silu``, ``elu``)
    :param ignored_obs: observation indices the network does not read (their whitened value is multiplied by zero)
    :param output: ``tanh`` (the last layer squashed into [-1, 1]) or ``clip`` (linear, clipped to [-1, 1]: the authors'
        code; its gradient is zero where the action is clipped)
    :param init: ``torch`` (PyTorch's default initialisation) or ``normc`` (the authors' code: each unit's incoming
        weights drawn normal and scaled to norm 1.0 in hidden layers and 0.01 in the output layer, biases zero, so the
        first policy's actions are near zero)
    """

    # buffers (registered in __init__), typed for the checker
    obs_mean: th.Tensor
    obs_std: th.Tensor
    obs_normalizer_fitted: th.Tensor
    obs_mask: th.Tensor

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden_sizes: list[int],
        activation: str = "tanh",
        ignored_obs: Sequence[int] = (),
        output: str = "tanh",
        init: str = "torch",
    ) -> None:
        super().__init__()
        if activation not in POLICY_ACTIVATIONS:
            raise ValueError(f"Unknown policy activation {activation!r}; choose one of {sorted(POLICY_ACTIVATIONS)}")
        if output not in POLICY_OUTPUTS:
            raise ValueError(f"Unknown policy output {output!r}; choose one of {POLICY_OUTPUTS}")
        if init not in POLICY_INITS:
            raise ValueError(f"Unknown policy init {init!r}; choose one of {POLICY_INITS}")
        sizes = [obs_dim, *hidden_sizes, act_dim]
        # A ModuleList (registered, state-dict keys ``linears.<i>.*``), read as the list of linear layers it is
        self.linears = cast(list[nn.Linear], nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])))
        self.activation = POLICY_ACTIVATIONS[activation]()
        self.output = output
        if init == "normc":
            self._normc_init()
        self.register_buffer("obs_mean", th.zeros(obs_dim))
        self.register_buffer("obs_std", th.ones(obs_dim))
        # A float flag (1: fitted), not a bool: every tensor of the state dict is a float that SB3's get/set_parameters
        # (and a user's random overwrite) can round-trip. Zips that hold the former bool load into it unchanged.
        self.register_buffer("obs_normalizer_fitted", th.tensor(0.0))
        self.ignored_obs = check_indices("ignored_obs", ignored_obs, obs_dim)
        # Not persistent: it follows from the constructor's argument.
        self.register_buffer("obs_mask", read_mask(obs_dim, self.ignored_obs), persistent=False)
        # (offset, out, in) of each weight and (offset, out) of each bias in the flat vector
        self._layout: list[tuple[int, int, int]] = []
        offset = 0
        for linear in self.linears:
            self._layout.append((offset, linear.out_features, linear.in_features))
            offset += linear.weight.numel() + linear.bias.numel()
        self.n_params = offset

    @th.no_grad()
    def _normc_init(self) -> None:
        """Each unit's incoming weights normal, scaled to the norm of :data:`NORMC_NORMS`; biases zero."""
        for i, linear in enumerate(self.linears):
            norm = NORMC_NORMS[1] if i == len(self.linears) - 1 else NORMC_NORMS[0]
            weight = th.randn_like(linear.weight)  # [out, in]: a row is one unit's incoming weights
            linear.weight.copy_(weight * (norm / weight.norm(dim=1, keepdim=True)))
            linear.bias.zero_()

    def squash(self, x: th.Tensor) -> th.Tensor:
        """The last layer's output as an action in [-1, 1]."""
        return th.tanh(x) if self.output == "tanh" else x.clamp(-1.0, 1.0)

    @th.no_grad()
    def set_obs_normalizer(self, mean: th.Tensor, std: th.Tensor) -> None:
        """Whiten inputs with the given statistics ``[obs_dim]`` each."""
        self.obs_mean.copy_(mean)
        self.obs_std.copy_(std)
        self.obs_normalizer_fitted.fill_(1.0)

    @th.no_grad()
    def fit_obs_normalizer(self, obs: th.Tensor, min_std: float = 1e-6) -> None:
        """Whiten inputs with the data's statistics (constant dimensions keep std 1).

        :param obs: ``[N, obs_dim]``
        """
        std = obs.std(dim=0, unbiased=False) if obs.shape[0] > 1 else th.ones_like(obs[0])
        self.set_obs_normalizer(obs.mean(dim=0), th.where(std < min_std, th.ones_like(std), std))

    def _whiten(self, obs: th.Tensor) -> th.Tensor:
        x = (obs - self.obs_mean) / self.obs_std
        return x * self.obs_mask if self.ignored_obs else x

    def forward(self, obs: th.Tensor) -> th.Tensor:
        """:param obs: ``[..., obs_dim]`` :return: ``[..., act_dim]`` in [-1, 1]"""
        x = self._whiten(obs)
        for linear in self.linears[:-1]:
            x = self.activation(linear(x))
        return self.squash(self.linears[-1](x))

    def flat_parameters(self) -> th.Tensor:
        """The parameters as one vector ``[n_params]`` in the layout of :meth:`forward_batched`."""
        return th.cat([t.reshape(-1) for linear in self.linears for t in (linear.weight, linear.bias)])

    @th.no_grad()
    def set_flat_parameters(self, flat: th.Tensor) -> None:
        """Write a vector ``[n_params]`` back into the layers."""
        for linear, (offset, out_f, in_f) in zip(self.linears, self._layout):
            linear.weight.copy_(flat[offset : offset + out_f * in_f].view(out_f, in_f))
            linear.bias.copy_(flat[offset + out_f * in_f : offset + out_f * in_f + out_f])

    def forward_batched(self, obs: th.Tensor, flat_params: th.Tensor, base: th.Tensor | None = None) -> th.Tensor:
        """Each of ``C`` parameter vectors on its own rows.

        :param obs: ``[C, P, obs_dim]``
        :param flat_params: ``[C, n_params]``: the parameters, or with ``base`` the offsets from it. Their dtype is the
            one the layers compute in (planning in bfloat16 passes them in bfloat16); the whitening is done in the
            observations' dtype, and the actions are returned in it
        :param base: shared parameters ``[n_params]`` in the dtype of ``flat_params`` (None: zero); candidate ``c`` runs
            ``base + flat_params[c]``. ``x @ (W + dW).T == x @ W.T + x @ dW.T``: the shared part is one matmul over all
            rows, so the sum of the ``[C, n_params]`` weights is never materialised (POPLIN-P sep would otherwise add
            ``theta`` to every candidate's noise at every imagined step)
        :return: ``[C, P, act_dim]`` in [-1, 1]
        """
        x = self._whiten(obs).to(flat_params.dtype)
        n_layers = len(self._layout)
        n_candidates, n_rows = x.shape[0], x.shape[1]
        for i, (offset, out_f, in_f) in enumerate(self._layout):
            weight = flat_params[:, offset : offset + out_f * in_f].view(-1, out_f, in_f)
            bias = flat_params[:, offset + out_f * in_f : offset + out_f * in_f + out_f].unsqueeze(1)
            if base is None:
                x = th.baddbmm(bias, x, weight.transpose(1, 2))  # [C, P, in] @ [C, in, out]
            else:
                base_weight = base[offset : offset + out_f * in_f].view(out_f, in_f)
                base_bias = base[offset + out_f * in_f : offset + out_f * in_f + out_f]
                # [C * P, in] @ [in, out]: the shared weights on every row at once, then each candidate's offsets.
                shared = th.addmm(base_bias, x.reshape(-1, in_f), base_weight.t()).view(n_candidates, n_rows, out_f)
                x = th.baddbmm(shared.add_(bias), x, weight.transpose(1, 2))
            x = self.activation(x) if i < n_layers - 1 else self.squash(x)
        return x.to(obs.dtype)


class POPLINPolicy(BasePolicy):
    """SB3 policy holding the distilled policy network.

    ``policy.predict(obs)`` runs the network alone (policy control): no model, no planning.
    Planning (MPC) lives in the algorithm (``model.predict``).

    ``policy.save(path)`` and ``MlpPolicy.load(path)`` ship the network without the model (SB3's policy-only
    save/load); the loaded policy predicts as the saved one, normaliser included.

    :param observation_space: a flat Box observation space
    :param action_space: a Box action space
    :param lr_schedule: learning rate schedule of the distillation optimiser
    :param net_arch: hidden layer widths, or SAC's ``dict(pi=[...], qf=[...])`` whose ``pi`` is used (there is no critic)
    :param activation: hidden activation name (``tanh``, ``relu``, ``silu``, ``elu``); None: ``tanh``, or the one of
        ``activation_fn``
    :param optimizer_class: optimiser of the distillation
    :param optimizer_kwargs: its keyword arguments (besides the learning rate, which is the algorithm's
        ``learning_rate``)
    :param normalize_images: no effect: observations are flat vectors (1-D Box), never images; kept for SB3's saved
        constructor arguments
    :param ignored_obs: observation indices the network does not read; the algorithms set it to the observed absolute
        positions of a locomotion env (``dynamics_ignore_positions``), as for the dynamics model
    :param activation_fn: SB3's way to give the activation: ``nn.Tanh``, ``nn.ReLU``, ``nn.SiLU`` or ``nn.ELU`` (the
        class), the same as ``activation`` by name
    :param features_extractor_class: only ``FlattenExtractor`` (SB3's default, what the network does anyway): the
        network is a plain MLP on flat vector observations because POPLIN-P evaluates every CEM candidate with its
        own perturbed flat weights in batched matmuls; transform observations with an observation wrapper instead
    :param features_extractor_kwargs: only None or empty (there is no features extractor to configure)
    :param share_features_extractor: only None (there is no critic and no features extractor to share)
    :param output: ``tanh`` (default) or ``clip``: how the last layer's output becomes an action (see
        :class:`PolicyNetwork`)
    :param init: ``torch`` (default) or ``normc``: the initialisation of the layers (see :class:`PolicyNetwork`)
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation: str | None = None,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        ignored_obs: Sequence[int] = (),
        activation_fn: type[nn.Module] | None = None,
        features_extractor_class: type[nn.Module] | None = None,
        features_extractor_kwargs: dict[str, Any] | None = None,
        share_features_extractor: bool | None = None,
        output: str = "tanh",
        init: str = "torch",
    ) -> None:
        # Before anything is built: the algorithms build the policy in _setup_model, so a refused option stops the
        # model's construction with this message.
        activation = resolve_policy_options(
            activation,
            activation_fn,
            features_extractor_class,
            features_extractor_kwargs,
            share_features_extractor,
            optimizer_kwargs,
        )
        super().__init__(
            observation_space,
            action_space,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            squash_output=True,
            normalize_images=normalize_images,
        )
        if isinstance(net_arch, dict):
            if "pi" not in net_arch:
                raise ValueError(
                    f"net_arch={net_arch!r}: as a dict it needs the policy's widths under 'pi' (e.g. dict(pi=[64, 64])); "
                    "POPLIN has no critic, so 'qf'/'vf' are not used. Or pass a list of widths."
                )
            net_arch = net_arch["pi"]
        self.net_arch = [64, 64] if net_arch is None else check_widths("policy_kwargs' net_arch", net_arch)
        self.activation_name = activation
        self.init = init
        obs_dim = int(spaces.flatdim(observation_space))
        act_dim = int(spaces.flatdim(action_space))
        self.actor = PolicyNetwork(obs_dim, act_dim, self.net_arch, activation, ignored_obs, output, init)
        # SB3 types optimizer_class as torch's Optimizer base, whose constructor takes no lr: hence the ignore
        self.optimizer = self.optimizer_class(self.actor.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)  # type: ignore[call-arg]

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            net_arch=self.net_arch,
            activation=self.activation_name,
            lr_schedule=self._dummy_schedule,  # the optimiser is not needed to predict with a policy loaded alone
            optimizer_class=self.optimizer_class,
            optimizer_kwargs=self.optimizer_kwargs,
            ignored_obs=list(self.actor.ignored_obs),
            output=self.actor.output,
            init=self.init,
        )
        return data

    def forward(self, obs: th.Tensor, deterministic: bool = True) -> th.Tensor:
        return self._predict(obs, deterministic)

    def _predict(self, observation: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        # The distilled policy is deterministic; exploration comes from planning, not from this network.
        assert isinstance(observation, th.Tensor), "a Box observation space gives tensors (Dict spaces are refused)"
        return self.actor(observation.float().flatten(start_dim=1))


class PlannerOnlyPolicy(POPLINPolicy):
    """The policy of the planning baselines (PETS, random shooting), which neither train it nor act with it.

    SB3 algorithms own a policy (it scales actions and anchors the zip's layout); the baselines plan without one, so it
    is kept as small as possible (no hidden layer).

    :param observation_space: see :class:`POPLINPolicy`
    :param action_space: the action space
    :param lr_schedule: the learning rate schedule
    :param net_arch: hidden widths (default none)
    :param kwargs: see :class:`POPLINPolicy`
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | None = None,
        **kwargs: Any,
    ) -> None:
        net_arch = [] if net_arch is None else net_arch
        super().__init__(observation_space, action_space, lr_schedule, net_arch=net_arch, **kwargs)
