"""The POPLIN family: every variant the paper defines, the distillation schemes, and the planning baselines."""

from __future__ import annotations

import inspect
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env

from sb3_poplin import PETS, POPLIN_A, POPLIN_P, RS
from sb3_poplin.common.buffers import PlanningReplayBuffer
from sb3_poplin.common.cem import CEMOptimizer
from sb3_poplin.common.distillation import AdversarialDistillation, Discriminator, DistillationData, ParameterAverage
from sb3_poplin.common.planners import ActionSequencePlanner, RandomShootingPlanner
from sb3_poplin.common.policies import PolicyNetwork
from tests.test_planning import DT, make_rollout, true_return

COMBINATIONS: list[tuple[type, dict[str, Any]]] = [
    *[
        (POPLIN_A, dict(planning_variant=v, distillation="bc", distillation_data=d))
        for v in ("init", "replan")
        for d in ("real", "hallucination")
    ],
    *[
        (POPLIN_P, dict(planning_variant=v, distillation=s, distillation_data=d))
        for v in ("uni", "sep")
        for s in ("bc", "gan", "avg")
        for d in ("real", "hallucination")
    ],
    (POPLIN_A, dict(bc_elite_actions=3)),
    (PETS, {}),
    (RS, {}),
]


def _name(combination: tuple[type, dict[str, Any]]) -> str:
    algo, kwargs = combination
    return "-".join([algo.__name__, *map(str, kwargs.values())])


@pytest.mark.parametrize("combination", COMBINATIONS, ids=[_name(c) for c in COMBINATIONS])
def test_every_variant_learns_saves_and_loads(combination, tiny_kwargs: dict[str, Any], tmp_path) -> None:
    algo, kwargs = combination
    model = algo("MlpPolicy", "Pendulum-v1", seed=0, **kwargs, **tiny_kwargs).learn(200)
    assert model._n_model_updates >= 3
    if kwargs.get("distillation_data") == "hallucination":
        assert model.replay_buffer.n_extra_pairs > 0
    obs = np.stack([gym.make("Pendulum-v1").reset(seed=s)[0] for s in range(3)])
    model.save(tmp_path / "m.zip")
    loaded = algo.load(tmp_path / "m.zip", env=make_vec_env("Pendulum-v1", n_envs=1))
    model.set_random_seed(5)
    loaded.set_random_seed(5)
    assert np.array_equal(model.predict(obs)[0], loaded.predict(obs)[0])
    if model.uses_policy_network:
        assert np.array_equal(
            model.policy.predict(obs, deterministic=True)[0], loaded.policy.predict(obs, deterministic=True)[0]
        )
    if kwargs.get("distillation") == "gan":
        for a, b in zip(model.discriminator.state_dict().values(), loaded.discriminator.state_dict().values()):
            assert th.equal(a, b)
        assert loaded.discriminator.optimizer.state_dict()["state"]


@pytest.mark.parametrize("algo", [PETS, RS])
@pytest.mark.parametrize("argument", ["predict_with", "policy_eval_freq", "distillation_window", "policy_epochs"])
def test_baselines_take_no_distillation_options(algo: type, argument: str, tiny_kwargs: dict[str, Any]) -> None:
    # No policy network: the distillation options are not theirs (not in the signature, refused as unknown).
    assert argument not in inspect.signature(algo).parameters
    with pytest.raises(TypeError, match=f"{algo.__name__} got an unexpected keyword argument '{argument}'"):
        algo("MlpPolicy", "Pendulum-v1", **{argument: 1}, **tiny_kwargs)


def test_default_sigma_per_variant() -> None:
    assert POPLIN_P("MlpPolicy", "Pendulum-v1", distillation="bc").init_sigma == 0.03
    assert POPLIN_P("MlpPolicy", "Pendulum-v1", distillation="avg").init_sigma == 0.1
    assert POPLIN_P("MlpPolicy", "Pendulum-v1", distillation="avg", init_sigma=0.2).init_sigma == 0.2
    assert POPLIN_A("MlpPolicy", "Pendulum-v1").init_sigma == 0.5
    assert POPLIN_A("MlpPolicy", "Pendulum-v1").policy.net_arch == [64, 64]
    assert POPLIN_P("MlpPolicy", "Pendulum-v1").policy.net_arch == [32]


