"""CEM, rollouts and planners on a known analytic model (no learning involved)."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th

from sb3_poplin.common.cem import CEMOptimizer
from sb3_poplin.common.planners import ActionSequencePlanner, PolicyActionPlanner, PolicyParameterPlanner
from sb3_poplin.common.policies import PolicyNetwork
from sb3_poplin.common.rollout import ModelRollout

DT = 0.1


class PointMassModel:
    """Exact dynamics of a 1-D point mass with the ensemble's planning interface: obs (x, v), action a (force)."""

    def __init__(self, n_elite_members: int = 1, logvar: float = -30.0) -> None:
        self.n_elite_members = n_elite_members
        self.out_dim = 2
        self.logvar = logvar

    def forward_elites(self, inputs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        v, a = inputs[..., 1], inputs[..., 2]
        delta = th.stack([v * DT, a * DT], dim=-1)
        return delta, th.full_like(delta, self.logvar)


def point_mass_reward(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
    return -(next_obs[..., 0] ** 2) - 0.1 * next_obs[..., 1] ** 2 - 0.01 * action[..., 0] ** 2


def true_return(obs0: np.ndarray, actions: np.ndarray) -> float:
    """Return of an open-loop action sequence on the real point mass."""
    x, v = obs0
    total = 0.0
    for a in np.clip(actions, -1, 1):
        x, v = x + v * DT, v + a * DT
        total += -(x**2) - 0.1 * v**2 - 0.01 * a**2
    return float(total)


def make_rollout(horizon: int = 20, **kwargs) -> ModelRollout:
    return ModelRollout(
        PointMassModel(kwargs.pop("n_elite_members", 1)),  # type: ignore[arg-type]
        point_mass_reward,
        kwargs.pop("termination_fn", None),
        horizon=horizon,
        action_low=-th.ones(1),
        action_high=th.ones(1),
        **kwargs,
    )


def test_cem_beats_random_shooting_with_the_same_budget() -> None:
    obs0 = th.tensor([[1.5, -0.3], [-1.0, 0.5]])
    horizon = 20
    cem_returns, rs_returns = [], []
    for seed in range(3):
        gen = th.Generator().manual_seed(seed)
        rollout = make_rollout(horizon)
        cem = ActionSequencePlanner(rollout, CEMOptimizer(100, 10, 5, alpha=0.1), act_dim=1, init_sigma=0.5)
        # Random shooting: one iteration of the same total number of candidates, best sample executed.
        rs = ActionSequencePlanner(rollout, CEMOptimizer(500, 1, 1), act_dim=1, init_sigma=0.5, return_mean=False)
        for planner, store in ((cem, cem_returns), (rs, rs_returns)):
            out = planner.plan(obs0, generator=gen)
            for i in range(2):
                store.append(true_return(obs0[i].numpy(), out.mean[i].numpy()))
    assert np.mean(cem_returns) > np.mean(rs_returns) + 0.1 * abs(np.mean(rs_returns)), (cem_returns, rs_returns)


def test_cem_returns_the_elite_mean_and_respects_bounds() -> None:
    gen = th.Generator().manual_seed(0)
    cem = CEMOptimizer(population_size=64, n_elites=8, n_iterations=1, alpha=0.0)
    seen = []

    def evaluate(samples: th.Tensor) -> th.Tensor:
        seen.append(samples.clone())
        return -(samples - 0.3).pow(2).sum(-1)

    lower, upper = -th.ones(3), th.ones(3)
    result = cem.optimize(evaluate, th.zeros(2, 3), th.full((2, 3), 4.0), lower, upper, gen)
    samples = seen[0]
    assert samples.min() >= -1 and samples.max() <= 1
    # alpha=0: the new mean is exactly the mean of the top-8 samples (not the best one).
    top = th.topk(-(samples - 0.3).pow(2).sum(-1), 8, dim=1).indices
    expected = th.gather(samples, 1, top.unsqueeze(-1).expand(-1, -1, 3)).mean(1)
    assert th.allclose(result.mean, expected)
    assert not th.allclose(result.mean, result.best)


def test_cem_ranks_nan_returns_last() -> None:
    gen = th.Generator().manual_seed(0)
    cem = CEMOptimizer(population_size=16, n_elites=4, n_iterations=1, alpha=0.0)

    def evaluate(samples: th.Tensor) -> th.Tensor:
        returns = -samples.pow(2).sum(-1)
        returns[:, :8] = float("nan")
        return returns

    result = cem.optimize(evaluate, th.zeros(1, 2), th.ones(1, 2), generator=gen)
    assert th.isfinite(result.elite_returns).all() and th.isfinite(result.mean).all()


def test_termination_stops_reward_accumulation() -> None:
    # Terminates as soon as x' < 0.9: from x=1 and v=-1, that is the second step.
    rollout = make_rollout(horizon=5, termination_fn=lambda o, a, n: n[..., 0] < 0.9)
    obs0 = th.tensor([[1.0, -1.0]])
    returns = rollout.evaluate(obs0, 1, lambda t, s: th.zeros(*s.shape[:-1], 1))
    x1, x2 = 0.9, 0.8  # positions after steps 1 and 2 with zero force
    expected = -(x1**2) - 0.1 - (x2**2) - 0.1
    assert returns.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("propagation", ["expectation", "fixed_model", "random_model"])
def test_propagation_modes_agree_on_a_noiseless_model(propagation: str) -> None:
    rollout = make_rollout(horizon=6, n_elite_members=2, propagation=propagation, num_particles=4)
    obs0 = th.tensor([[0.5, 0.2], [-0.3, 0.1]])
    actions = th.linspace(-1, 1, 6)
    returns = rollout.evaluate(obs0, 3, lambda t, s: actions[t].expand(*s.shape[:-1], 1))
    reference = [true_return(obs0[i].numpy(), actions.numpy()) for i in range(2)]
    assert returns.shape == (2, 3)
    assert np.allclose(returns.numpy(), np.array(reference)[:, None], atol=1e-4)


def test_sampled_propagation_needs_particles_per_member() -> None:
    with pytest.raises(ValueError, match="multiple"):
        make_rollout(n_elite_members=3, propagation="TSinf", num_particles=4)
    with pytest.raises(ValueError, match="propagation"):
        make_rollout(propagation="DS")


def test_sampled_propagation_spreads_particles() -> None:
    model = PointMassModel(n_elite_members=2, logvar=np.log(0.01))
    rollout = ModelRollout(model, point_mass_reward, None, 3, -th.ones(1), th.ones(1), "random_model", num_particles=4)  # type: ignore[arg-type]
    obs = th.zeros(4, 10, 2)
    next_obs, _ = rollout.predict_next(obs, th.zeros(4, 10, 1), th.Generator().manual_seed(0))
    assert next_obs.std() > 0.05  # std 0.1 noise per dimension reached every particle


def test_parameter_planner_batched_weights_equal_a_per_candidate_loop() -> None:
    th.manual_seed(0)
    policy = PolicyNetwork(2, 1, [8])
    policy.fit_obs_normalizer(th.randn(50, 2) * 2 + 1)
    for variant in ("uni", "sep"):
        planner = PolicyParameterPlanner(make_rollout(4), CEMOptimizer(5, 2, 1), 1, 0.1, policy, variant)
        noise = 0.3 * th.randn(2, 5, planner.noise_dim)  # [n_envs, K, noise_dim]
        states = th.randn(3, 2, 5, 2)  # [P, n_envs, K, obs_dim]
        theta = planner.prepare(states[0, :, 0])
        fn = planner.action_fn(noise, theta)
        for t in (0, 3):
            batched = fn(t, states)
            for env in range(2):
                for k in range(5):
                    reference = PolicyNetwork(2, 1, [8])
                    reference.load_state_dict(policy.state_dict())
                    step = noise[env, k].view(-1, policy.n_params)[0 if variant == "uni" else t]
                    reference.set_flat_parameters(theta + step)
                    with th.no_grad():
                        expected = reference(states[:, env, k])
                    assert th.allclose(batched[:, env, k], expected, atol=1e-5)


def test_forward_batched_with_a_shared_base_equals_the_summed_parameters() -> None:
    # POPLIN-P sep passes theta as ``base`` instead of materialising theta + noise: equal up to rounding.
    th.manual_seed(0)
    policy = PolicyNetwork(3, 2, [8, 5]).double()
    policy.fit_obs_normalizer(th.randn(50, 3, dtype=th.float64) * 2 + 1)
    theta = policy.flat_parameters().detach()
    noise = 0.3 * th.randn(4, policy.n_params, dtype=th.float64)  # [C, n_params]
    obs = th.randn(4, 6, 3, dtype=th.float64)  # [C, P, obs_dim]
    th.testing.assert_close(policy.forward_batched(obs, noise, theta), policy.forward_batched(obs, noise + theta))


@pytest.mark.parametrize(
    "make_planner",
    [
        lambda r, c, p: PolicyActionPlanner(r, c, 1, 0.5, p, "init"),
        lambda r, c, p: PolicyActionPlanner(r, c, 1, 0.5, p, "replan"),
        lambda r, c, p: PolicyParameterPlanner(r, c, 1, 0.3, p, "uni"),
        lambda r, c, p: PolicyParameterPlanner(r, c, 1, 0.3, p, "sep"),
        lambda r, c, p: ActionSequencePlanner(r, c, 1, 0.5),
    ],
    ids=["A-init", "A-replan", "P-uni", "P-sep", "PETS"],
)
def test_planners_improve_on_their_starting_point(make_planner) -> None:
    th.manual_seed(0)
    policy = PolicyNetwork(2, 1, [16])
    rollout = make_rollout(15)
    planner = make_planner(rollout, CEMOptimizer(200, 20, 5), policy)
    planner.elite_actions = 20
    obs0 = th.tensor([[1.5, 0.0], [-1.0, -0.5]])
    gen = th.Generator().manual_seed(1)
    out = planner.plan(obs0, generator=gen)
    context = planner.prepare(obs0)
    zero = planner.initial_mean(2, obs0.device)

    def predicted(mean: th.Tensor) -> th.Tensor:
        return rollout.evaluate(obs0, 1, planner.action_fn(mean.unsqueeze(1), context))[:, 0]

    assert (predicted(out.mean) > predicted(zero) + 0.5).all()
    # Far right: push left; far left moving left: push right.
    assert out.action[0, 0] < 0 and out.action[1, 0] > 0
    assert out.action.abs().max() <= 1.0
    assert out.executed_noise.shape == (2, planner.step_noise_dim)
    assert out.elite_first_actions.shape == (2, 20, 1)


def test_warm_start_shifts_sequences_and_keeps_uniform_noise() -> None:
    policy = PolicyNetwork(2, 1, [4])
    sep = PolicyParameterPlanner(make_rollout(3), CEMOptimizer(4, 2, 1), 1, 0.1, policy, "sep")
    uni = PolicyParameterPlanner(make_rollout(3), CEMOptimizer(4, 2, 1), 1, 0.1, policy, "uni")
    mean = th.arange(sep.noise_dim, dtype=th.float32).unsqueeze(0)
    shifted = sep.warm_start(mean)
    n = policy.n_params
    assert th.equal(shifted[0, : 2 * n], mean[0, n:]) and (shifted[0, 2 * n :] == 0).all()
    uni_mean = th.randn(1, uni.noise_dim)
    assert th.equal(uni.warm_start(uni_mean), uni_mean)


def test_elite_first_actions_only_when_asked_and_best_first() -> None:
    """The planner skips the elites' first actions unless a distillation asks for them (POPLIN-A's bc_elite_actions)."""
    policy = PolicyNetwork(2, 1, [16])
    planner = PolicyActionPlanner(make_rollout(10), CEMOptimizer(60, 8, 3), 1, 0.5, policy, "init")
    obs0 = th.tensor([[1.5, 0.0], [-1.0, -0.5]])
    assert planner.plan(obs0, generator=th.Generator().manual_seed(1)).elite_first_actions is None
    planner.elite_actions = 8
    every = planner.plan(obs0, generator=th.Generator().manual_seed(1))
    planner.elite_actions = 3
    best = planner.plan(obs0, generator=th.Generator().manual_seed(1))
    assert every.elite_first_actions is not None and best.elite_first_actions is not None
    assert best.elite_first_actions.shape == (2, 3, 1)
    th.testing.assert_close(best.elite_first_actions, every.elite_first_actions[:, :3])
    assert th.equal(best.action, every.action)


def _quadratic(samples: th.Tensor) -> th.Tensor:
    return -(samples - 0.3).pow(2).sum(-1)


def test_cem_early_stop_with_zero_tolerance_equals_full_cem() -> None:
    full, zero_tol = CEMOptimizer(64, 8, 6, alpha=0.1), CEMOptimizer(64, 8, 6, alpha=0.1, early_stop_tol=0.0)
    mean, var = th.zeros(2, 5), th.full((2, 5), 0.25)
    a = full.optimize(_quadratic, mean, var, generator=th.Generator().manual_seed(3))
    b = zero_tol.optimize(_quadratic, mean, var, generator=th.Generator().manual_seed(3))
    assert a.iterations == b.iterations == 6
    assert th.equal(a.mean, b.mean) and th.equal(a.var, b.var) and th.equal(a.elites, b.elites)


def test_cem_early_stop_ends_when_the_mean_stops_moving_and_keeps_what_it_found() -> None:
    mean, var = th.zeros(2, 5), th.full((2, 5), 0.25)
    shifts = []
    n_iterations = 30
    early = CEMOptimizer(64, 8, n_iterations, alpha=0.1, early_stop_tol=0.05)
    result = early.optimize(_quadratic, mean, var, generator=th.Generator().manual_seed(3))
    assert 1 < result.iterations < n_iterations, "the mean stops moving long before 30 iterations"
    # The same draws with a fixed count of that many iterations give the same distribution: stopping changes nothing else.
    fixed = CEMOptimizer(64, 8, result.iterations, alpha=0.1).optimize(
        _quadratic, mean, var, generator=th.Generator().manual_seed(3)
    )
    assert th.equal(result.mean, fixed.mean) and th.equal(result.var, fixed.var)

    # The last iteration's move is within the tolerance (RMS in initial standard deviations), the one before is not.
    def mean_after(k: int) -> th.Tensor:
        if k == 0:
            return mean
        return CEMOptimizer(64, 8, k, alpha=0.1).optimize(_quadratic, mean, var, generator=th.Generator().manual_seed(3)).mean

    for n in (result.iterations - 1, result.iterations):
        shifts.append(((mean_after(n) - mean_after(n - 1)).square().mean(dim=1).sqrt() / 0.5).max().item())
    assert shifts[1] <= 0.05 < shifts[0]
    assert (result.mean - 0.3).abs().max() < 0.1, "it stopped near the optimum"


def test_cem_early_stop_tolerance_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="early_stop_tol"):
        CEMOptimizer(10, 2, 3, early_stop_tol=-0.1)


def test_early_stopped_planner_still_beats_random_shooting() -> None:
    obs0 = th.tensor([[1.5, -0.3], [-1.0, 0.5]])
    cem_returns, rs_returns, iterations = [], [], []
    for seed in range(3):
        gen = th.Generator().manual_seed(seed)
        rollout = make_rollout(20)
        cem = ActionSequencePlanner(rollout, CEMOptimizer(100, 10, 5, alpha=0.1, early_stop_tol=0.1), 1, init_sigma=0.5)
        rs = ActionSequencePlanner(rollout, CEMOptimizer(500, 1, 1), 1, init_sigma=0.5, return_mean=False)
        for planner, store in ((cem, cem_returns), (rs, rs_returns)):
            out = planner.plan(obs0, generator=gen)
            if planner is cem:
                iterations.append(out.cem_iterations)
            store.extend(true_return(obs0[i].numpy(), out.mean[i].numpy()) for i in range(2))
    assert np.mean(cem_returns) > np.mean(rs_returns), (cem_returns, rs_returns)
    assert all(1 <= n <= 5 for n in iterations)


class DisagreeingModel(PointMassModel):
    """Two members: member 0 is the point mass; member 1 also believes a positive force pulls x down hard, a model
    error that promises a large reward for pushing right from x > 0."""

    def __init__(self) -> None:
        super().__init__(n_elite_members=2)

    def forward_elites(self, inputs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        delta, logvar = super().forward_elites(inputs)  # inputs [2, R, 3]
        phantom = th.zeros_like(delta)
        phantom[1, :, 0] = -0.5 * th.relu(inputs[1, :, 2])
        return delta + phantom, logvar


def disagreeing_rollout(horizon: int, pessimism: float) -> ModelRollout:
    """TSinf with one particle per member of :class:`DisagreeingModel` (noiseless, so the particles are the members)."""
    model = DisagreeingModel()
    return ModelRollout(
        model, point_mass_reward, None, horizon, -th.ones(1), th.ones(1), "fixed_model", 2, pessimism=pessimism
    )  # type: ignore[arg-type]


def test_pessimism_is_the_particles_mean_less_their_spread() -> None:
    obs0 = th.tensor([[1.0, 0.0]])
    actions = th.full((6,), 0.7)
    scores = {}
    for pessimism in (0.0, 1.5):
        rollout = disagreeing_rollout(6, pessimism)
        scores[pessimism] = rollout.evaluate(obs0, 1, lambda t, s: actions[t].expand(*s.shape[:-1], 1)).item()
    # Each member's return, rolled out by hand: member 0 is the true point mass, member 1 adds the phantom pull.
    exact = true_return(obs0[0].numpy(), actions.numpy())
    x, v, phantom_return = 1.0, 0.0, 0.0
    for a in actions.tolist():
        x, v = x + v * DT - 0.5 * a, v + a * DT
        phantom_return += -(x**2) - 0.1 * v**2 - 0.01 * a**2
    member_returns = np.array([exact, phantom_return])
    assert scores[0.0] == pytest.approx(member_returns.mean(), rel=1e-5)
    assert scores[1.5] == pytest.approx(member_returns.mean() - 1.5 * member_returns.std(ddof=1), rel=1e-5)


def test_pessimism_keeps_cem_off_a_members_error() -> None:
    obs0 = th.tensor([[1.0, 0.0]])
    realised = {}
    for pessimism in (0.0, 1.0):
        rollout = disagreeing_rollout(10, pessimism)
        planner = ActionSequencePlanner(rollout, CEMOptimizer(200, 20, 5, alpha=0.1), act_dim=1, init_sigma=0.5)
        plan = planner.plan(obs0, generator=th.Generator().manual_seed(0)).mean[0]
        realised[pessimism] = true_return(obs0[0].numpy(), plan.numpy())
    # Without the penalty CEM pushes right, trusting member 1 alone; with it, it plans what both members agree on.
    assert realised[1.0] > realised[0.0] + 0.5


def test_pessimism_needs_particles() -> None:
    with pytest.raises(ValueError, match="at least two particles"):
        make_rollout(pessimism=1.0)
    with pytest.raises(ValueError, match="pessimism must be >= 0"):
        make_rollout(n_elite_members=2, propagation="fixed_model", num_particles=2, pessimism=-1.0)


def test_mirrored_cem_reflects_half_of_each_population_through_the_mean() -> None:
    population, seen = 7, []

    def evaluate(samples: th.Tensor) -> th.Tensor:
        seen.append(samples.clone())
        return _quadratic(samples)

    mean, var = th.tensor([[0.2, -0.4, 0.0], [0.5, 0.5, -0.9]]), th.full((2, 3), 0.04)
    lower, upper = -th.ones(3), th.ones(3)
    CEMOptimizer(population, 3, 3, alpha=0.1, mirrored=True).optimize(
        evaluate, mean, var, lower, upper, generator=th.Generator().manual_seed(0)
    )
    assert len(seen) == 3
    means = [mean]
    for samples in seen:
        drawn = samples[:, :4]  # ceil(7 / 2) drawn, the first 3 of them reflected
        centre = means[-1].unsqueeze(1)
        assert th.allclose(samples[:, 4:], 2 * centre - drawn[:, :3], atol=1e-6)
        assert not th.allclose(drawn[:, 0], drawn[:, 1])
        elites = samples.gather(1, _quadratic(samples).topk(3, dim=1).indices.unsqueeze(-1).expand(-1, -1, 3))
        means.append(0.1 * means[-1] + 0.9 * elites.mean(dim=1))


def test_mirrored_cem_plans_as_well_on_the_point_mass() -> None:
    obs0 = th.tensor([[1.5, -0.3], [-1.0, 0.5]])
    realised: dict[bool, list[float]] = {False: [], True: []}
    for seed in range(6):
        for mirrored in (False, True):
            planner = ActionSequencePlanner(
                make_rollout(20), CEMOptimizer(60, 6, 4, alpha=0.1, mirrored=mirrored), act_dim=1, init_sigma=0.5
            )
            out = planner.plan(obs0, generator=th.Generator().manual_seed(seed))
            realised[mirrored] += [true_return(obs0[i].numpy(), out.mean[i].numpy()) for i in range(2)]
    # Same budget, half the draws: the executed plans are as good (within 2% of the true return of the unmirrored ones).
    assert np.mean(realised[True]) >= np.mean(realised[False]) - 0.02 * abs(np.mean(realised[False]))


def _windows_of(table: th.Tensor, rows: th.Tensor) -> list[int]:
    """The offset in ``table`` of every row of ``rows`` ``[n, dim]`` (-1 where a row is no window of the table)."""
    windows = table.unfold(0, rows.shape[1], 1)  # [size - dim + 1, dim]
    offsets = []
    for row in rows:
        hits = (windows == row).all(dim=1).nonzero()
        offsets.append(int(hits[0, 0]) if len(hits) else -1)
    return offsets


@pytest.mark.parametrize("mirrored", [False, True])
def test_noise_table_candidates_are_windows_of_one_seeded_table(mirrored: bool) -> None:
    population, dim, seen = 9, 4, []

    def evaluate(samples: th.Tensor) -> th.Tensor:
        seen.append(samples.clone())
        return _quadratic(samples)

    mean, var = th.zeros(2, dim), th.ones(2, dim)  # the first iteration's samples are the table's numbers themselves
    cem = CEMOptimizer(population, 3, 2, alpha=0.1, mirrored=mirrored, noise_table_size=64, noise_table_seed=11)
    cem.optimize(evaluate, mean, var, generator=th.Generator().manual_seed(0))
    table = cem._noise_table
    assert table is not None and table.shape == (64,) and table.abs().max() <= 2.0
    # The table depends on its seed alone, not on the planning generator.
    again = CEMOptimizer(population, 3, 2, noise_table_size=64, noise_table_seed=11)
    assert th.equal(again.noise_table_windows(dim, th.device("cpu"), th.float32)[0], table[:dim])
    other = CEMOptimizer(population, 3, 2, noise_table_size=64, noise_table_seed=12)
    assert not th.equal(other.noise_table_windows(dim, th.device("cpu"), th.float32)[0], table[:dim])
    drawn = (population + 1) // 2 if mirrored else population
    first = seen[0][:, :drawn].reshape(-1, dim)
    offsets = _windows_of(table, first)
    assert min(offsets) >= 0, "every drawn candidate is a window of the table"
    assert len(set(offsets)) > len(offsets) // 2, "offsets are drawn per candidate"
    if mirrored:
        assert th.allclose(seen[0][:, drawn:], -seen[0][:, : population - drawn], atol=1e-6)
    # Same generator seed, same samples; another seed, other offsets.
    seen_again: list[th.Tensor] = []
    cem.optimize(lambda s: seen_again.append(s.clone()) or _quadratic(s), mean, var, generator=th.Generator().manual_seed(0))
    assert th.equal(seen_again[0], seen[0])
    seen_other: list[th.Tensor] = []
    cem.optimize(lambda s: seen_other.append(s.clone()) or _quadratic(s), mean, var, generator=th.Generator().manual_seed(1))
    assert not th.equal(seen_other[0], seen[0])


def test_noise_table_must_hold_one_candidate() -> None:
    cem = CEMOptimizer(5, 2, 1, noise_table_size=10)
    with pytest.raises(ValueError, match="smaller than one candidate's noise"):
        cem.optimize(_quadratic, th.zeros(1, 11), th.ones(1, 11))
    with pytest.raises(ValueError, match="noise_table_size must be >= 0"):
        CEMOptimizer(5, 2, 1, noise_table_size=-1)


def test_noise_table_plans_as_well_on_the_point_mass() -> None:
    obs0 = th.tensor([[1.5, -0.3], [-1.0, 0.5]])
    realised: dict[int, list[float]] = {0: [], 4096: []}
    for seed in range(6):
        for size in realised:
            cem = CEMOptimizer(60, 6, 4, alpha=0.1, noise_table_size=size, noise_table_seed=seed)
            planner = ActionSequencePlanner(make_rollout(20), cem, act_dim=1, init_sigma=0.5)
            out = planner.plan(obs0, generator=th.Generator().manual_seed(seed))
            realised[size] += [true_return(obs0[i].numpy(), out.mean[i].numpy()) for i in range(2)]
    # Same budget, one random integer per candidate instead of 20 normals: the executed plans are as good (within 2%).
    assert np.mean(realised[4096]) >= np.mean(realised[0]) - 0.02 * abs(np.mean(realised[0]))
