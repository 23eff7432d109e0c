"""The ``policy_kwargs`` that SB3 users give SB3's policies, passed to POPLIN's: each one works, or the model's
construction stops with a ValueError that says why and what to use instead (never Python's "unexpected keyword")."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
import yaml
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor
from torch import nn

from sb3_poplin import PETS, POPLIN_A, POPLIN_P, RS
from sb3_poplin.common.policies import POLICY_ACTIVATIONS
from sb3_poplin.poplin_p.policies import MlpPolicy as POPLINPMlpPolicy

ENV_ID = "Pendulum-v1"
ALGOS = [POPLIN_A, POPLIN_P, PETS, RS]


class _LinearExtractor(BaseFeaturesExtractor):
    """A features extractor with layers of its own, as an SB3 user would write one."""

    def __init__(self, observation_space: spaces.Box, features_dim: int = 8) -> None:
        super().__init__(observation_space, features_dim)
        self.linear = nn.Linear(int(np.prod(observation_space.shape)), features_dim)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.linear(observations)


def build(algo: type, policy_kwargs: dict[str, Any], tiny_kwargs: dict[str, Any], **kwargs: Any) -> Any:
    return algo("MlpPolicy", ENV_ID, policy_kwargs=policy_kwargs, seed=0, **tiny_kwargs, **kwargs)


def observations(n: int) -> np.ndarray:
    env = gym.make(ENV_ID)
    return np.stack([env.reset(seed=seed)[0] for seed in range(n)])


# ---------------------------------------------------------------- activation_fn


@pytest.mark.parametrize("name", sorted(POLICY_ACTIVATIONS))
def test_activation_fn_maps_to_the_policys_activation(name: str, tiny_kwargs: dict[str, Any]) -> None:
    module = POLICY_ACTIVATIONS[name]
    model = build(POPLIN_P, dict(activation_fn=module), tiny_kwargs)
    assert type(model.policy.actor.activation) is module
    assert model.policy.activation_name == name
    # the same activation given both ways is accepted
    assert build(POPLIN_P, dict(activation_fn=module, activation=name), tiny_kwargs).policy.activation_name == name


def test_default_activation_is_tanh(tiny_kwargs: dict[str, Any]) -> None:
    assert type(build(POPLIN_A, {}, tiny_kwargs).policy.actor.activation) is nn.Tanh


def test_rl_zoo_policy_kwargs_string_with_activation_fn(tmp_path: Path) -> None:
    """rl-zoo3 evaluates a ``policy_kwargs`` string, so ``nn.ReLU`` arrives as torch's class."""
    from sb3_poplin.zoo import register
    from sb3_poplin.zoo.exp_manager import PoplinExperimentManager

    register()
    entry = dict(n_timesteps=100, policy="MlpPolicy", population_size=8, n_elites=2, horizon=2, cem_iterations=1)
    entry.update(ensemble_size=2, dynamics_net_arch=[8], policy_kwargs="dict(activation_fn=nn.ReLU, net_arch=[16])")
    config = tmp_path / "relu.yml"
    config.write_text(yaml.safe_dump({ENV_ID: entry}))
    manager = PoplinExperimentManager(argparse.Namespace(), "poplin_p", ENV_ID, str(tmp_path), config=str(config), verbose=0)
    model, _ = manager.setup_experiment()
    try:
        assert type(model.policy.actor.activation) is nn.ReLU and model.policy.net_arch == [16]
    finally:
        model.env.close()


def test_relu_policy_has_relu_hidden_layers_and_survives_save_load(tiny_kwargs: dict[str, Any], tmp_path: Path) -> None:
    model = build(POPLIN_P, dict(activation_fn=nn.ReLU, net_arch=[16, 16]), tiny_kwargs).learn(120)
    actor = model.policy.actor
    assert float(actor.obs_normalizer_fitted) == 1.0, "the policy was distilled (trained weights, fitted normaliser)"
    # The hidden layers apply ReLU, in the forward pass and in POPLIN-P's batched evaluation of candidates.
    obs = th.as_tensor(observations(8))
    hidden = (obs - actor.obs_mean) / actor.obs_std
    for linear in actor.linears[:-1]:
        hidden = th.relu(linear(hidden))
    expected = th.tanh(actor.linears[-1](hidden))
    with th.no_grad():
        th.testing.assert_close(actor(obs), expected)
        batched = actor.forward_batched(obs.unsqueeze(0), actor.flat_parameters().unsqueeze(0))
        th.testing.assert_close(batched[0], expected)
        tanh_hidden = (obs - actor.obs_mean) / actor.obs_std
        for linear in actor.linears[:-1]:
            tanh_hidden = th.tanh(linear(tanh_hidden))
        assert not th.allclose(th.tanh(actor.linears[-1](tanh_hidden)), expected), "ReLU and tanh would look alike"

    obs = observations(4)
    mpc_actions, _ = model.predict(obs, deterministic=True)
    policy_actions, _ = model.policy.predict(obs, deterministic=True)
    model.save(tmp_path / "relu.zip")
    loaded = POPLIN_P.load(tmp_path / "relu.zip")
    assert type(loaded.policy.actor.activation) is nn.ReLU
    assert loaded.policy_kwargs["activation_fn"] is nn.ReLU
    assert np.array_equal(loaded.policy.predict(obs, deterministic=True)[0], policy_actions)
    assert np.array_equal(loaded.predict(obs, deterministic=True)[0], mpc_actions)
    # the policy saved alone keeps its activation by name
    model.policy.save(tmp_path / "policy.pth")
    alone = POPLINPMlpPolicy.load(tmp_path / "policy.pth")
    assert type(alone.actor.activation) is nn.ReLU
    assert np.array_equal(alone.predict(obs, deterministic=True)[0], policy_actions)


