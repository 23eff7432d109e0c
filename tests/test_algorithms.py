"""POPLIN_A and POPLIN_P through the SB3 API: learn, predict, save/load, callbacks, spaces, errors."""

from __future__ import annotations

import os
import re
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import CheckpointCallback, EvalCallback, StopTrainingOnRewardThreshold
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from sb3_poplin import PETS, POPLIN_A, POPLIN_P
from sb3_poplin.common.buffers import PlanningReplayBuffer
from sb3_poplin.common.engine import ModelFitSchedule

ALGOS = [POPLIN_A, POPLIN_P]
VARIANTS = [(POPLIN_A, "init"), (POPLIN_A, "replan"), (POPLIN_P, "uni"), (POPLIN_P, "sep")]


def pendulum_reward(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
    """Pendulum-v1's reward, importable as 'tests.test_algorithms:pendulum_reward'."""
    theta = th.atan2(obs[..., 1], obs[..., 0])
    u = action[..., 0].clamp(-2.0, 2.0)
    return -(theta**2 + 0.1 * obs[..., 2] ** 2 + 0.001 * u**2)


@pytest.mark.parametrize(("algo", "variant"), VARIANTS)
def test_learn_and_both_predict_paths(algo: type, variant: str, tiny_kwargs: dict[str, Any]) -> None:
    model = algo("MlpPolicy", "Pendulum-v1", planning_variant=variant, seed=0, **tiny_kwargs).learn(150)
    assert model.replay_buffer.size() == 150
    assert model._n_model_updates >= 2
    obs, _ = gym.make("Pendulum-v1").reset(seed=1)
    action, plan = model.predict(obs, deterministic=True)
    assert action.shape == (1,) and -2.0 <= action[0] <= 2.0
    action2, plan2 = model.predict(obs, state=plan, episode_start=np.array([False]))
    assert -2.0 <= action2[0] <= 2.0
    assert plan2[0].shape == plan[0].shape == (1, model.planner.noise_dim)
    policy_action, _ = model.policy.predict(obs, deterministic=True)
    assert policy_action.shape == (1,) and -2.0 <= policy_action[0] <= 2.0


@pytest.mark.parametrize("algo", ALGOS)
def test_save_load_gives_identical_predictions(algo: type, tiny_kwargs: dict[str, Any], tmp_path) -> None:
    model = algo("MlpPolicy", "Pendulum-v1", seed=0, **tiny_kwargs).learn(120)
    obs = np.stack([gym.make("Pendulum-v1").reset(seed=s)[0] for s in range(4)])
    path = tmp_path / "model.zip"
    model.save(path)
    loaded = algo.load(path, env=make_vec_env("Pendulum-v1", n_envs=1))

    # Policy path: the network alone.
    assert np.array_equal(model.policy.predict(obs, deterministic=True)[0], loaded.policy.predict(obs, deterministic=True)[0])
    # MPC path: same planner seed -> the same plan, with the same ensemble, normalisers and elites.
    model.set_random_seed(7)
    loaded.set_random_seed(7)
    a1, s1 = model.predict(obs)
    a2, s2 = loaded.predict(obs)
    assert np.array_equal(a1, a2) and np.array_equal(s1[0], s2[0])
    a1, _ = model.predict(obs, state=s1, episode_start=np.zeros(4, bool))
    a2, _ = loaded.predict(obs, state=s2, episode_start=np.zeros(4, bool))
    assert np.array_equal(a1, a2)
    # Everything the zip must hold.
    for a, b in zip(model.dynamics.state_dict().values(), loaded.dynamics.state_dict().values()):
        assert th.equal(a, b)
    assert loaded.dynamics.optimizer.state_dict()["state"], "the ensemble's optimiser state must be saved"
    assert loaded.policy.optimizer.state_dict()["state"], "the policy's optimiser state must be saved"
    assert loaded._n_model_updates == model._n_model_updates
    # A loaded model keeps learning.
    loaded.learn(60, reset_num_timesteps=False)


def test_load_without_env_and_switch_to_policy(tiny_kwargs: dict[str, Any], tmp_path) -> None:
    model = POPLIN_P("MlpPolicy", "Pendulum-v1", seed=0, **tiny_kwargs).learn(100)
    model.save(tmp_path / "p.zip")
    loaded = POPLIN_P.load(tmp_path / "p.zip")
    obs = gym.make("Pendulum-v1").reset(seed=0)[0]
    assert loaded.predict(obs)[0].shape == (1,)
    loaded.predict_with = "policy"
    assert np.array_equal(loaded.predict(obs, deterministic=True)[0], model.policy.predict(obs, deterministic=True)[0])


def test_replay_buffer_keeps_planned_noise_across_save(tiny_kwargs: dict[str, Any], tmp_path) -> None:
    # AVG distillation reads the executed parameter noise: the buffer keeps it for every planned step.
    model = POPLIN_P("MlpPolicy", "Pendulum-v1", seed=0, distillation="avg", **tiny_kwargs).learn(120)
    buffer = model.replay_buffer
    assert buffer.noises.shape[-1] == model.policy.actor.n_params
    planned = np.abs(buffer.noises[:120, 0]).sum(axis=1) > 0
    assert not planned[:50].any(), "random warm-up steps store zero noise"
    assert planned[100:].all(), "every planned step stores its parameter noise"
    assert np.array_equal(buffer.planned[:120, 0], planned)
    model.save_replay_buffer(tmp_path / "buffer.pkl")
    other = POPLIN_P("MlpPolicy", "Pendulum-v1", seed=1, distillation="avg", **tiny_kwargs)
    other.load_replay_buffer(tmp_path / "buffer.pkl")
    assert np.array_equal(other.replay_buffer.noises[:120], buffer.noises[:120])
    assert np.array_equal(other.replay_buffer.planned[:120], buffer.planned[:120])


def test_behaviour_cloning_keeps_no_planning_noise(tiny_kwargs: dict[str, Any], tmp_path) -> None:
    # BC never reads the noise: the buffer records only which steps were planned, and a buffer saved with noise (by
    # AVG, or by a version that kept it for every distillation) loads into a BC model without it.
    model = POPLIN_P("MlpPolicy", "Pendulum-v1", seed=0, **tiny_kwargs).learn(120)
    assert model.distillation == "bc"
    buffer = model.replay_buffer
    assert buffer.noise_dim == 0 and buffer.noises.shape[-1] == 0
    assert not buffer.planned[:50].any() and buffer.planned[100:120].all()
    avg = POPLIN_P("MlpPolicy", "Pendulum-v1", seed=0, distillation="avg", **tiny_kwargs).learn(120)
    avg.save_replay_buffer(tmp_path / "avg.pkl")
    model.load_replay_buffer(tmp_path / "avg.pkl")
    assert model.replay_buffer.noise_dim == 0
    n = avg.replay_buffer.size()
    assert np.array_equal(model.replay_buffer.planned[:n], avg.replay_buffer.planned[:n])
    data = model._distillation_data(model.replay_buffer.all_transitions())
    assert 0 < data.observations.shape[0] == int(avg.replay_buffer.planned[:n].sum()) < n
    # ... and the other way round is refused with what to do, the AVG model keeping its own buffer.
    model.save_replay_buffer(tmp_path / "bc.pkl")
    with pytest.raises(ValueError, match="distillation"):
        avg.load_replay_buffer(tmp_path / "bc.pkl")
    assert avg.replay_buffer.noise_dim == avg.policy.actor.n_params


def test_buffer_pickled_before_the_planned_flags_loads(tiny_kwargs: dict[str, Any]) -> None:
    # Buffers saved by 0.x versions up to this one carry no ``planned`` array: a planned step is one with noise.
    model = POPLIN_P("MlpPolicy", "Pendulum-v1", seed=0, distillation="avg", **tiny_kwargs).learn(120)
    state = model.replay_buffer.__getstate__()
    del state["planned"]
    old = PlanningReplayBuffer.__new__(PlanningReplayBuffer)
    old.__setstate__(state)
    assert old.planned.shape == (old.buffer_size, 1)
    n = model.replay_buffer.size()
    assert np.array_equal(old.planned[:n], model.replay_buffer.planned[:n])
    assert old.planned[:n].any() and not old.planned[n:].any()


@pytest.mark.parametrize("algo", ALGOS)
def test_same_seed_twice_is_identical(algo: type, tiny_kwargs: dict[str, Any]) -> None:
    runs = []
    for _ in range(2):
        model = algo("MlpPolicy", "Pendulum-v1", seed=3, **tiny_kwargs).learn(130)
        runs.append((model.replay_buffer.actions[:130].copy(), model.replay_buffer.rewards[:130].copy()))
    assert np.array_equal(runs[0][0], runs[1][0]) and np.array_equal(runs[0][1], runs[1][1])


@pytest.mark.parametrize("algo", ALGOS)
def test_several_envs_share_one_batched_plan(algo: type, tiny_kwargs: dict[str, Any]) -> None:
    env = make_vec_env("Pendulum-v1", n_envs=3, seed=0)
    model = algo("MlpPolicy", env, seed=0, **tiny_kwargs).learn(240)
    assert model.replay_buffer.size() * 3 >= 240 and model.replay_buffer.n_envs == 3
    obs = env.reset()
    actions, state = model.predict(obs)
    assert actions.shape == (3, 1) and state[0].shape[0] == 3
    # Envs plan independently: different observations give different plans.
    assert not np.allclose(state[0][0], state[0][1])
    mean, _ = evaluate_policy(model, env, n_eval_episodes=3)
    assert np.isfinite(mean)


def test_vecnormalize_does_not_break_the_model(tiny_kwargs: dict[str, Any]) -> None:
    env = VecNormalize(make_vec_env("Pendulum-v1", n_envs=1, seed=0), norm_reward=True)
    model = POPLIN_P("MlpPolicy", env, seed=0, **tiny_kwargs).learn(150)
    # The buffer holds raw observations (cos, sin within [-1, 1]) and raw rewards, which the reward function expects.
    obs = model.replay_buffer.observations[:150, 0]
    assert np.abs(obs[:, :2]).max() <= 1.0 + 1e-6
    assert model.replay_buffer.rewards[:150].min() < -1.0
    normalized_obs = env.reset()
    action, _ = model.predict(normalized_obs)
    assert np.all(np.abs(action) <= 2.0)


def test_callbacks_progress_bar_and_logger(tiny_kwargs: dict[str, Any], tmp_path) -> None:
    eval_env = make_vec_env("Pendulum-v1", n_envs=1, seed=5)
    stop = StopTrainingOnRewardThreshold(reward_threshold=1e9)
    eval_callback = EvalCallback(
        eval_env, n_eval_episodes=1, eval_freq=100, callback_on_new_best=stop, log_path=str(tmp_path / "eval")
    )
    checkpoint = CheckpointCallback(save_freq=100, save_path=str(tmp_path / "ckpt"), save_replay_buffer=True)
    model = POPLIN_P("MlpPolicy", "Pendulum-v1", seed=0, tensorboard_log=str(tmp_path / "tb"), **tiny_kwargs)
    model.set_logger(configure(str(tmp_path / "log"), ["csv"]))
    model.learn(200, callback=[eval_callback, checkpoint], progress_bar=True)
    assert os.path.exists(tmp_path / "eval" / "evaluations.npz")
    assert any(name.endswith(".zip") for name in os.listdir(tmp_path / "ckpt"))
    header = open(tmp_path / "log" / "progress.csv").readline().strip().split(",")
    for key in ("train/dynamics_loss", "train/dynamics_holdout_mse", "train/policy_loss", "train/n_updates", "time/plan_ms"):
        assert key in header, key


def test_a_function_callback_runs_beside_the_policy_evaluation(tiny_kwargs: dict[str, Any]) -> None:
    calls: list[int] = []

    def count(local_vars: dict[str, Any], global_vars: dict[str, Any]) -> bool:
        calls.append(1)
        return True

    model = POPLIN_P("MlpPolicy", "Pendulum-v1", seed=0, policy_eval_freq=50, policy_eval_episodes=1, **tiny_kwargs)
    model.learn(100, callback=count)
    assert len(calls) == 100 and len(model.policy_control_history) == 2


@pytest.mark.parametrize("algo", ALGOS)
def test_tensorboard_run_is_named_after_the_algorithm(algo: type, tiny_kwargs: dict[str, Any], tmp_path) -> None:
    pytest.importorskip("tensorboard")
    algo("MlpPolicy", "Pendulum-v1", tensorboard_log=str(tmp_path), **tiny_kwargs).learn(60)
    assert os.listdir(tmp_path) == [f"{algo.__name__}_1"]


def test_stop_on_reward_threshold_stops_early(tiny_kwargs: dict[str, Any]) -> None:
    stop = StopTrainingOnRewardThreshold(reward_threshold=-1e9)
    eval_callback = EvalCallback(
        make_vec_env("Pendulum-v1", n_envs=1), n_eval_episodes=1, eval_freq=60, callback_on_new_best=stop
    )
    model = POPLIN_A("MlpPolicy", "Pendulum-v1", seed=0, **tiny_kwargs).learn(1000, callback=eval_callback)
    assert model.num_timesteps == 60


class _SpaceEnv(gym.Env):
    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        self.observation_space, self.action_space = observation_space, action_space

    def reset(self, seed: int | None = None, options: dict | None = None):  # type: ignore[override]
        return self.observation_space.sample(), {}

    def step(self, action):  # type: ignore[override]
        return self.observation_space.sample(), 0.0, False, False, {}


@pytest.mark.parametrize(
    ("observation_space", "action_space", "match"),
    [
        (spaces.Box(-1, 1, (3,)), spaces.Discrete(3), "Box"),
        (spaces.Box(-1, 1, (3,)), spaces.MultiDiscrete([2, 2]), "Box"),
        (spaces.Box(0, 255, (32, 32, 3), np.uint8), spaces.Box(-1, 1, (1,)), "flat vector"),
        (spaces.Dict({"a": spaces.Box(-1, 1, (2,))}), spaces.Box(-1, 1, (1,)), "FlattenObservation"),
        (spaces.Box(-1, 1, (3,)), spaces.Box(-np.inf, np.inf, (1,)), "bounded"),
    ],
)
@pytest.mark.parametrize("algo", ALGOS)
def test_unsupported_spaces_are_refused_clearly(algo: type, observation_space, action_space, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        algo("MlpPolicy", _SpaceEnv(observation_space, action_space), reward_fn=pendulum_reward)


def test_unknown_env_needs_a_reward_function(tiny_kwargs: dict[str, Any]) -> None:
    env = _SpaceEnv(spaces.Box(-1, 1, (3,)), spaces.Box(-2, 2, (1,)))
    with pytest.raises(ValueError, match="reward_fn"):
        POPLIN_P("MlpPolicy", env, **tiny_kwargs)
    model = POPLIN_P("MlpPolicy", env, reward_fn="tests.test_algorithms:pendulum_reward", **tiny_kwargs)
    assert model.model_rollout.reward_fn.__name__ == "pendulum_reward"


def test_user_reward_function_is_used_and_saved(tiny_kwargs: dict[str, Any], tmp_path) -> None:
    model = POPLIN_A("MlpPolicy", "Pendulum-v1", reward_fn="tests.test_algorithms:pendulum_reward", **tiny_kwargs)
    model.save(tmp_path / "a.zip")
    assert POPLIN_A.load(tmp_path / "a.zip").model_rollout.reward_fn.__name__ == "pendulum_reward"


class _NanEnv(gym.Wrapper):
    def step(self, action):  # type: ignore[override]
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.count = getattr(self, "count", 0) + 1
        return obs, (np.nan if self.count == 30 else reward), terminated, truncated, info


def test_nan_reward_is_refused_without_losing_data(tiny_kwargs: dict[str, Any]) -> None:
    model = POPLIN_P("MlpPolicy", DummyVecEnv([lambda: _NanEnv(gym.make("Pendulum-v1"))]), **tiny_kwargs)
    with pytest.raises(ValueError, match="NaN or inf"):
        model.learn(100)
    assert model.replay_buffer.size() == 29
    assert np.isfinite(model.replay_buffer.rewards[:29]).all()


def test_zip_from_another_algorithm_or_version_is_refused(tiny_kwargs: dict[str, Any], tmp_path) -> None:
    POPLIN_A("MlpPolicy", "Pendulum-v1", **tiny_kwargs).save(tmp_path / "a.zip")
    with pytest.raises(ValueError, match="POPLIN_A"):
        POPLIN_P.load(tmp_path / "a.zip")
    model = POPLIN_P("MlpPolicy", "Pendulum-v1", **tiny_kwargs)
    for version in ("0.0.1", "0.3.0", "1.0.0"):  # older than 0.1, and newer than this release
        model.sb3_poplin_version = version
        model.save(tmp_path / "other.zip")
        with pytest.raises(ValueError, match=rf"{re.escape(version)}.*loads zips of 0\.1\.x, 0\.2\.x"):
            POPLIN_P.load(tmp_path / "other.zip")


def test_zip_for_another_env_is_refused(tiny_kwargs: dict[str, Any], tmp_path) -> None:
    POPLIN_P("MlpPolicy", "InvertedPendulum-v5", **tiny_kwargs).save(tmp_path / "ip.zip")
    with pytest.raises(ValueError, match=r"trained on InvertedPendulum-v5 .* the env given is InvertedPendulumClone-v0"):
        # Same spaces (4-dim obs, 1-dim action) but another task id: its reward may differ.
        POPLIN_P.load(tmp_path / "ip.zip", env=_renamed_inverted_pendulum())


def _renamed_inverted_pendulum() -> gym.Env:
    env = gym.make("InvertedPendulum-v5")
    env.spec.id = "InvertedPendulumClone-v0"  # type: ignore[union-attr]
    return env


def test_predict_refuses_nan_observations(tiny_kwargs: dict[str, Any]) -> None:
    model = POPLIN_P("MlpPolicy", "Pendulum-v1", **tiny_kwargs)
    with pytest.raises(ValueError, match="NaN"):
        model.predict(np.array([np.nan, 0.0, 0.0], dtype=np.float32))


def test_interrupted_run_resumes_from_checkpoint_and_buffer(tiny_kwargs: dict[str, Any], tmp_path) -> None:
    model = POPLIN_P("MlpPolicy", "Pendulum-v1", seed=0, **tiny_kwargs).learn(100)
    model.save(tmp_path / "ckpt.zip")
    model.save_replay_buffer(tmp_path / "buffer.pkl")
    resumed = POPLIN_P.load(tmp_path / "ckpt.zip", env=make_vec_env("Pendulum-v1", n_envs=1))
    resumed.load_replay_buffer(tmp_path / "buffer.pkl")
    assert resumed.num_timesteps == 100 and resumed.replay_buffer.size() == 100
    resumed.learn(50, reset_num_timesteps=False)
    assert resumed.num_timesteps == 150 and resumed.replay_buffer.size() == 150
    assert resumed._n_model_updates == model._n_model_updates + 1


def test_a_buffer_that_does_not_fit_is_refused_and_the_current_one_kept(tiny_kwargs: dict[str, Any], tmp_path) -> None:
    from stable_baselines3 import SAC

    model = POPLIN_P("MlpPolicy", "Pendulum-v1", seed=0, **tiny_kwargs).learn(60)
    current, n_stored = model.replay_buffer, model.replay_buffer.size()
    SAC("MlpPolicy", "Pendulum-v1", buffer_size=100).save_replay_buffer(tmp_path / "sac.pkl")
    with pytest.raises(TypeError, match="saved by another algorithm"):
        model.load_replay_buffer(tmp_path / "sac.pkl")
    POPLIN_P("MlpPolicy", "MountainCarContinuous-v0", **tiny_kwargs).save_replay_buffer(tmp_path / "car.pkl")
    with pytest.raises(ValueError, match=r"observation shape \(2,\) \(this model: \(3,\)\)"):
        model.load_replay_buffer(tmp_path / "car.pkl")
    # AVG keeps the parameter noise of each step: a buffer of a policy of another size cannot be averaged over.
    avg = POPLIN_P("MlpPolicy", "Pendulum-v1", seed=0, distillation="avg", **tiny_kwargs).learn(60)
    avg_current = avg.replay_buffer
    wide = dict(tiny_kwargs, policy_kwargs=dict(net_arch=[8]))
    POPLIN_P("MlpPolicy", "Pendulum-v1", distillation="avg", **wide).save_replay_buffer(tmp_path / "wide.pkl")
    with pytest.raises(ValueError, match=f"planning noise size {8 * 3 + 8 + 8 + 1} "):
        avg.load_replay_buffer(tmp_path / "wide.pkl")
    assert model.replay_buffer is current and current.size() == n_stored > 0
    assert avg.replay_buffer is avg_current


def test_transitions_of_another_planner_load_without_noise(tiny_kwargs: dict[str, Any], tmp_path) -> None:
    # Without AVG no noise is kept, and the transitions of any planner on the same env are data to learn from.
    pets = PETS("MlpPolicy", "Pendulum-v1", seed=0, **tiny_kwargs).learn(100)
    pets.save_replay_buffer(tmp_path / "pets.pkl")
    model = POPLIN_A("MlpPolicy", "Pendulum-v1", seed=0, **tiny_kwargs)
    model.load_replay_buffer(tmp_path / "pets.pkl")
    n = pets.replay_buffer.size()
    assert np.array_equal(model.replay_buffer.all_transitions()["planned"], pets.replay_buffer.planned[:n, 0])
    assert np.array_equal(model.replay_buffer.actions[:n], pets.replay_buffer.actions[:n])


@pytest.mark.parametrize("algo", ALGOS)
def test_planning_starts_right_after_learning_starts(algo: type, tiny_kwargs: dict[str, Any]) -> None:
    # One episode of warm-up with episode-long training, as the MuJoCo entries do: SB3 alone would train first at the
    # end of the second episode (num_timesteps > learning_starts), leaving it random.
    tiny_kwargs.update(learning_starts=200, train_freq=None)
    model = algo("MlpPolicy", "Pendulum-v1", seed=0, **tiny_kwargs).learn(400)
    planned = model.replay_buffer.all_transitions()["planned"]
    assert not planned[:200].any(), "the warm-up steps must be random"
    assert planned[200:].all(), "every step after learning_starts must be planned with a trained model"
    # Trained once when planning began (200) and once per finished episode after it (400).
    assert model._n_model_updates == 2


def test_cuda_graph_is_on_by_default_only_on_cuda(tiny_kwargs: dict[str, Any], tmp_path) -> None:
    model = POPLIN_P("MlpPolicy", "Pendulum-v1", seed=0, device="cpu", **tiny_kwargs)
    assert model.planner.cuda_graph is False
    forced = POPLIN_P("MlpPolicy", "Pendulum-v1", seed=0, device="cpu", cuda_graph=True, **tiny_kwargs).learn(60)
    assert forced.planner.cuda_graph is True  # ignored on CPU: the plan above ran eagerly
    forced.save(tmp_path / "m.zip")
    assert POPLIN_P.load(tmp_path / "m.zip", device="cpu").planner.cuda_graph is True


def test_small_data_gets_more_epochs_up_to_the_minimum_of_gradient_steps(tiny_kwargs: dict[str, Any]) -> None:
    tiny_kwargs.update(dynamics_epochs=5, dynamics_batch_size=32, dynamics_min_updates=1000)
    model = POPLIN_P("MlpPolicy", "Pendulum-v1", seed=0, **tiny_kwargs)
    # 1,000 transitions, 900 after the 10% hold-out: 29 minibatches per epoch -> 35 epochs make 1,015 >= 1,000 steps.
    schedule = ModelFitSchedule.from_options(model.option_values())
    assert schedule.epochs_for(1000) == 35
    # With enough data the configured epochs already make more steps than the minimum.
    assert schedule.epochs_for(10_000) == 5
    model.dynamics_min_updates = 0  # read again at every training
    assert ModelFitSchedule.from_options(model.option_values()).epochs_for(1000) == 5


def test_dynamics_ignore_the_observed_position_and_survive_save_load(tmp_path) -> None:
    # With x observed, HalfCheetah's reward is exact and the model must not read x (it grows as the cheetah runs).
    kwargs = dict(population_size=16, n_elites=4, cem_iterations=2, horizon=3, ensemble_size=2, dynamics_net_arch=[16])
    kwargs.update(dynamics_min_updates=0)  # the test checks which inputs are read, not what the model learns
    make = lambda: gym.make("HalfCheetah-v5", exclude_current_positions_from_observation=False)  # noqa: E731
    model = POPLIN_P("MlpPolicy", make(), learning_starts=30, seed=0, **kwargs).learn(60)
    assert model.dynamics.ignored_inputs == (0,)
    obs = model.env.reset()
    far = obs.copy()
    far[:, 0] += 500.0  # the same state, far down the track

    def step_prediction(o: np.ndarray) -> th.Tensor:
        return model.dynamics.forward_elites_mean(th.as_tensor(np.concatenate([o, np.zeros((1, 6))], 1), dtype=th.float32))

    assert th.equal(step_prediction(obs), step_prediction(far))
    # The policy network (the prior of POPLIN-P's search) does not read x either, also when saved alone.
    assert np.array_equal(model.policy.predict(obs, deterministic=True)[0], model.policy.predict(far, deterministic=True)[0])
    model.policy.save(tmp_path / "policy.zip")
    alone = type(model.policy).load(tmp_path / "policy.zip")
    assert alone.actor.ignored_obs == (0,)
    assert np.array_equal(alone.predict(far, deterministic=True)[0], model.policy.predict(obs, deterministic=True)[0])
    path = tmp_path / "cheetah.zip"
    model.save(path)
    loaded = POPLIN_P.load(path, env=make())
    assert loaded.dynamics_ignore_positions and loaded.dynamics.ignored_inputs == (0,)
    model.set_random_seed(3)
    loaded.set_random_seed(3)
    assert np.array_equal(model.predict(obs)[0], loaded.predict(obs)[0])
    # Off on request, and never with the default observation (no position in it).
    assert POPLIN_P("MlpPolicy", make(), dynamics_ignore_positions=False, **kwargs).dynamics.ignored_inputs == ()
    assert POPLIN_P("MlpPolicy", "HalfCheetah-v5", **kwargs).dynamics.ignored_inputs == ()
