"""Stable-Baselines3's contracts, as SAC keeps them: parameters, predict, policy-only save/load, spaces, arguments, data
checks, env settings and wrappers, replay-buffer memory and files, loading foreign zips (issue 11)."""

from __future__ import annotations

import os
import pickle
import warnings
import zipfile
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from gymnasium.wrappers import FlattenObservation, FrameStackObservation, RescaleAction
from stable_baselines3.common import save_util
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize

from sb3_poplin import PETS, POPLIN_A, POPLIN_P
from sb3_poplin.common.buffers import PlanningReplayBuffer
from sb3_poplin.common.env_binding import raw_transition, train_freq_for
from sb3_poplin.poplin_p.policies import MlpPolicy as POPLINPMlpPolicy

ALGOS = [POPLIN_A, POPLIN_P]
DATA = os.path.join(os.path.dirname(__file__), "data")


def pendulum_reward(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
    """Pendulum-v1's reward on the first three observation entries."""
    theta = th.atan2(obs[..., 1], obs[..., 0])
    return -(theta**2 + 0.1 * obs[..., 2] ** 2 + 0.001 * action[..., 0].clamp(-2.0, 2.0) ** 2)


# ---------------------------------------------------------------------------------------------------- 1. parameters
def _module_parameters(model: Any) -> dict[str, dict[str, th.Tensor]]:
    return {name: params for name, params in model.get_parameters().items() if "optim" not in name}


def test_every_saved_tensor_round_trips_random_values(tiny_kwargs: dict[str, Any], tmp_path) -> None:
    # A learned termination and fewer elite members than members: every kind of saved bookkeeping is there.
    tiny_kwargs.update(ensemble_size=3, n_elite_members=2, termination_fn="learned")
    model = POPLIN_P("MlpPolicy", "InvertedPendulum-v5", seed=0, **tiny_kwargs).learn(120)
    assert model.termination_model is not None and float(model.termination_model.trained) == 1.0
    original = _module_parameters(model)
    for name, params in original.items():
        for key, tensor in params.items():
            assert tensor.is_floating_point(), f"{name}.{key} is {tensor.dtype}: SB3 users overwrite it with rand_like"
    random_params = {name: {key: th.rand_like(t) for key, t in params.items()} for name, params in original.items()}
    model.set_parameters(random_params, exact_match=False)
    after = _module_parameters(model)
    for name, params in random_params.items():
        for key, tensor in params.items():
            assert th.equal(after[name][key], tensor), f"{name}.{key} did not keep the values set"
    # The model still plans (the elites named by a random mask are valid members) and survives save/load unchanged.
    obs = gym.make("InvertedPendulum-v5").reset(seed=0)[0]
    action, _ = model.predict(obs, deterministic=True)
    assert np.all(np.isfinite(action))
    model.save(tmp_path / "random.zip")
    loaded = POPLIN_P.load(tmp_path / "random.zip")
    for name, params in _module_parameters(loaded).items():
        for key, tensor in params.items():
            assert th.equal(tensor, after[name][key]), f"{name}.{key} changed through save/load"
    assert th.equal(loaded.dynamics.elite_idx, model.dynamics.elite_idx)
    assert np.array_equal(loaded.predict(obs, deterministic=True)[0], action)


def test_zip_saved_by_sb3_poplin_0_1_still_loads() -> None:
    # Saved by the code before the state dicts became float-only (bool flags, integer elite indices): POPLIN_P on
    # InvertedPendulum-v5, ensemble_size=3, n_elite_members=2, termination_fn="learned", 150 steps.
    path = os.path.join(DATA, "legacy_poplin_p_0.1.0.zip")
    with zipfile.ZipFile(path) as archive, archive.open("dynamics.pth") as file:
        legacy_dynamics = th.load(file, weights_only=True)
    assert legacy_dynamics["elite_idx"].dtype == th.long, "the fixture must hold the old layout"
    model = POPLIN_P.load(path)
    assert th.equal(model.dynamics.elite_idx, legacy_dynamics["elite_idx"])
    assert not th.equal(model.dynamics.elite_idx, th.arange(2)), "the fixture's elites differ from the default ones"
    assert float(model.policy.actor.obs_normalizer_fitted) == 1.0
    assert model.termination_model is not None and float(model.termination_model.trained) == 1.0
    for params in _module_parameters(model).values():
        assert all(t.is_floating_point() for t in params.values())
    obs = np.zeros(4, dtype=np.float32)
    assert np.all(np.isfinite(model.predict(obs, deterministic=True)[0]))
    # Options added since train and plan as the zip did, not with today's defaults.
    assert model.dynamics_min_updates == 0 and model.pessimism == 0.0 and model.cem_mirrored is False
    assert model.dynamics_ignore_positions is False
    assert model.dynamics_optimizer_kwargs == {"fused": False} and not model.dynamics.optimizer.param_groups[0]["fused"]


# ---------------------------------------------------------------------------------------------------- 2. predict
@pytest.mark.parametrize("algo", [POPLIN_A, POPLIN_P, PETS])
def test_deterministic_mpc_predict_is_repeatable_and_survives_save_load(
    algo: type, tiny_kwargs: dict[str, Any], tmp_path
) -> None:
    model = algo("MlpPolicy", "Pendulum-v1", seed=0, **tiny_kwargs).learn(60)
    obs = np.stack([gym.make("Pendulum-v1").reset(seed=s)[0] for s in range(2)])
    first, state = model.predict(obs, deterministic=True)
    again, state_again = model.predict(obs, deterministic=True)
    assert np.array_equal(first, again) and np.array_equal(state[0], state_again[0])
    # With a state (warm start), as evaluate_policy threads it.
    step, _ = model.predict(obs, state=state, episode_start=np.zeros(2, bool), deterministic=True)
    assert np.array_equal(step, model.predict(obs, state=state, episode_start=np.zeros(2, bool), deterministic=True)[0])
    # Stochastic planning stays stochastic, and deterministic calls do not move its generator.
    # (compared on the plans, which differ even where both actions are clipped to the same bound)
    model.set_random_seed(3)
    stochastic = [model.predict(obs)[1][0] for _ in range(2)]
    assert not np.array_equal(stochastic[0], stochastic[1])
    model.set_random_seed(3)
    model.predict(obs, deterministic=True)
    assert np.array_equal(model.predict(obs)[1][0], stochastic[0])
    model.save(tmp_path / "m.zip")
    loaded = algo.load(tmp_path / "m.zip")
    assert np.array_equal(loaded.predict(obs, deterministic=True)[0], first)
    assert np.array_equal(loaded.predict(obs, state=state, episode_start=np.zeros(2, bool), deterministic=True)[0], step)


def test_noise_table_plans_are_seeded_and_survive_save_load(tiny_kwargs: dict[str, Any], tmp_path) -> None:
    model = POPLIN_P("MlpPolicy", "Pendulum-v1", seed=0, cem_noise_table=1 << 16, **tiny_kwargs).learn(60)
    table = model.planner.optimizer._noise_table
    assert table is not None and table.numel() == 1 << 16, "the plans of the run read the table"
    obs = np.stack([gym.make("Pendulum-v1").reset(seed=s)[0] for s in range(2)])
    first, _ = model.predict(obs, deterministic=True)
    model.set_random_seed(3)
    stochastic = model.predict(obs)[0]
    model.save(tmp_path / "m.zip")
    loaded = POPLIN_P.load(tmp_path / "m.zip")
    assert loaded.cem_noise_table == 1 << 16
    assert np.array_equal(loaded.predict(obs, deterministic=True)[0], first)
    loaded.set_random_seed(3)
    assert np.array_equal(loaded.predict(obs)[0], stochastic)
    assert th.equal(loaded.planner.optimizer._noise_table, table), "rebuilt from the saved seed"
    # Another seed, another table; a table smaller than one candidate's noise is refused with what to pass.
    other = POPLIN_P("MlpPolicy", "Pendulum-v1", seed=1, cem_noise_table=1 << 16, **tiny_kwargs)
    other.predict(obs)
    assert not th.equal(other.planner.optimizer._noise_table, table)
    with pytest.raises(ValueError, match=r"cem_noise_table=100 is smaller than one candidate's noise \(\d+ numbers"):
        POPLIN_P("MlpPolicy", "Pendulum-v1", cem_noise_table=100, **tiny_kwargs)


@pytest.mark.parametrize("predict_with", ["mpc", "policy"])
def test_predict_refuses_an_observation_of_another_shape(predict_with: str, tiny_kwargs: dict[str, Any]) -> None:
    model = POPLIN_P("MlpPolicy", "Pendulum-v1", predict_with=predict_with, **tiny_kwargs)
    with pytest.raises(ValueError, match=r"Unexpected observation shape \(6,\)"):
        model.predict(np.zeros(6, dtype=np.float32))
    with pytest.raises(ValueError, match=r"Unexpected observation shape \(2, 2\)"):
        model.predict(np.zeros((2, 2), dtype=np.float32))
    assert model.predict(np.zeros((2, 3), dtype=np.float32))[0].shape == (2, 1)


# ---------------------------------------------------------------------------------------------------- 3. policy alone
def test_policy_saved_alone_loads_without_the_model(tiny_kwargs: dict[str, Any], tmp_path) -> None:
    model = POPLIN_P("MlpPolicy", "Pendulum-v1", seed=0, **tiny_kwargs).learn(120)
    assert float(model.policy.actor.obs_normalizer_fitted) == 1.0
    model.policy.save(tmp_path / "policy.pth")
    policy = POPLINPMlpPolicy.load(tmp_path / "policy.pth")
    obs = np.stack([gym.make("Pendulum-v1").reset(seed=s)[0] for s in range(5)])
    expected, _ = model.policy.predict(obs, deterministic=True)
    assert np.array_equal(policy.predict(obs, deterministic=True)[0], expected)
    assert policy.net_arch == [32]


# ---------------------------------------------------------------------------------------------------- 4. action shapes
class _MatrixActionEnv(gym.Env):
    """A point that moves by the row sums of a 2x2 action; reward: stay near the origin."""

    observation_space = spaces.Box(-10.0, 10.0, (2,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (2, 2), np.float32)

    def reset(self, seed: int | None = None, options: dict | None = None):  # type: ignore[override]
        super().reset(seed=seed)
        self.state = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        self.steps = 0
        return self.state.copy(), {}

    def step(self, action):  # type: ignore[override]
        assert np.shape(action) == (2, 2), f"the env receives actions of its own shape, got {np.shape(action)}"
        self.state = np.clip(self.state + 0.1 * np.sum(action, axis=1), -10, 10).astype(np.float32)
        self.steps += 1
        return self.state.copy(), -float(np.sum(self.state**2)), False, self.steps >= 30, {}


def matrix_action_reward(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
    return -(next_obs**2).sum(-1)


@pytest.mark.parametrize("algo", [POPLIN_A, POPLIN_P, PETS])
def test_multi_dimensional_action_box_is_planned_flat(algo: type, tiny_kwargs: dict[str, Any]) -> None:
    model = algo("MlpPolicy", _MatrixActionEnv(), reward_fn=matrix_action_reward, seed=0, **tiny_kwargs).learn(90)
    assert model.act_dim == 4 and model._n_model_updates >= 1
    obs = np.zeros(2, dtype=np.float32)
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == (2, 2)
    assert model.predict(np.zeros((3, 2), dtype=np.float32))[0].shape == (3, 2, 2)
    if algo is not PETS:
        assert model.policy.predict(obs)[0].shape == (2, 2)
    assert np.all(np.abs(model.replay_buffer.all_transitions()["actions"]) <= 1.0)


# ---------------------------------------------------------------------------------------------------- 5-6. arguments
def test_net_arch_as_a_sac_dict_uses_pi(tiny_kwargs: dict[str, Any]) -> None:
    model = POPLIN_A("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(net_arch=dict(pi=[16], qf=[64, 64])), **tiny_kwargs)
    assert model.policy.net_arch == [16]
    assert [layer.out_features for layer in model.policy.actor.linears] == [16, 1]
    with pytest.raises(ValueError, match="'pi'"):
        POPLIN_A("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(net_arch=dict(qf=[64, 64])), **tiny_kwargs)


@pytest.mark.parametrize(
    ("argument", "value", "named"),
    [
        ("batch_size", 256, "dynamics_batch_size"),
        ("gamma", 0.99, "horizon"),
        ("gradient_steps", 1, "dynamics_epochs"),
        ("action_noise", None, "init_sigma"),
        ("optimize_memory_usage", True, "noise_dtype"),
        ("tau", 0.005, "no critic"),
    ],
)
def test_model_free_arguments_say_what_to_pass(argument: str, value: Any, named: str) -> None:
    with pytest.raises(TypeError, match=f"{argument}.*{named}"):
        POPLIN_P("MlpPolicy", "Pendulum-v1", **{argument: value})


class _CountingBuffer(PlanningReplayBuffer):
    """A user's buffer subclass."""


def test_replay_buffer_class_and_kwargs_are_honoured(tiny_kwargs: dict[str, Any]) -> None:
    model = POPLIN_P(
        "MlpPolicy",
        "Pendulum-v1",
        replay_buffer_class=_CountingBuffer,
        replay_buffer_kwargs=dict(noise_dtype="float16"),
        **tiny_kwargs,
    )
    assert type(model.replay_buffer) is _CountingBuffer and model.replay_buffer.noises.dtype == np.float16
    with pytest.raises(ValueError, match="replay_buffer_class must be PlanningReplayBuffer"):
        POPLIN_P("MlpPolicy", "Pendulum-v1", replay_buffer_class=ReplayBuffer, **tiny_kwargs)


# ---------------------------------------------------------------------------------------------------- 7. NaN at reset
class _NanResetEnv(gym.Wrapper):
    """NaN in the first observation of the ``bad_reset``-th episode (counting from 1)."""

    def __init__(self, env: gym.Env, bad_reset: int) -> None:
        super().__init__(env)
        self.bad_reset = bad_reset
        self.resets = 0

    def reset(self, **kwargs: Any):  # type: ignore[override]
        obs, info = self.env.reset(**kwargs)
        self.resets += 1
        return (np.full_like(obs, np.nan) if self.resets == self.bad_reset else obs), info


def _short_pendulum() -> gym.Env:
    return gym.make("Pendulum-v1", max_episode_steps=40)


def test_nan_in_the_first_observation_of_an_episode_is_refused(tiny_kwargs: dict[str, Any]) -> None:
    # The VecEnv's auto-reset after episode 1 returns NaN: nothing of it may reach the buffer or the model.
    model = POPLIN_P("MlpPolicy", DummyVecEnv([lambda: _NanResetEnv(_short_pendulum(), 2)]), seed=0, **tiny_kwargs)
    with pytest.raises(ValueError, match=r"first observation of the next episode.*model and the replay buffer are intact"):
        model.learn(200)
    assert model.replay_buffer.size() == 39, "the steps before the bad one are kept, the bad one is not"
    data = model.replay_buffer.all_transitions()
    assert all(np.all(np.isfinite(array)) for array in data.values())
    assert all(th.all(th.isfinite(p)) for p in model.dynamics.parameters())
    # NaN at the very first reset: refused before anything is planned or stored.
    model = POPLIN_P("MlpPolicy", DummyVecEnv([lambda: _NanResetEnv(_short_pendulum(), 1)]), **tiny_kwargs)
    with pytest.raises(ValueError, match=r"first observation of an episode \(reset\)"):
        model.learn(100)
    assert model.replay_buffer.size() == 0


# ---------------------------------------------------------------------------------------------------- 8-9. env settings
def _cheetah() -> gym.Env:
    return gym.make("HalfCheetah-v5", ctrl_cost_weight=0.5, exclude_current_positions_from_observation=False)


def test_env_settings_reach_the_planner_through_subprocvecenv(tiny_kwargs: dict[str, Any]) -> None:
    venv = SubprocVecEnv([_cheetah], start_method="fork")  # fork: no fresh interpreter to start
    try:
        model = POPLIN_P("MlpPolicy", venv, **tiny_kwargs)
        assert model.task_kwargs["ctrl_cost_weight"] == 0.5
        assert model.task_kwargs["exclude_current_positions_from_observation"] is False
        # The planner's reward is the env's on real transitions (exact with x in the observation).
        rng = np.random.default_rng(0)
        obs = venv.reset()
        for _ in range(20):
            action = rng.uniform(-1, 1, (1, 6)).astype(np.float32)
            next_obs, reward, _, _ = venv.step(action)
            predicted = model.model_rollout.reward_fn(
                th.as_tensor(obs, dtype=th.float32), th.as_tensor(action), th.as_tensor(next_obs, dtype=th.float32)
            )
            assert predicted.numpy() == pytest.approx(reward, rel=1e-4, abs=1e-4)
            obs = next_obs
    finally:
        venv.close()


def _stacked_pendulum() -> gym.Env:
    return FlattenObservation(FrameStackObservation(gym.make("Pendulum-v1"), 2))


def _rescaled_pendulum() -> gym.Env:
    return RescaleAction(gym.make("Pendulum-v1"), -1.0, 1.0)


@pytest.mark.parametrize(
    ("make_env", "match"),
    [(_stacked_pendulum, r"shape \(6,\).*reward_fn"), (_rescaled_pendulum, r"action wrapper.*reward_fn=")],
)
def test_wrappers_that_change_a_registered_env_need_a_reward_fn(
    make_env: Any, match: str, tiny_kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match=match):
        POPLIN_P("MlpPolicy", make_env(), **tiny_kwargs)
    with pytest.raises(ValueError, match=match):
        POPLIN_P("MlpPolicy", DummyVecEnv([make_env]), **tiny_kwargs)
    # The user's reward function for the wrapped env is taken as is.
    model = POPLIN_P("MlpPolicy", make_env(), reward_fn=pendulum_reward, **tiny_kwargs)
    assert model.model_rollout.reward_fn is pendulum_reward


def test_action_wrapper_is_detected_through_subprocvecenv(tiny_kwargs: dict[str, Any]) -> None:
    venv = SubprocVecEnv([_rescaled_pendulum], start_method="fork")
    try:
        with pytest.raises(ValueError, match=r"action wrapper.*reward_fn="):
            POPLIN_P("MlpPolicy", venv, **tiny_kwargs)
    finally:
        venv.close()


# ---------------------------------------------------------------------------------------------------- 11. VecNormalize
def test_model_trained_on_vecnormalize_warns_when_used_without_it(tiny_kwargs: dict[str, Any], tmp_path) -> None:
    env = VecNormalize(make_vec_env("Pendulum-v1", n_envs=1, seed=0))
    POPLIN_P("MlpPolicy", env, seed=0, **tiny_kwargs).learn(60).save(tmp_path / "vn.zip")
    obs = np.zeros(3, dtype=np.float32)
    loaded = POPLIN_P.load(tmp_path / "vn.zip")
    with pytest.warns(UserWarning, match="VecNormalize"):
        loaded.predict(obs)
    with_statistics = POPLIN_P.load(tmp_path / "vn.zip", env=env)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with_statistics.predict(env.normalize_obs(obs))
        POPLIN_P("MlpPolicy", "Pendulum-v1", **tiny_kwargs).predict(obs)  # never normalised: nothing to warn about


# ---------------------------------------------------------------------------------------------------- 12-13. buffer
def test_replay_buffer_memory_and_file_grow_with_the_data(tmp_path) -> None:
    # Default buffer_size (1e6): the planned parameter noise of every row (kept for AVG) would be 644 MB for Pendulum.
    model = POPLIN_P("MlpPolicy", "Pendulum-v1", train_freq=(40, "step"), seed=0, distillation="avg")
    buffer = model.replay_buffer
    assert buffer.noises.nbytes < 10e6
    model.learn(40)  # the random warm-up: nothing planned, nothing trained
    model.save_replay_buffer(tmp_path / "buffer.pkl")
    assert os.path.getsize(tmp_path / "buffer.pkl") < 1e6
    other = POPLIN_P("MlpPolicy", "Pendulum-v1", seed=1, distillation="avg")
    other.load_replay_buffer(tmp_path / "buffer.pkl")
    restored = other.replay_buffer
    assert restored.size() == 40 and restored.observations.shape == buffer.observations.shape
    for key, value in buffer.all_transitions().items():
        assert np.array_equal(restored.all_transitions()[key], value), key
    # It keeps growing past the rows it was saved with.
    noise = np.ones((1, buffer.noise_dim), dtype=np.float32)
    for _ in range(2000):
        restored.add(np.zeros((1, 3)), np.zeros((1, 3)), np.zeros((1, 1)), np.zeros(1), np.zeros(1), [{}], noise=noise)
    assert restored.size() == 2040 and restored.recent_noises(2000).shape == (2000, buffer.noise_dim)
    assert np.all(restored.recent_noises(2000) == 1.0)


def test_humanoid_with_default_arguments_fits_in_memory() -> None:
    # 44 GiB of planned noise (1e6 rows of the policy's 11,729 parameters) were allocated at construction; AVG keeps
    # that noise (allocated as the data grows), BC, the default, keeps none.
    model = POPLIN_P("MlpPolicy", "Humanoid-v5", distillation="avg")
    assert model.replay_buffer.noises.nbytes < 100e6 and model.replay_buffer.noise_dim == model.policy.actor.n_params
    assert POPLIN_P("MlpPolicy", "Humanoid-v5").replay_buffer.noise_dim == 0


def test_save_replay_buffer_never_leaves_a_truncated_file(tiny_kwargs: dict[str, Any], tmp_path, monkeypatch) -> None:
    model = POPLIN_P("MlpPolicy", "Pendulum-v1", **tiny_kwargs).learn(20)
    path = tmp_path / "buffer.pkl"
    model.save_replay_buffer(path)
    whole = path.read_bytes()
    model.learn(10, reset_num_timesteps=False)

    def killed_while_writing(obj: Any, file: Any, protocol: int) -> None:
        file.write(b"half a buffer")
        raise KeyboardInterrupt  # what a kill looks like from inside the process

    monkeypatch.setattr(save_util.pickle, "dump", killed_while_writing)
    with pytest.raises(KeyboardInterrupt):
        model.save_replay_buffer(path)
    assert path.read_bytes() == whole, "the previous file must stay whole"
    assert sorted(os.listdir(tmp_path)) == ["buffer.pkl"], "no temporary file is left behind"
    monkeypatch.undo()
    model.save_replay_buffer(tmp_path / "no_suffix")  # SB3 appends .pkl, so must we
    assert pickle.loads((tmp_path / "no_suffix.pkl").read_bytes()).size() == model.replay_buffer.size()


# ---------------------------------------------------------------------------------------------------- 14. foreign zips
def test_sac_zip_is_refused_for_what_it_is(tmp_path) -> None:
    from stable_baselines3 import SAC

    SAC("MlpPolicy", "Pendulum-v1", buffer_size=100).save(tmp_path / "sac.zip")
    with pytest.raises(ValueError, match=r"not an sb3-poplin model.*stable_baselines3\.sac") as error:
        POPLIN_P.load(tmp_path / "sac.zip")
    assert "None" not in str(error.value)


def test_a_finished_episode_is_stored_with_its_own_last_observation_unnormalised() -> None:
    venv = VecNormalize(make_vec_env("Pendulum-v1", n_envs=2, seed=0), norm_reward=True)
    venv.reset()
    rng = np.random.default_rng(0)
    for _ in range(200):  # Pendulum's time limit: both episodes end at the last step
        new_obs, reward, dones, infos = venv.step(rng.uniform(-2, 2, size=(2, 1)).astype(np.float32))
    assert dones.all()
    next_obs, next_raw, raw_reward = raw_transition(venv, new_obs, reward, dones, infos)
    for i in range(2):
        terminal = venv.unnormalize_obs(infos[i]["terminal_observation"])
        np.testing.assert_allclose(next_obs[i], terminal, rtol=1e-5, atol=1e-5)
        assert not np.allclose(next_obs[i], next_raw[i]), "the next episode's first observation is not the last one"
    assert np.abs(next_obs[:, :2]).max() <= 1.0 + 1e-5, "cos and sin, raw"
    np.testing.assert_array_equal(raw_reward, venv.get_original_reward())
    plain = raw_transition(None, new_obs, reward, dones, infos)
    np.testing.assert_array_equal(plain[0], np.stack([info["terminal_observation"] for info in infos]))


def test_training_frequency_defaults_to_an_episode_and_to_the_episode_length_with_several_envs() -> None:
    venv = make_vec_env("Pendulum-v1", n_envs=2, seed=0)
    assert train_freq_for(None, 1, venv) == (1, "episode")
    assert train_freq_for(None, 2, venv) == (200, "step"), "Pendulum-v1's time limit"
    assert train_freq_for(None, 2, None) == (1000, "step"), "no env to read it from"
    assert train_freq_for(5, 2, venv) == (5, "step")
    assert train_freq_for([2, "episode"], 1, venv) == (2, "episode"), "a list read from YAML"
    model = PETS("MlpPolicy", venv, learning_starts=10, ensemble_size=1, dynamics_net_arch=[8])
    assert (model.train_freq.frequency, model.train_freq.unit.value) == (200, "step")
