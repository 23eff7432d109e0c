"""iCEM (sb3_poplin.common.icem): its coloured noise, a plain reference implementation, and planning on a known model."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th

from sb3_poplin import PETS, POPLIN_A, POPLIN_P
from sb3_poplin.common import icem
from sb3_poplin.common.cem import CEMOptimizer
from sb3_poplin.common.icem import ICEMOptimizer, coloured_normal, first_population_for
from sb3_poplin.common.planners import ActionSequencePlanner, PolicyActionPlanner, PolicyParameterPlanner
from sb3_poplin.common.policies import PolicyNetwork
from tests.test_planning import make_rollout, true_return


def _lag_one_correlation(noise: np.ndarray) -> float:
    """Mean correlation of consecutive time steps of noise ``[n, steps]``."""
    return float(np.mean([np.corrcoef(noise[:, t], noise[:, t + 1])[0, 1] for t in range(noise.shape[1] - 1)]))


@pytest.mark.parametrize("steps", [15, 30])
def test_coloured_noise_has_unit_variance_and_is_smoother_for_a_larger_beta(steps: int) -> None:
    correlations = []
    for beta in (0.0, 1.0, 2.5):
        noise = coloured_normal((20_000, steps * 2), steps, beta, th.Generator().manual_seed(0))
        # [n, steps, block=2]: every coordinate of a step's block is coloured over the steps
        per_step = noise.view(-1, steps, 2)
        assert per_step.var(dim=0).mean().item() == pytest.approx(1.0, abs=0.03)
        correlations.append(_lag_one_correlation(per_step[:, :, 1].numpy()))
    assert abs(correlations[0]) < 0.03
    assert correlations[0] < correlations[1] - 0.2 < correlations[2] - 0.4, correlations


@pytest.mark.parametrize("steps", [15, 30])
def test_the_colouring_is_the_spectrum_s_filter_applied_to_the_same_white_noise(steps: int) -> None:
    beta, block = 2.5, 3
    noise = coloured_normal((4, 7, steps * block), steps, beta, th.Generator().manual_seed(5))
    white = th.randn((4, 7, steps * block), generator=th.Generator().manual_seed(5))
    # The filter written out: each block coordinate's series over time, through the real FFT, scaled by f^(-beta / 2)
    # (held at the lowest non-zero frequency below it) and normalised to unit variance
    over_time = white.view(4, 7, steps, block).transpose(-1, -2).double()
    frequencies = np.maximum(np.fft.rfftfreq(steps), 1.0 / steps)
    amplitude = frequencies ** (-beta / 2.0)
    counts = np.full_like(amplitude, 2.0)
    counts[0] = 1.0
    if steps % 2 == 0:
        counts[-1] = 1.0
    amplitude /= np.sqrt((counts * amplitude**2).sum() / steps)
    filtered = np.fft.irfft(np.fft.rfft(over_time.numpy(), axis=-1) * amplitude, n=steps, axis=-1)
    expected = th.from_numpy(filtered).transpose(-1, -2).reshape(4, 7, steps * block).float()
    assert th.allclose(noise, expected, atol=1e-5)


def test_white_noise_and_noise_without_time_are_plain_normals() -> None:
    drawn = th.randn((4, 6), generator=th.Generator().manual_seed(3))
    assert th.equal(coloured_normal((4, 6), 3, 0.0, th.Generator().manual_seed(3)), drawn)
    assert th.equal(coloured_normal((4, 6), 1, 2.0, th.Generator().manual_seed(3)), drawn)


def test_populations_shrink_to_twice_the_elites() -> None:
    assert ICEMOptimizer(100, 10, 3).populations() == [100, 80, 64]
    assert ICEMOptimizer(100, 30, 5, decay=2.0).populations() == [100, 60, 60, 60, 60]
    assert ICEMOptimizer(10, 10, 2).populations() == [10, 10]


def test_the_first_population_that_matches_cem_s_budget() -> None:
    assert first_population_for(300, 10, 3) == 123  # 123 + 98 + 78 = 299, CEM's 3 x 100 (124 would score 302)
    first = first_population_for(2500, 50, 5)
    totals = {n: sum(ICEMOptimizer(n, 50, 5).populations()) for n in (first - 1, first, first + 1)}
    assert abs(totals[first] - 2500) <= min(abs(totals[first - 1] - 2500), abs(totals[first + 1] - 2500))


def _reference_icem(
    objective, mean: np.ndarray, var: np.ndarray, noises: list[np.ndarray], carried: np.ndarray | None, opt: ICEMOptimizer
) -> dict[str, Any]:
    """iCEM for one env, written as loops over plain arrays, reading its standard normals from ``noises``."""
    kept = int(opt.keep_elites * opt.n_elites)
    best, best_return, elites = None, -np.inf, None
    for i, population in enumerate(opt.populations()):
        candidates = [mean + np.sqrt(np.maximum(var, opt.min_var)) * noises[i][j] for j in range(population)]
        previous = carried if i == 0 else elites[:kept]
        for j in range(min(kept, population - 1)):
            if previous is not None and np.all(np.isfinite(previous[j])):
                candidates[population - 1 - kept + j] = previous[j]
        if i == opt.n_iterations - 1:
            candidates[-1] = mean.copy()
        candidates = [np.clip(c, -1.0, 1.0) for c in candidates]
        returns = [objective(c) for c in candidates]
        order = sorted(range(population), key=lambda j: -returns[j])[: opt.n_elites]
        elites = np.stack([candidates[j] for j in order])
        if returns[order[0]] > best_return:
            best, best_return = candidates[order[0]], returns[order[0]]
        elite_mean, elite_var = elites.mean(0), elites.var(0)
        mean = opt.alpha * mean + (1 - opt.alpha) * elite_mean
        var = opt.alpha * var + (1 - opt.alpha) * elite_var
    return dict(mean=mean, var=var, best=best, carried=elites[:kept])


def test_icem_equals_a_plain_reference_implementation(monkeypatch) -> None:
    opt = ICEMOptimizer(population_size=12, n_elites=4, n_iterations=3, alpha=0.2, beta=1.5, keep_elites=0.5, decay=1.3)
    target = th.linspace(-0.6, 0.6, 8, dtype=th.float64)
    drawn: list[th.Tensor] = []
    original = icem.coloured_normal

    def recorded(*args: Any, **kwargs: Any) -> th.Tensor:
        drawn.append(original(*args, **kwargs).double())
        return drawn[-1].clone()  # the optimizer turns its noise into samples in place

    monkeypatch.setattr(icem, "coloured_normal", recorded)
    mean = th.tensor([[0.1] * 8, [-0.2] * 8], dtype=th.float64)
    var = th.full((2, 8), 0.3, dtype=th.float64)
    carried = th.full((2, 2, 8), float("nan"), dtype=th.float64)
    carried[0] = 0.05  # env 0 carries two candidates from a previous plan, env 1 none (a new episode)
    result = opt.optimize(
        lambda x: -(x - target).square().sum(-1), mean, var, -th.ones(8), th.ones(8), th.Generator().manual_seed(0), 4, carried
    )
    for env in range(2):
        reference = _reference_icem(
            lambda x: -float(np.sum((x - target.numpy()) ** 2)),
            mean[env].numpy(),
            var[env].numpy(),
            [noise[env].numpy() for noise in drawn],
            carried[env].numpy(),
            opt,
        )
        for key in ("mean", "var", "best", "carried"):
            got = getattr(result, key)[env].numpy()
            np.testing.assert_allclose(got, reference[key], rtol=1e-10, atol=1e-12, err_msg=key)
    assert result.evaluations == sum(opt.populations()) == 12 + 9 + 8 and result.iterations == 3


def test_icem_beats_random_shooting_with_the_same_budget() -> None:
    obs0 = th.tensor([[1.5, -0.3], [-1.0, 0.5]])
    icem_returns, rs_returns = [], []
    for seed in range(3):
        generator = th.Generator().manual_seed(seed)
        rollout = make_rollout(20)
        optimizer = ICEMOptimizer(100, 10, 5)
        planner = ActionSequencePlanner(rollout, optimizer, act_dim=1, init_sigma=0.5)
        budget = sum(optimizer.populations())
        rs = ActionSequencePlanner(rollout, CEMOptimizer(budget, 1, 1), act_dim=1, init_sigma=0.5, return_mean=False)
        for each, store in ((planner, icem_returns), (rs, rs_returns)):
            out = each.plan(obs0, generator=generator)
            store += [true_return(obs0[i].numpy(), out.mean[i].numpy()) for i in range(2)]
    assert np.mean(icem_returns) > np.mean(rs_returns) + 0.1 * abs(np.mean(rs_returns)), (icem_returns, rs_returns)


@pytest.mark.parametrize(
    "make_planner",
    [
        lambda r, o, p: PolicyActionPlanner(r, o, 1, 0.5, p, "init"),
        lambda r, o, p: PolicyActionPlanner(r, o, 1, 0.5, p, "replan"),
        lambda r, o, p: PolicyParameterPlanner(r, o, 1, 0.3, p, "uni"),
        lambda r, o, p: PolicyParameterPlanner(r, o, 1, 0.3, p, "sep"),
        lambda r, o, p: ActionSequencePlanner(r, o, 1, 0.5),
    ],
    ids=["A-init", "A-replan", "P-uni", "P-sep", "PETS"],
)
def test_every_planner_improves_on_its_starting_point_with_icem(make_planner) -> None:
    th.manual_seed(0)
    rollout = make_rollout(15)
    planner = make_planner(rollout, ICEMOptimizer(200, 20, 4), PolicyNetwork(2, 1, [16]))
    assert not planner.return_mean, "iCEM executes its best candidate unless told otherwise"
    obs0 = th.tensor([[1.5, 0.0], [-1.0, -0.5]])
    out = planner.plan(obs0, generator=th.Generator().manual_seed(1))
    context = planner.prepare(obs0)

    def predicted(plan: th.Tensor) -> th.Tensor:
        return rollout.evaluate(obs0, 1, planner.action_fn(plan.unsqueeze(1), context))[:, 0]

    assert (predicted(out.mean) > predicted(planner.initial_mean(2, obs0.device)) + 0.5).all()
    assert out.action[0, 0] < 0 and out.action[1, 0] > 0
    # The next search starts from this one's final mean, not from the executed best candidate (Pinneri et al.); the
    # kept elites ride in the warm start, shifted like the mean; the next plan reads them back.
    assert out.search_mean is not None and not th.equal(out.search_mean, out.mean)
    assert out.carried is not None and out.carried.shape == (2, 6, planner.noise_dim)
    warm = planner.warm_start_after(out)
    mean, carried = planner.split_warm_start(warm)
    step = planner.step_noise_dim if planner.sequential else 0
    assert th.equal(mean[:, : planner.noise_dim - step], out.search_mean[:, step:])
    assert carried is not None and th.equal(carried[:, :, : planner.noise_dim - step], out.carried[:, :, step:])
    assert th.isfinite(planner.plan(obs0, warm, th.Generator().manual_seed(2)).action).all()


def test_starting_each_search_from_the_executed_sample_walks_poplin_p_s_weights_away() -> None:
    """With the best candidate executed, a search started from it (``cem_warm_start="executed"``) carries one sample's
    noise into every next step: in POPLIN-P Sep's parameter space the perturbation of the weights the next step plans
    around grows about twice as large as from the search's mean (the iCEM rule, the default)."""
    norms = {}
    for warm_from_executed in (False, True):
        th.manual_seed(0)
        policy_net = PolicyNetwork(2, 1, [32, 32])
        planner = PolicyParameterPlanner(make_rollout(15), ICEMOptimizer(60, 10, 3), 1, 0.3, policy_net, "sep")
        planner.warm_from_executed = warm_from_executed
        obs0, generator, warm = th.tensor([[1.5, 0.0]]), th.Generator().manual_seed(0), None
        for _ in range(12):
            out = planner.plan(obs0, warm, generator)
            warm = planner.warm_start_after(out)
            if warm_from_executed:
                assert th.equal(out.search_mean, out.mean)
        # the parameter noise the next executed step starts its search around [n_params]
        norms[warm_from_executed] = warm[0, : planner.step_noise_dim].norm().item()
    assert norms[True] > 1.5 * norms[False], norms


