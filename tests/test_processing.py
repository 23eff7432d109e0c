"""What the dynamics model reads and predicts (sb3_poplin.common.processing), and PETS' Cheetah as PETS built it."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th

import sb3_poplin.envs  # noqa: F401  (registers the sb3_poplin/ ids)
from sb3_poplin import PETS, POPLIN_P
from sb3_poplin.common.distillation import DistillationData, ParameterAverage
from sb3_poplin.common.dynamics import ProbabilisticEnsemble
from sb3_poplin.common.policies import PolicyNetwork
from sb3_poplin.common.processing import AngleAndVelocityProcessing, DeltaProcessing, DynamicsProcessing
from sb3_poplin.common.rollout import ModelRollout
from sb3_poplin.envs import PETS_HALF_CHEETAH_ID, PETS_RESET_NOISE_SCALE
from sb3_poplin.rewards import get_processing

TINY = dict(
    population_size=8,
    n_elites=2,
    cem_iterations=1,
    horizon=2,
    ensemble_size=2,
    dynamics_net_arch=[16],
    dynamics_epochs=1,
    dynamics_min_updates=0,
    learning_starts=20,
    device="cpu",
)


def cheetah_transitions(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` real transitions (obs, action, next_obs) of PETS' Cheetah under random actions."""
    env = gym.make(PETS_HALF_CHEETAH_ID)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    observations, actions, next_observations = [], [], []
    for _ in range(n):
        action = env.action_space.sample()
        next_obs, _, terminated, truncated, _ = env.step(action)
        observations.append(obs)
        actions.append(action)
        next_observations.append(next_obs)
        obs = env.reset()[0] if terminated or truncated else next_obs
    env.close()
    return np.array(observations), np.array(actions), np.array(next_observations)


def test_pets_cheetah_processing_is_pets_own() -> None:
    obs, _, next_obs = (th.as_tensor(a, dtype=th.float64) for a in cheetah_transitions(50))
    processing = get_processing(PETS_HALF_CHEETAH_ID, 18)
    assert isinstance(processing, AngleAndVelocityProcessing)
    # PETS reads [obs[1], sin(obs[2]), cos(obs[2]), obs[3:]] (18 numbers; the order of an MLP's inputs is immaterial).
    inputs = processing.model_input(obs)
    expected = th.cat([obs[:, 1:2], obs[:, 3:], th.sin(obs[:, 2:3]), th.cos(obs[:, 2:3])], dim=1)
    assert th.equal(inputs, expected)
    assert processing.input_dim(18) == 18
    # Target: the step's velocity as it is, the rest as a change.
    target = processing.target(obs, next_obs)
    assert th.equal(target[:, 0], next_obs[:, 0])
    assert th.equal(target[:, 1:], next_obs[:, 1:] - obs[:, 1:])
    # Prediction: the change is added to the RAW observation (not to the processed input, whose entries differ).
    prediction = th.randn_like(target)
    next_from_prediction = processing.next_observation(obs, prediction)
    assert th.equal(next_from_prediction[:, 0], prediction[:, 0])
    assert th.equal(next_from_prediction[:, 1:], obs[:, 1:] + prediction[:, 1:])
    th.testing.assert_close(processing.next_observation(obs, target), next_obs, rtol=0, atol=1e-12)


def test_default_processing_is_deltas_and_wrapped_envs_get_it() -> None:
    assert get_processing("HalfCheetah-v5", 17) == DeltaProcessing()
    assert get_processing(None, 3) == DeltaProcessing()
    # A wrapper that changes the observation size is not the env the registered processing was written for.
    assert get_processing(PETS_HALF_CHEETAH_ID, 20) == DeltaProcessing()
    obs, next_obs = th.randn(4, 3), th.randn(4, 3)
    processing = DeltaProcessing()
    assert processing.is_identity and th.equal(processing.target(obs, next_obs), next_obs - obs)
    assert th.equal(processing.next_observation(obs, next_obs - obs), obs + (next_obs - obs))


def test_processing_refuses_an_angle_that_is_not_read() -> None:
    with pytest.raises(ValueError, match="both angles and not read"):
        AngleAndVelocityProcessing(angles=(1,), not_read=(1,))


class _ConstantEnsemble(ProbabilisticEnsemble):
    """An ensemble whose every member predicts ``prediction`` whatever it reads, and records what it read."""

    def __init__(self, in_dim: int, prediction: th.Tensor) -> None:
        super().__init__(in_dim, prediction.shape[0], n_members=2, hidden_sizes=[4])
        self.prediction = prediction
        self.seen: list[th.Tensor] = []

    def forward_elites_mean(self, inputs: th.Tensor) -> th.Tensor:
        self.seen.append(inputs.clone())
        return self.prediction.expand(inputs.shape[0], -1)


def test_rollout_reads_processed_inputs_and_adds_changes_to_raw_observations() -> None:
    processing = AngleAndVelocityProcessing(angles=(2,), absolute=(0,), not_read=(0,))
    prediction = th.tensor([3.0, 0.5, 0.25, -1.0])
    model = _ConstantEnsemble(processing.input_dim(4) + 1, prediction)
    reward = lambda obs, action, next_obs: next_obs[..., 0]  # noqa: E731
    rollout = ModelRollout(model, reward, None, 1, -th.ones(1), th.ones(1), processing=processing)
    obs = th.tensor([[7.0, 1.0, 0.3, 2.0]])
    action = th.tensor([[0.5]])
    next_obs, _ = rollout.predict_next(obs.unsqueeze(0), action.unsqueeze(0))
    assert th.equal(model.seen[0], th.tensor([[1.0, 2.0, float(np.sin(0.3)), float(np.cos(0.3)), 0.5]]))
    assert th.equal(next_obs[0], th.tensor([[3.0, 1.5, 0.55, 1.0]]))
    # The planner's return is the reward of that next observation.
    returns = rollout.evaluate(obs, 1, lambda t, states: action.expand(*states.shape[:-1], 1))
    assert returns.item() == 3.0


