"""MPPI (sb3_poplin.common.mppi): its filtered noise, a plain reference implementation, and planning on a known model."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th

from sb3_poplin import PETS, POPLIN_P
from sb3_poplin.common import mppi
from sb3_poplin.common.cem import CEMOptimizer
from sb3_poplin.common.mppi import MPPIOptimizer, filtered_normal
from sb3_poplin.common.planners import ActionSequencePlanner, PolicyActionPlanner, PolicyParameterPlanner
from sb3_poplin.common.policies import PolicyNetwork
from tests.test_planning import make_rollout, true_return


def test_filtered_noise_follows_its_recursion_and_is_white_at_keep_one() -> None:
    drawn = th.randn((3, 4 * 2), generator=th.Generator().manual_seed(5))
    assert th.equal(filtered_normal((3, 8), 4, 1.0, th.Generator().manual_seed(5)), drawn)
    assert th.equal(filtered_normal((3, 8), 1, 0.5, th.Generator().manual_seed(5)), drawn), "no time axis: white"
    filtered = filtered_normal((3, 8), 4, 0.3, th.Generator().manual_seed(5)).view(3, 4, 2)
    white = drawn.view(3, 4, 2)
    expected = 0.3 * white[:, 0]
    th.testing.assert_close(filtered[:, 0], expected)
    for t in range(1, 4):
        expected = 0.3 * white[:, t] + 0.7 * expected
        th.testing.assert_close(filtered[:, t], expected)


def test_a_smaller_keep_gives_smoother_noise() -> None:
    correlations = []
    for keep in (1.0, 0.6, 0.2):
        noise = filtered_normal((20_000, 15), 15, keep, th.Generator().manual_seed(0)).numpy()
        correlations.append(float(np.corrcoef(noise[:, 10], noise[:, 11])[0, 1]))
    assert abs(correlations[0]) < 0.03
    # Stationary lag-one correlation of the recursion: 1 - keep
    np.testing.assert_allclose(correlations[1:], [0.4, 0.8], atol=0.03)


def _reference_mppi(objective, mean: np.ndarray, var: np.ndarray, noises: list[np.ndarray], opt: MPPIOptimizer) -> dict:
    """MPPI for one env, written as loops over plain arrays, reading its (filtered) normals from ``noises``."""
    best, best_return = None, -np.inf
    for i in range(opt.n_iterations):
        candidates = [np.clip(mean + np.sqrt(var) * noises[i][j], -1.0, 1.0) for j in range(opt.population_size)]
        returns = np.array([objective(c) for c in candidates])
        weights = np.exp(opt.gamma * (returns - returns.max()))
        weights /= weights.sum()
        mean = sum(w * c for w, c in zip(weights, candidates))
        if returns.max() > best_return:
            best, best_return = candidates[int(np.argmax(returns))], returns.max()
    return dict(mean=mean, var=var, best=best)


def test_mppi_equals_a_plain_reference_implementation(monkeypatch) -> None:
    opt = MPPIOptimizer(population_size=12, n_elites=3, n_iterations=3, gamma=2.0, keep=0.6)
    target = th.linspace(-0.6, 0.6, 8, dtype=th.float64)
    drawn: list[th.Tensor] = []
    original = mppi.filtered_normal

    def recorded(*args: Any, **kwargs: Any) -> th.Tensor:
        drawn.append(original(*args, **kwargs).double())
        return drawn[-1]

    monkeypatch.setattr(mppi, "filtered_normal", recorded)
    mean = th.tensor([[0.1] * 8, [-0.2] * 8], dtype=th.float64)
    var = th.full((2, 8), 0.3, dtype=th.float64)
    result = opt.optimize(lambda x: -(x - target).square().sum(-1), mean, var, -th.ones(8), th.ones(8), th.Generator(), 4)
    for env in range(2):
        reference = _reference_mppi(
            lambda x: -float(np.sum((x - target.numpy()) ** 2)),
            mean[env].numpy(),
            var[env].numpy(),
            [noise[env].numpy() for noise in drawn],
            opt,
        )
        for key in ("mean", "var", "best"):
            np.testing.assert_allclose(getattr(result, key)[env].numpy(), reference[key], rtol=1e-10, atol=1e-12, err_msg=key)
    assert result.evaluations == 36 and result.iterations == 3 and result.elites.shape == (2, 3, 8)


def test_an_env_whose_candidates_all_diverge_keeps_its_mean() -> None:
    mean = th.tensor([[0.2, 0.2], [0.4, 0.4]])

    def evaluate(x: th.Tensor) -> th.Tensor:
        returns = -x.square().sum(-1)
        returns[1] = float("nan")  # env 1's model diverges on every candidate
        return returns

    result = MPPIOptimizer(20, 2, 2).optimize(evaluate, mean, th.full((2, 2), 0.1), generator=th.Generator().manual_seed(0))
    assert th.equal(result.mean[1], mean[1]) and th.isfinite(result.mean).all()
    assert not th.allclose(result.mean[0], mean[0])


def test_mppi_beats_random_shooting_with_the_same_budget() -> None:
    obs0 = th.tensor([[1.5, -0.3], [-1.0, 0.5]])
    mppi_returns, rs_returns = [], []
    for seed in range(3):
        generator = th.Generator().manual_seed(seed)
        rollout = make_rollout(20)
        planner = ActionSequencePlanner(rollout, MPPIOptimizer(100, 10, 5, gamma=5.0), act_dim=1, init_sigma=0.5)
        rs = ActionSequencePlanner(rollout, CEMOptimizer(500, 1, 1), act_dim=1, init_sigma=0.5, return_mean=False)
        for each, store in ((planner, mppi_returns), (rs, rs_returns)):
            out = each.plan(obs0, generator=generator)
            store += [true_return(obs0[i].numpy(), out.mean[i].numpy()) for i in range(2)]
    assert np.mean(mppi_returns) > np.mean(rs_returns) + 0.1 * abs(np.mean(rs_returns)), (mppi_returns, rs_returns)


@pytest.mark.parametrize(
    "make_planner",
    [
        lambda r, o, p: PolicyActionPlanner(r, o, 1, 0.5, p, "init"),
        lambda r, o, p: PolicyParameterPlanner(r, o, 1, 0.3, p, "uni"),
        lambda r, o, p: PolicyParameterPlanner(r, o, 1, 0.3, p, "sep"),
        lambda r, o, p: ActionSequencePlanner(r, o, 1, 0.5),
    ],
    ids=["A-init", "P-uni", "P-sep", "PETS"],
)
def test_every_planner_improves_on_its_starting_point_with_mppi(make_planner) -> None:
    th.manual_seed(0)
    rollout = make_rollout(15)
    planner = make_planner(rollout, MPPIOptimizer(200, 20, 4, gamma=5.0), PolicyNetwork(2, 1, [16]))
    assert planner.return_mean, "MPPI executes its weighted mean"
    obs0 = th.tensor([[1.5, 0.0], [-1.0, -0.5]])
    out = planner.plan(obs0, generator=th.Generator().manual_seed(1))
    context = planner.prepare(obs0)

    def predicted(plan: th.Tensor) -> th.Tensor:
        return rollout.evaluate(obs0, 1, planner.action_fn(plan.unsqueeze(1), context))[:, 0]

    assert (predicted(out.mean) > predicted(planner.initial_mean(2, obs0.device)) + 0.5).all()
    assert out.action[0, 0] < 0 and out.action[1, 0] > 0


@pytest.mark.parametrize("algo", [PETS, POPLIN_P])
def test_mppi_models_predict_repeatably_and_identically_after_save_load(algo: type, tmp_path) -> None:
    kwargs = dict(optimizer="mppi", mppi_gamma=3.0, population_size=30, n_elites=6, horizon=5, cem_iterations=2)
    kwargs |= dict(learning_starts=100, ensemble_size=2, dynamics_net_arch=[16], dynamics_min_updates=0, seed=0)
    if algo is not PETS:
        kwargs |= dict(policy_kwargs=dict(net_arch=[8]), policy_epochs=2)
    model = algo("MlpPolicy", "Pendulum-v1", **kwargs).learn(200)
    assert isinstance(model.planner.optimizer, MPPIOptimizer) and model.planner.optimizer.gamma == 3.0
    obs = np.stack([gym.make("Pendulum-v1").reset(seed=s)[0] for s in range(2)])
    first, _ = model.predict(obs, deterministic=True)
    model.save(tmp_path / "mppi.zip")
    loaded = algo.load(tmp_path / "mppi.zip")
    assert loaded.optimizer == "mppi" and loaded.mppi_gamma == 3.0
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], first)
    with pytest.raises(ValueError, match=r"mppi_gamma is an option of optimizer='mppi'"):
        PETS("MlpPolicy", "Pendulum-v1", mppi_gamma=3.0)