@pytest.mark.parametrize(
    ("activation_fn", "message"),
    [
        (nn.GELU, r"supported ones are nn.Tanh, nn.ReLU, nn.SiLU, nn.ELU"),
        (nn.ReLU(), r"not instances"),
        (type("MyReLU", (nn.ReLU,), {}), r"not instances or subclasses"),
        ("nn.ReLU", r"is a string.*dict\(activation_fn=nn.ReLU\).*activation: relu"),
    ],
)
def test_unsupported_activation_fn_is_refused_with_the_supported_list(
    activation_fn: Any, message: str, tiny_kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match=message):
        build(POPLIN_P, dict(activation_fn=activation_fn), tiny_kwargs)


def test_activation_and_activation_fn_that_disagree_are_refused(tiny_kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"activation='tanh' and activation_fn=.*ReLU.*pass only one"):
        build(POPLIN_A, dict(activation="tanh", activation_fn=nn.ReLU), tiny_kwargs)


# ---------------------------------------------------------------- features extractor


@pytest.mark.parametrize("algo", ALGOS)
def test_features_extractor_class_is_refused_pointing_to_observation_wrappers(algo: type, tiny_kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"features_extractor_class=.*plain MLP on flat vector.*FlattenObservation"):
        build(algo, dict(features_extractor_class=_LinearExtractor), tiny_kwargs)


def test_features_extractor_kwargs_are_refused(tiny_kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"features_extractor_kwargs=.*no features extractor.*FlattenObservation"):
        build(POPLIN_P, dict(features_extractor_kwargs=dict(features_dim=8)), tiny_kwargs)
    with pytest.raises(ValueError, match=r"features_extractor_class="):
        build(
            POPLIN_P,
            dict(features_extractor_class=_LinearExtractor, features_extractor_kwargs=dict(features_dim=8)),
            tiny_kwargs,
        )


def test_sb3s_default_flatten_extractor_is_what_the_network_does(tiny_kwargs: dict[str, Any]) -> None:
    default = build(POPLIN_P, {}, tiny_kwargs)
    flatten = build(POPLIN_P, dict(features_extractor_class=FlattenExtractor, features_extractor_kwargs={}), tiny_kwargs)
    obs = observations(4)
    assert np.array_equal(flatten.policy.predict(obs)[0], default.policy.predict(obs)[0])


@pytest.mark.parametrize("share", [True, False])
def test_share_features_extractor_is_refused(share: bool, tiny_kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"share_features_extractor=.*no critic and no features extractor"):
        build(POPLIN_A, dict(share_features_extractor=share), tiny_kwargs)


# ---------------------------------------------------------------- optimizer, net_arch, normalize_images


def test_optimizer_class_and_kwargs_drive_the_distillation(tiny_kwargs: dict[str, Any], tmp_path: Path) -> None:
    sgd = dict(optimizer_class=th.optim.SGD, optimizer_kwargs=dict(momentum=0.9))
    model = build(POPLIN_P, sgd, tiny_kwargs, learning_rate=0.01)
    optimizer = model.policy.optimizer
    assert type(optimizer) is th.optim.SGD and optimizer.param_groups[0]["momentum"] == 0.9
    before = model.policy.actor.flat_parameters().clone()
    model.learn(120)
    assert not th.equal(model.policy.actor.flat_parameters(), before), "the distillation did not move the weights"
    # SGD with momentum keeps one momentum buffer per parameter once it has stepped
    assert all("momentum_buffer" in optimizer.state[param] for param in model.policy.actor.parameters())
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01)
    model.save(tmp_path / "sgd.zip")
    loaded = POPLIN_P.load(tmp_path / "sgd.zip")
    assert type(loaded.policy.optimizer) is th.optim.SGD and loaded.policy.optimizer.param_groups[0]["momentum"] == 0.9


def test_optimizer_kwargs_with_a_learning_rate_are_refused(tiny_kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"optimizer_kwargs=.*'lr'.*learning_rate"):
        build(POPLIN_P, dict(optimizer_kwargs=dict(lr=1e-2)), tiny_kwargs)


@pytest.mark.parametrize(
    ("net_arch", "widths"),
    [([8, 8], [8, 8]), ([], []), (dict(pi=[12], qf=[64, 64]), [12]), (dict(pi=[4, 4], vf=[64]), [4, 4])],
)
def test_net_arch_as_a_list_or_a_dict_with_pi(net_arch: Any, widths: list[int], tiny_kwargs: dict[str, Any]) -> None:
    model = build(POPLIN_A, dict(net_arch=net_arch), tiny_kwargs)
    assert model.policy.net_arch == widths
    assert [linear.out_features for linear in model.policy.actor.linears] == [*widths, 1]


@pytest.mark.parametrize(("net_arch", "message"), [(dict(qf=[64, 64]), "'pi'"), ([8, 0], "positive integers")])
def test_net_arch_without_policy_widths_is_refused(net_arch: Any, message: str, tiny_kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=message):
        build(POPLIN_P, dict(net_arch=net_arch), tiny_kwargs)


def test_normalize_images_has_no_effect_on_flat_observations(tiny_kwargs: dict[str, Any]) -> None:
    models = [build(POPLIN_P, dict(normalize_images=value), tiny_kwargs) for value in (True, False)]
    obs = observations(4)
    assert np.array_equal(models[0].policy.predict(obs)[0], models[1].policy.predict(obs)[0])
    assert [model.policy.normalize_images for model in models] == [True, False]