def test_the_warm_start_option_reaches_the_planner() -> None:
    kwargs = dict(optimizer="icem", population_size=30, n_elites=6, horizon=5, cem_iterations=2, ensemble_size=2)
    assert not POPLIN_P("MlpPolicy", "Pendulum-v1", **kwargs).planner.warm_from_executed
    assert POPLIN_P("MlpPolicy", "Pendulum-v1", cem_warm_start="executed", **kwargs).planner.warm_from_executed
    with pytest.raises(ValueError, match="cem_warm_start"):
        POPLIN_P("MlpPolicy", "Pendulum-v1", cem_warm_start="best", **kwargs)


def test_a_new_episode_carries_nothing() -> None:
    planner = ActionSequencePlanner(make_rollout(5), ICEMOptimizer(20, 4, 2, keep_elites=0.5), 1, 0.5)
    warm = planner.initial_warm_start(3, th.device("cpu"))
    assert warm.shape == (3, 5 * 3) and th.isnan(warm[:, 5:]).all() and th.equal(warm[:, :5], th.zeros(3, 5))
    cem_planner = ActionSequencePlanner(make_rollout(5), CEMOptimizer(20, 4, 2), 1, 0.5)
    assert cem_planner.initial_warm_start(3, th.device("cpu")).shape == (3, 5), "CEM's warm start is the mean alone"