def test_avg_moves_theta_by_the_mean_recorded_noise() -> None:
    th.manual_seed(0)
    policy = PolicyNetwork(3, 1, [4])
    policy.fit_obs_normalizer(th.randn(20, 3))
    theta = policy.flat_parameters().detach().clone()
    noises = th.randn(7, policy.n_params)
    data = DistillationData(th.randn(7, 3), th.zeros(7, 1), noises)
    ParameterAverage().distill(policy, th.optim.SGD(policy.parameters(), lr=0.0), data)
    assert th.allclose(policy.flat_parameters(), theta + noises.mean(0), atol=1e-6)


@pytest.mark.parametrize("noise_dtype", ["float32", "float16"])
def test_avg_reads_the_noise_of_the_steps_since_the_last_update(tiny_kwargs: dict[str, Any], noise_dtype: str) -> None:
    """End to end: the update equals the mean of the noise the buffer recorded since the previous update."""
    model = POPLIN_P(
        "MlpPolicy",
        "Pendulum-v1",
        distillation="avg",
        seed=0,
        replay_buffer_kwargs=dict(noise_dtype=noise_dtype),
        **tiny_kwargs,
    ).learn(150)
    buffer = model.replay_buffer
    assert buffer.noises.dtype == np.dtype(noise_dtype)
    theta_before = model.policy.actor.flat_parameters().detach().clone()
    # the steps planned since the update at step 100
    expected_noise = buffer.noises[100:150, 0].astype(np.float32).mean(axis=0)
    assert np.abs(buffer.noises[100:150]).sum() > 0
    model._buffer_adds_at_last_train = 100
    model.train(gradient_steps=1, batch_size=64)
    moved = (model.policy.actor.flat_parameters().detach() - theta_before).numpy()
    assert np.allclose(moved, expected_noise, atol=1e-5)


@pytest.mark.parametrize(
    "algo, kwargs",
    [(POPLIN_P, dict(distillation_data="hallucination")), (POPLIN_A, dict(bc_elite_actions=3))],
    ids=["P-hallucination", "A-elite-actions"],
)
def test_extra_distillation_pairs_survive_a_resume(
    algo: type, kwargs: dict[str, Any], tiny_kwargs: dict[str, Any], tmp_path
) -> None:
    """A run resumed from its zip and replay buffer distils from the same (real + extra) pairs."""
    model = algo("MlpPolicy", "Pendulum-v1", seed=0, **kwargs, **tiny_kwargs).learn(150)
    assert model.replay_buffer.n_extra_pairs > 0
    model.save(tmp_path / "m.zip")
    model.save_replay_buffer(tmp_path / "buffer.pkl")
    resumed = algo.load(tmp_path / "m.zip", env=make_vec_env("Pendulum-v1", n_envs=1))
    resumed.load_replay_buffer(tmp_path / "buffer.pkl")
    assert resumed.replay_buffer.n_extra_pairs == model.replay_buffer.n_extra_pairs
    before = model._distillation_data(model.replay_buffer.all_transitions())
    after = resumed._distillation_data(resumed.replay_buffer.all_transitions())
    assert before.observations.shape[0] > model.replay_buffer.size_transitions() - model.learning_starts
    assert th.equal(before.observations, after.observations)
    assert th.equal(before.actions, after.actions)
    assert th.equal(before.noises, after.noises)


def test_extra_pairs_keep_the_newest_within_capacity() -> None:
    from gymnasium import spaces

    buffer = PlanningReplayBuffer(4, spaces.Box(-1, 1, (2,)), spaces.Box(-1, 1, (1,)), "cpu", n_envs=1, noise_dim=1)
    for i in range(5):
        buffer.add_extra_pairs(np.full((3, 2), i), np.full((3, 1), i), capacity=7)
    assert buffer.n_extra_pairs == 6
    assert [int(states[0, 0]) for states, _ in buffer.extra_pairs] == [3, 4]


