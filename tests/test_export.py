"""Export of the distilled policy: the exported files act as ``model.policy.predict(obs, deterministic=True)``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import pytest
import torch as th
from gymnasium import spaces

from sb3_poplin import PETS, POPLIN_A, POPLIN_P, export_policy
from sb3_poplin.common.policies import POPLINPolicy


def float32_tolerance(action_space: spaces.Box) -> float:
    """A few float32 ulps of the largest action bound: the exported graph and predict round differently only in the
    order of the matmul's additions."""
    scale = float(max(np.max(np.abs(action_space.low)), np.max(np.abs(action_space.high)), 1.0))
    return 8 * float(np.finfo(np.float32).eps) * scale


def observations(space: spaces.Box, n: int, seed: int = 0) -> np.ndarray:
    """A batch spread well beyond the normaliser's centre (the whitening must matter)."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, *space.shape)) * 3.0 + 1.0).astype(np.float32)


@pytest.fixture(scope="module")
def trained_poplin_p() -> POPLIN_P:
    """POPLIN-P after one distillation: fitted observation normaliser, trained weights."""
    from tests.conftest import TINY

    model = POPLIN_P("MlpPolicy", "Pendulum-v1", seed=0, **TINY)
    model.learn(60)
    assert bool(model.policy.actor.obs_normalizer_fitted)
    return model


def asymmetric_policy() -> POPLINPolicy:
    """A policy with a 2-D action box that is neither symmetric nor unit, two relu layers, a fitted normaliser."""
    th.manual_seed(1)
    observation_space = spaces.Box(-np.inf, np.inf, (5,), np.float32)
    action_space = spaces.Box(np.array([-1.0, 0.5], np.float32), np.array([2.0, 3.0], np.float32))
    policy = POPLINPolicy(observation_space, action_space, lambda _: 1e-3, net_arch=[16, 8], activation="relu")
    policy.actor.fit_obs_normalizer(th.as_tensor(observations(observation_space, 200, seed=1)))
    return policy


def onnx_actions(path: Path, obs: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["observation"]
    return session.run(["action"], {"observation": obs})[0]


def test_onnx_and_torchscript_act_as_policy_predict(trained_poplin_p: POPLIN_P, tmp_path: Path) -> None:
    model = trained_poplin_p
    obs = observations(model.observation_space, 257)
    expected, _ = model.policy.predict(obs, deterministic=True)
    onnx_path = export_policy(model, tmp_path / "policy.onnx")
    actions = onnx_actions(onnx_path, obs)
    assert actions.shape == expected.shape and actions.dtype == np.float32
    tolerance = float32_tolerance(model.action_space)
    np.testing.assert_allclose(actions, expected, rtol=0, atol=tolerance)
    # any batch size, one observation included
    np.testing.assert_allclose(onnx_actions(onnx_path, obs[:1]), expected[:1], rtol=0, atol=tolerance)

    scripted = th.jit.load(str(export_policy(model, tmp_path / "policy.pt")))
    with th.no_grad():
        # the same torch kernels as predict: equal to the bit
        np.testing.assert_array_equal(scripted(th.as_tensor(obs)).numpy(), expected)
        # (against predict on the same batch: matmul kernels, hence the last bit, depend on the batch size)
        np.testing.assert_array_equal(
            scripted(th.as_tensor(obs[:3])).numpy(), model.policy.predict(obs[:3], deterministic=True)[0]
        )


def test_action_scaling_to_asymmetric_bounds(tmp_path: Path) -> None:
    policy = asymmetric_policy()
    obs = observations(policy.observation_space, 100, seed=2)  # type: ignore[arg-type]
    expected, _ = policy.predict(obs, deterministic=True)
    assert np.all(expected[:, 1] >= 0.5) and np.all(expected[:, 1] <= 3.0)
    actions = onnx_actions(export_policy(policy, tmp_path / "policy.bin", format="onnx"), obs)
    np.testing.assert_allclose(actions, expected, rtol=0, atol=float32_tolerance(policy.action_space))  # type: ignore[arg-type]
    scripted = th.jit.load(str(export_policy(policy, tmp_path / "policy.ts")))
    with th.no_grad():
        np.testing.assert_array_equal(scripted(th.as_tensor(obs)).numpy(), expected)


def test_the_export_is_a_snapshot(tiny_kwargs: dict[str, Any], tmp_path: Path) -> None:
    model = POPLIN_A("MlpPolicy", "Pendulum-v1", seed=0, **tiny_kwargs)
    obs = observations(model.observation_space, 8)
    expected, _ = model.policy.predict(obs, deterministic=True)
    scripted = th.jit.load(str(export_policy(model, tmp_path / "policy.pt")))
    with th.no_grad():
        for parameter in model.policy.actor.parameters():
            parameter.add_(1.0)  # later training of the model does not reach the exported file
        np.testing.assert_array_equal(scripted(th.as_tensor(obs)).numpy(), expected)


def test_refuses_what_it_cannot_export(tiny_kwargs: dict[str, Any], tmp_path: Path) -> None:
    model = POPLIN_A("MlpPolicy", "Pendulum-v1", **tiny_kwargs)
    with pytest.raises(ValueError, match="suffix"):
        export_policy(model, tmp_path / "policy.bin")
    with pytest.raises(ValueError, match="format must be one of"):
        export_policy(model, tmp_path / "policy.onnx", format="tflite")
    with pytest.raises(ValueError, match="no distilled policy"):
        export_policy(PETS("MlpPolicy", "Pendulum-v1", **tiny_kwargs), tmp_path / "policy.onnx")
    with pytest.raises(TypeError, match="POPLIN_A/POPLIN_P"):
        export_policy(object(), tmp_path / "policy.onnx")