def test_model_on_pets_cheetah_trains_on_pets_targets_and_saves_its_processing(tmp_path) -> None:
    model = PETS("MlpPolicy", PETS_HALF_CHEETAH_ID, seed=0, **TINY)
    assert isinstance(model.processing, AngleAndVelocityProcessing)
    assert model.dynamics.in_dim == 18 + 6  # PETS' 24 inputs
    model.learn(30)
    data = model.replay_buffer.all_transitions()
    obs = th.as_tensor(data["observations"], dtype=th.float32)
    next_obs = th.as_tensor(data["next_observations"], dtype=th.float32)
    actions, rewards = (th.as_tensor(data[key], dtype=th.float32) for key in ("actions", "rewards"))
    inputs, targets = model.engine.dynamics_dataset(obs, actions, next_obs, rewards)
    assert th.equal(targets[:, 0], next_obs[:, 0])
    assert th.equal(targets[:, 1:], next_obs[:, 1:] - obs[:, 1:])
    assert th.equal(inputs[:, :18], model.processing.model_input(obs))
    model.save(tmp_path / "pets.zip")
    loaded = PETS.load(tmp_path / "pets.zip")
    assert loaded.processing == model.processing and loaded.dynamics.in_dim == 24
    observation = data["observations"][5]
    assert np.array_equal(
        model.predict(observation, deterministic=True)[0], loaded.predict(observation, deterministic=True)[0]
    )


class HalfAngle(DynamicsProcessing):
    """A user's processing (module level, so it pickles): reads obs[1] as an angle too."""

    name = "half-angle"

    def model_input(self, obs: th.Tensor) -> th.Tensor:
        return th.cat([obs, th.sin(obs[..., 1:2])], dim=-1)


@pytest.mark.parametrize("spec", [HalfAngle(), "tests.test_processing:HalfAngle"])
def test_users_processing(spec, tmp_path) -> None:
    model = POPLIN_P("MlpPolicy", "Pendulum-v1", seed=0, dynamics_processing=spec, **TINY)
    assert isinstance(model.processing, HalfAngle) and model.dynamics.in_dim == 3 + 1 + 1
    model.learn(25)
    model.save(tmp_path / "p.zip")
    loaded = POPLIN_P.load(tmp_path / "p.zip")
    assert isinstance(loaded.processing, HalfAngle)
    obs = np.array([0.5, 0.8, 0.1], dtype=np.float32)
    assert np.array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])


@pytest.mark.parametrize(
    "spec, match",
    [
        (3, "dynamics_processing must be"),
        ("tests.test_processing:nothing_here", "cannot be imported"),
        ("tests.test_processing:TINY", "not a DynamicsProcessing"),
    ],
)
def test_bad_processing_is_refused_with_what_to_pass(spec, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        POPLIN_P("MlpPolicy", "Pendulum-v1", dynamics_processing=spec, **TINY)


def test_pets_cheetah_resets_with_pets_gaussian_noise() -> None:
    env = gym.make(PETS_HALF_CHEETAH_ID).unwrapped
    position_noise, velocity_noise = [], []
    for seed in range(300):
        env.reset(seed=seed)
        position_noise.append(env.data.qpos - env.init_qpos)
        velocity_noise.append(env.data.qvel - env.init_qvel)
    for noise in (np.array(position_noise), np.array(velocity_noise)):
        assert abs(noise.std() / PETS_RESET_NOISE_SCALE - 1.0) < 0.05
        # Gaussian, not HalfCheetah-v5's uniform positions: about a third of the draws lie beyond one std.
        assert 0.25 < np.mean(np.abs(noise) > PETS_RESET_NOISE_SCALE) < 0.40
    # The first observation's velocity entry is the root's velocity at the reset state.
    obs, _ = env.reset(seed=1)
    assert obs[0] == env.data.qvel[0]
    env.close()
    other = gym.make(PETS_HALF_CHEETAH_ID, reset_noise_scale=0.1).unwrapped
    other.reset(seed=0)
    assert np.abs(other.data.qvel - other.init_qvel).max() > 0.05
    other.close()


@pytest.mark.parametrize("update", ["add", "set"])
def test_avg_updates(update: str) -> None:
    th.manual_seed(0)
    policy = PolicyNetwork(3, 1, [4])
    warm_up = th.randn(50, 3) * 4.0
    avg = ParameterAverage(update)
    avg.distill(policy, None, DistillationData(warm_up, th.zeros(50, 1), th.zeros(0, policy.n_params)))  # type: ignore[arg-type]
    theta, mean, std = policy.flat_parameters().detach().clone(), policy.obs_mean.clone(), policy.obs_std.clone()
    planned = th.randn(20, 3) + 10.0
    noises = th.randn(7, policy.n_params)
    avg.distill(policy, None, DistillationData(planned, th.zeros(20, 1), noises))  # type: ignore[arg-type]
    if update == "add":  # the paper: theta + mean(omega), the whitening of the warm-up kept
        th.testing.assert_close(policy.flat_parameters(), theta + noises.mean(0))
        assert th.equal(policy.obs_mean, mean) and th.equal(policy.obs_std, std)
    else:  # the authors' code: mean(omega), the whitening refitted on the planned states
        th.testing.assert_close(policy.flat_parameters(), noises.mean(0))
        th.testing.assert_close(policy.obs_mean, planned.mean(0))
    with pytest.raises(ValueError, match="update must be one of"):
        ParameterAverage("replace")