def test_buffer_recent_noises_follow_insertion_order_across_wraparound() -> None:
    from gymnasium import spaces

    buffer = PlanningReplayBuffer(4, spaces.Box(-1, 1, (2,)), spaces.Box(-1, 1, (1,)), "cpu", n_envs=1, noise_dim=1)
    for i in range(6):
        buffer.add(np.zeros((1, 2)), np.zeros((1, 2)), np.zeros((1, 1)), np.zeros(1), np.zeros(1), [{}], noise=[[i]])
    assert buffer.recent_noises(3)[:, 0].tolist() == [3.0, 4.0, 5.0]
    assert buffer.recent_noises(10)[:, 0].tolist() == [2.0, 3.0, 4.0, 5.0]


def test_buffer_recent_mask_marks_the_newest_steps_of_every_env_across_wraparound() -> None:
    from gymnasium import spaces

    # 8 transitions of 2 envs: 4 slots of steps. Steps 0..5 into 4 slots: the slots hold steps 4, 5, 2, 3.
    buffer = PlanningReplayBuffer(8, spaces.Box(-1, 1, (2,)), spaces.Box(-1, 1, (1,)), "cpu", n_envs=2, noise_dim=1)
    for i in range(6):
        obs = np.full((2, 2), i, dtype=np.float32)
        buffer.add(obs, obs, np.zeros((2, 1)), np.zeros(2), np.zeros(2), [{}, {}], noise=[[i], [i]])
    steps = buffer.all_transitions()["observations"][:, 0]
    assert sorted(steps[buffer.recent_mask(3)].tolist()) == [3.0, 3.0, 4.0, 4.0, 5.0, 5.0]
    assert buffer.recent_mask(10).all() and buffer.recent_mask(1).sum() == 2


@pytest.mark.parametrize("algo", [POPLIN_P, POPLIN_A])
def test_distillation_window_keeps_the_last_planned_steps(algo: type, tiny_kwargs: dict[str, Any]) -> None:
    model = algo("MlpPolicy", "Pendulum-v1", distillation_window=30, seed=0, **tiny_kwargs).learn(150)
    data = model.replay_buffer.all_transitions()
    pairs = model._distillation_data(data)
    n_extra = sum(len(a) for _, a in model.replay_buffer.extra_pairs)  # POPLIN-A's elite actions come on top
    assert len(pairs.observations) == 30 + n_extra
    assert th.equal(pairs.observations[:30], th.as_tensor(data["observations"][120:150]))
    assert th.equal(pairs.actions[:30], th.as_tensor(data["actions"][120:150]))
    # Without a window: every planned step (all but the 50 random warm-up steps).
    model.distillation_window = None
    assert len(model._distillation_data(data).observations) == 100 + n_extra


def test_buffer_episodes_number_each_env_s_episodes_and_sum_their_rewards() -> None:
    from gymnasium import spaces

    # 2 envs, 5 slots, 7 steps: the slots hold steps 5, 6, 2, 3, 4. Env 0 ends episodes at steps 1 and 4, env 1 at 3.
    buffer = PlanningReplayBuffer(10, spaces.Box(-1, 1, (1,)), spaces.Box(-1, 1, (1,)), "cpu", n_envs=2)
    ends = {0: [1, 4], 1: [3]}
    for step in range(7):
        done = np.array([step in ends[0], step in ends[1]], dtype=np.float32)
        reward = np.array([step, 10 * step], dtype=np.float32)
        obs = np.full((2, 1), step, dtype=np.float32)
        buffer.add(obs, obs, np.zeros((2, 1)), reward, done, [{}, {}])
    episode, returns = buffer.episodes()
    data = buffer.all_transitions()
    step_of_row = data["observations"][:, 0].astype(int)
    env_of_row = np.tile([0, 1], 5)
    # Episodes in the buffer: env 0 {2..4} (its first steps lost), {5, 6} (running); env 1 {2, 3}, {4..6} (running).
    expected = {(0, 2): 9, (0, 3): 9, (0, 4): 9, (0, 5): 11, (0, 6): 11}
    expected |= {(1, 2): 50, (1, 3): 50, (1, 4): 150, (1, 5): 150, (1, 6): 150}
    for row, (step, env) in enumerate(zip(step_of_row, env_of_row)):
        assert returns[episode[row]] == expected[(env, step)]
    assert len(returns) == 4 and sorted(returns.tolist()) == [9, 11, 50, 150]
    # Steps of one episode share its number, and different episodes have different numbers.
    assert len({(env, returns[e]) for env, e in zip(env_of_row, episode)}) == len(set(episode.tolist())) == 4