@pytest.mark.parametrize("algo", [PETS, POPLIN_A, POPLIN_P])
def test_icem_models_predict_repeatably_and_identically_after_save_load(algo: type, tmp_path) -> None:
    kwargs = dict(optimizer="icem", population_size=30, n_elites=6, horizon=5, cem_iterations=2, learning_starts=100)
    kwargs |= dict(ensemble_size=2, dynamics_net_arch=[16], dynamics_min_updates=0, seed=0)
    if algo is not PETS:
        kwargs |= dict(policy_kwargs=dict(net_arch=[8]), policy_epochs=2)
    model = algo("MlpPolicy", "Pendulum-v1", **kwargs).learn(200)
    assert model.planner.optimizer.name == "icem" and not model.planner.return_mean
    obs = np.stack([gym.make("Pendulum-v1").reset(seed=s)[0] for s in range(2)])
    first, state = model.predict(obs, deterministic=True)
    second, state = model.predict(obs, state=state, episode_start=np.zeros(2, bool), deterministic=True)
    assert np.isfinite(state[0]).all(), "the second plan carries the first plan's elites"
    model.save(tmp_path / "icem.zip")
    loaded = algo.load(tmp_path / "icem.zip")
    assert loaded.optimizer == "icem" and loaded.planner.optimizer.n_carried == model.planner.optimizer.n_carried
    again, _ = loaded.predict(obs, deterministic=True)
    np.testing.assert_array_equal(again, first)
    starts = np.zeros(2, bool)
    step, _ = loaded.predict(obs, state=model.predict(obs, deterministic=True)[1], episode_start=starts, deterministic=True)
    np.testing.assert_array_equal(step, second)