@pytest.mark.parametrize("algo", [POPLIN_P, POPLIN_A])
def test_distillation_best_episodes_keeps_the_planned_steps_of_the_highest_returns(
    algo: type, tiny_kwargs: dict[str, Any]
) -> None:
    env = gym.make("Pendulum-v1", max_episode_steps=40)
    model = algo("MlpPolicy", env, distillation_best_episodes=2, seed=0, **tiny_kwargs).learn(200)
    data = model.replay_buffer.all_transitions()
    episode_returns = np.add.reduceat(data["rewards"], np.arange(0, 200, 40))  # five episodes of 40 steps
    # Episode 0 is random (the warm-up is 50 steps): never distilled. Of the four planned ones, the best two.
    best = sorted(np.argsort(-episode_returns[1:])[:2] + 1)
    keep = np.zeros(200, dtype=bool)
    for index in best:
        keep[40 * index : 40 * (index + 1)] = True
    keep &= data["planned"]
    pairs = model._distillation_data(data)
    n_extra = sum(len(a) for _, a in model.replay_buffer.extra_pairs)
    assert len(pairs.observations) == keep.sum() + n_extra
    assert th.equal(pairs.observations[: keep.sum()], th.as_tensor(data["observations"][keep]))
    assert th.equal(pairs.actions[: keep.sum()], th.as_tensor(data["actions"][keep]))
    # More episodes asked for than were planned: every planned step.
    model.distillation_best_episodes = 10
    assert len(model._distillation_data(data).observations) == data["planned"].sum() + n_extra


def test_float16_noise_halves_the_buffer_and_refuses_what_it_cannot_hold() -> None:
    from gymnasium import spaces

    def make(dtype: str) -> PlanningReplayBuffer:
        return PlanningReplayBuffer(
            100, spaces.Box(-1, 1, (2,)), spaces.Box(-1, 1, (1,)), "cpu", n_envs=1, noise_dim=50, noise_dtype=dtype
        )

    half, full = make("float16"), make("float32")
    assert half.noises.nbytes * 2 == full.noises.nbytes
    noise = np.random.default_rng(0).normal(0.0, 0.03, size=(1, 50))
    half.add(np.zeros((1, 2)), np.zeros((1, 2)), np.zeros((1, 1)), np.zeros(1), np.zeros(1), [{}], noise=noise)
    assert np.allclose(half.recent_noises(1), noise, rtol=1e-3, atol=1e-7)
    assert half.recent_noises(1).dtype == np.float32
    with pytest.raises(ValueError, match="noise_dtype='float32'"):
        half.add(np.zeros((1, 2)), np.zeros((1, 2)), np.zeros((1, 1)), np.zeros(1), np.zeros(1), [{}], noise=noise * 1e7)
    assert half.size() == 1  # the refused step was not stored
    with pytest.raises(ValueError, match="noise_dtype must be"):
        make("int8")


def test_gan_discriminator_loss_decreases_on_a_fixed_data_set() -> None:
    th.manual_seed(0)
    gen = th.Generator().manual_seed(0)
    policy = PolicyNetwork(3, 1, [16])
    obs = th.randn(512, 3)
    planned = th.tanh(2.0 * obs[:, :1] - obs[:, 1:2])  # an expert the untrained policy does not match
    policy.fit_obs_normalizer(obs)
    discriminator = Discriminator(3, 1, [32, 32])
    scheme = AdversarialDistillation(
        discriminator, th.optim.Adam(discriminator.parameters(), lr=1e-3), sigma=0.03, epochs=1, generator=gen
    )
    with th.no_grad():
        before = scheme.discriminator_loss(policy, obs, planned).item()
    # Train the discriminator alone (generator frozen by a zero learning rate) on the same data.
    frozen = th.optim.SGD(policy.parameters(), lr=0.0)
    for _ in range(15):
        scheme.distill(policy, frozen, DistillationData(obs, planned))
    with th.no_grad():
        after = scheme.discriminator_loss(policy, obs, planned).item()
    assert after < 0.8 * before, (before, after)


def test_gan_generator_moves_policy_towards_the_planned_actions() -> None:
    th.manual_seed(0)
    gen = th.Generator().manual_seed(0)
    policy = PolicyNetwork(2, 1, [16])
    obs = th.randn(1024, 2)
    planned = th.full((1024, 1), 0.8)
    discriminator = Discriminator(2, 1, [32])
    scheme = AdversarialDistillation(
        discriminator, th.optim.Adam(discriminator.parameters(), lr=1e-3), sigma=0.01, epochs=20, generator=gen
    )
    before = (policy(obs) - planned).pow(2).mean().item()
    scheme.distill(policy, th.optim.Adam(policy.parameters(), lr=1e-3), DistillationData(obs, planned))
    after = (policy(obs) - planned).pow(2).mean().item()
    assert after < 0.5 * before, (before, after)


def lq_optimum(obs0: np.ndarray, horizon: int) -> np.ndarray:
    """Exact optimal open-loop actions of the point mass: its return is a quadratic in the actions (least squares)."""
    # state_{t+1} = A state_t + B a_t; stack every state as an affine function of the action vector.
    a_mat = np.array([[1.0, DT], [0.0, 1.0]])
    b_vec = np.array([0.0, DT])
    rows, offsets = [], []
    state_coef, state_off = np.zeros((2, horizon)), obs0.astype(float)
    for t in range(horizon):
        state_coef = a_mat @ state_coef
        state_coef[:, t] += b_vec
        state_off = a_mat @ state_off
        # residuals whose squared sum is the cost: x, sqrt(0.1) v, sqrt(0.01) a_t
        rows += [state_coef[0].copy(), np.sqrt(0.1) * state_coef[1].copy(), np.sqrt(0.01) * np.eye(horizon)[t]]
        offsets += [state_off[0], np.sqrt(0.1) * state_off[1], 0.0]
    actions, *_ = np.linalg.lstsq(np.array(rows), -np.array(offsets), rcond=None)
    return actions


def test_pets_reaches_the_optimum_of_a_known_model() -> None:
    """On the exact point-mass model, PETS' plan scores within 2% of the analytic optimum."""
    obs0 = th.tensor([[0.1, 0.0]])
    horizon = 15
    optimal_actions = lq_optimum(obs0[0].numpy(), horizon)
    assert np.abs(optimal_actions).max() < 1.0  # the bounds are inactive: the least-squares solution is the optimum
    optimum = true_return(obs0[0].numpy(), optimal_actions)
    gen = th.Generator().manual_seed(0)
    pets = ActionSequencePlanner(make_rollout(horizon), CEMOptimizer(500, 50, 10), 1, 0.5).plan(obs0, generator=gen)
    reached = true_return(obs0[0].numpy(), pets.mean[0].numpy())
    assert optimum - 0.02 * abs(optimum) <= reached <= optimum + 1e-6, (reached, optimum)
    assert optimum > 1.5 * true_return(obs0[0].numpy(), np.zeros(horizon))  # far better than doing nothing


def test_random_shooting_does_no_better_than_pets_at_equal_budget() -> None:
    obs0 = th.tensor([[1.5, 0.0], [-0.8, 0.6], [0.3, -1.0]])
    rollout = make_rollout(horizon=15)
    pets_returns, rs_returns = [], []
    for seed in range(3):
        gen = th.Generator().manual_seed(seed)
        pets = ActionSequencePlanner(rollout, CEMOptimizer(100, 10, 5), 1, 0.5).plan(obs0, generator=gen)
        rs = RandomShootingPlanner(rollout, CEMOptimizer(500, 1, 1), 1, 1.0, return_mean=False).plan(obs0, generator=gen)
        for i in range(3):
            pets_returns.append(true_return(obs0[i].numpy(), pets.mean[i].numpy()))
            rs_returns.append(true_return(obs0[i].numpy(), rs.mean[i].numpy()))
    assert np.mean(rs_returns) <= np.mean(pets_returns)


def test_policy_control_is_evaluated_during_learning(tiny_kwargs: dict[str, Any]) -> None:
    tiny_kwargs.update(learning_starts=50)
    model = POPLIN_P("MlpPolicy", "Pendulum-v1", policy_eval_freq=100, policy_eval_episodes=1, seed=0, **tiny_kwargs)
    model.learn(200)
    steps = [entry[0] for entry in model.policy_control_history]
    assert steps == [100, 200]
    assert all(-2000 < entry[1] <= 0 for entry in model.policy_control_history)
