"""Planning in bfloat16 (``planning_dtype``): the choice, what stays float32, and plans as good as float32's."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch as th

from sb3_poplin import PETS, POPLIN_A, POPLIN_P
from sb3_poplin.common import precision
from sb3_poplin.common.cem import CEMOptimizer
from sb3_poplin.common.dynamics import ProbabilisticEnsemble, make_adam
from sb3_poplin.common.planners import ActionSequencePlanner, PolicyActionPlanner, PolicyParameterPlanner
from sb3_poplin.common.policies import PolicyNetwork
from sb3_poplin.common.precision import native_bfloat16, planning_torch_dtype
from sb3_poplin.common.rollout import ModelRollout
from tests.test_planning import DT, point_mass_reward, true_return

TINY = dict(
    population_size=20, n_elites=4, cem_iterations=2, horizon=4, ensemble_size=2, dynamics_net_arch=[16, 16], buffer_size=500
)


@pytest.fixture
def flags(monkeypatch: pytest.MonkeyPatch):
    """Pretend the CPU has the given feature flags (and forget earlier warnings)."""

    def set_flags(*names: str) -> None:
        monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset(names))
        monkeypatch.setattr(precision, "_warned_emulated", set())

    return set_flags


def test_auto_is_bfloat16_only_where_the_cpu_multiplies_it_natively(flags) -> None:
    flags("avx2", "avx512f")
    assert not native_bfloat16("cpu")
    assert planning_torch_dtype("auto", "cpu") == th.float32
    for flag in ("avx512_bf16", "amx_bf16"):
        flags("avx512f", flag)
        assert native_bfloat16("cpu")
        assert planning_torch_dtype("auto", "cpu") == th.bfloat16
    assert planning_torch_dtype("float32", "cpu") == th.float32


def test_explicit_bfloat16_without_native_support_warns_once(flags) -> None:
    flags("avx2")
    with pytest.warns(UserWarning, match="slower than in float32"):
        assert planning_torch_dtype("bfloat16", "cpu") == th.bfloat16
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert planning_torch_dtype("bfloat16", "cpu") == th.bfloat16  # no second warning
    flags("avx512_bf16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert planning_torch_dtype("bfloat16", "cpu") == th.bfloat16


def test_unknown_dtype_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match=r"planning_dtype must be one of \('float32', 'bfloat16', 'auto'\), got 'float16'"):
        POPLIN_P("MlpPolicy", "Pendulum-v1", planning_dtype="float16")
    with pytest.raises(ValueError, match="planning_dtype must be one of"):
        planning_torch_dtype("half", "cpu")


def _ensemble(dtype: th.dtype) -> ProbabilisticEnsemble:
    th.manual_seed(0)
    model = ProbabilisticEnsemble(23, 17, n_members=5, hidden_sizes=(200, 200, 200, 200), n_elite_members=4)
    model.fit_input_normalizer(th.randn(2048, 23) * 3.0 + 10.0)
    model.planning_dtype = dtype
    return model.eval()


def test_bfloat16_planning_pass_is_close_to_float32_and_returns_float32() -> None:
    exact, rounded = _ensemble(th.float32), _ensemble(th.bfloat16)
    inputs = th.randn(500, 23) * 3.0 + 10.0
    want = exact.forward_elites_mean(inputs)
    got = rounded.forward_elites_mean(inputs)
    assert got.dtype == th.float32 and rounded._elite_layers().first_weight.dtype == th.bfloat16
    # bfloat16 keeps 8 significant bits (relative rounding 0.4%) through four layers of 200
    assert ((got - want).norm() / want.norm()).item() < 0.03
    mean, logvar = rounded.forward_elites(inputs.unsqueeze(0).expand(4, -1, -1))
    want_mean, want_logvar = exact.forward_elites(inputs.unsqueeze(0).expand(4, -1, -1))
    assert mean.dtype == logvar.dtype == th.float32
    assert ((mean - want_mean).norm() / want_mean.norm()).item() < 0.03
    assert (logvar - want_logvar).abs().max().item() < 0.1
    # Changing the dtype back rebuilds the planning weights: float32 again exactly.
    rounded.planning_dtype = th.float32
    th.testing.assert_close(rounded.forward_elites_mean(inputs), want, rtol=0, atol=0)


def _fitted_point_mass_ensemble() -> ProbabilisticEnsemble:
    """A small ensemble fitted on transitions of the point mass of tests/test_planning.py (obs (x, v), action a)."""
    generator = th.Generator().manual_seed(0)
    obs = th.rand(3000, 2, generator=generator) * 6.0 - 3.0
    action = th.rand(3000, 1, generator=generator) * 2.0 - 1.0
    delta = th.stack([obs[:, 1] * DT, action[:, 0] * DT], dim=1)
    th.manual_seed(0)
    model = ProbabilisticEnsemble(3, 2, n_members=3, hidden_sizes=(64, 64))
    model.fit(th.cat([obs, action], 1), delta, make_adam(model.parameters(), lr=3e-3), max_epochs=40, batch_size=64,
              generator=generator)  # fmt: skip
    return model


@pytest.fixture(scope="module")
def point_mass_model() -> ProbabilisticEnsemble:
    return _fitted_point_mass_ensemble()


def _planner(kind: str, model: ProbabilisticEnsemble, dtype: th.dtype, horizon: int = 12):
    model.planning_dtype = dtype
    rollout = ModelRollout(model, point_mass_reward, None, horizon=horizon, action_low=-th.ones(1), action_high=th.ones(1))
    cem = CEMOptimizer(population_size=100, n_elites=10, n_iterations=4)
    if kind == "pets":
        return ActionSequencePlanner(rollout, cem, 1, 0.5, compute_dtype=dtype)
    th.manual_seed(1)
    policy = PolicyNetwork(2, 1, [16])
    if kind.startswith("poplin_a"):
        return PolicyActionPlanner(rollout, cem, 1, 0.5, policy, kind.split("-")[1], compute_dtype=dtype)
    return PolicyParameterPlanner(rollout, cem, 1, 0.3, policy, kind.split("-")[1], compute_dtype=dtype)


def _closed_loop_return(planner, obs0: np.ndarray, steps: int = 20, seed: int = 0) -> float:
    """Real return of MPC with ``planner`` on the exact point mass (the model is the fitted one)."""
    generator = th.Generator().manual_seed(seed)
    obs, mean, actions = np.asarray(obs0, dtype=np.float64), None, []
    x0 = obs.copy()
    for _ in range(steps):
        out = planner.plan(th.as_tensor(obs, dtype=th.float32).view(1, 2), mean, generator)
        assert out.action.dtype == th.float32 and out.mean.dtype == th.float32 and out.elite_returns.dtype == th.float32
        mean = planner.warm_start(out.mean)
        a = float(out.action[0, 0])
        actions.append(a)
        obs = np.array([obs[0] + obs[1] * DT, obs[1] + np.clip(a, -1, 1) * DT])
    return true_return(x0, np.array(actions))


@pytest.mark.parametrize("kind", ["pets", "poplin_a-init", "poplin_a-replan", "poplin_p-sep", "poplin_p-uni"])
def test_bfloat16_plans_as_well_as_float32_on_a_fitted_model(point_mass_model, kind: str) -> None:
    starts = [np.array([-2.0, 0.8]), np.array([0.7, 1.2])]
    exact = [_closed_loop_return(_planner(kind, point_mass_model, th.float32), x, seed=i) for i, x in enumerate(starts)]
    rounded = [_closed_loop_return(_planner(kind, point_mass_model, th.bfloat16), x, seed=i) for i, x in enumerate(starts)]
    doing_nothing = [true_return(x, np.zeros(20)) for x in starts]
    for e, r, idle in zip(exact, rounded, doing_nothing):
        assert e > idle + 0.2 * abs(idle), (kind, e, idle)  # the planner does steer the mass home with this model
        # and in bfloat16 it steers it as well (measured: within 0.1% of float32's return on every planner)
        assert r >= e - 0.02 * abs(e), (kind, r, e)


def test_the_executed_action_is_the_float32_policy_with_the_chosen_parameters(point_mass_model) -> None:
    planner = _planner("poplin_p-sep", point_mass_model, th.bfloat16)
    obs0 = th.tensor([[1.0, -0.5]])
    out = planner.plan(obs0, None, th.Generator().manual_seed(0))
    theta = planner.policy_net.flat_parameters().detach()
    want = planner.policy_net.forward_batched(obs0.unsqueeze(0), theta + out.executed_noise)[0]
    # float32 rounding of theta + omega only (bfloat16 would be off by ~1e-3)
    th.testing.assert_close(out.action, want, rtol=0, atol=1e-6)


def test_imagined_states_and_returns_stay_float32(point_mass_model) -> None:
    planner = _planner("poplin_a-replan", point_mass_model, th.bfloat16)
    planner.imagine_elites = 2
    out = planner.plan(th.tensor([[1.0, -0.5]]), None, th.Generator().manual_seed(0))
    assert out.imagined_states is not None and out.imagined_states.dtype == th.float32
    assert out.imagined_actions is not None and out.imagined_actions.dtype == th.float32


@pytest.mark.parametrize("algo", [POPLIN_P, POPLIN_A, PETS])
def test_the_choice_is_saved_and_a_loaded_model_plans_as_before(algo, tmp_path, flags) -> None:
    flags("avx512_bf16")
    model = algo("MlpPolicy", "Pendulum-v1", seed=0, learning_starts=50, planning_dtype="bfloat16", **TINY)
    model.learn(60)
    assert model.planning_torch_dtype == th.bfloat16 and model.dynamics.planning_dtype == th.bfloat16
    assert model.planner.compute_dtype == th.bfloat16
    obs = np.array([0.3, -0.9, 0.4], dtype=np.float32)
    action, state = model.predict(obs, deterministic=True)
    model.save(tmp_path / "model")
    loaded = algo.load(tmp_path / "model", device="cpu")
    assert loaded.planning_dtype == "bfloat16" and loaded.planning_torch_dtype == th.bfloat16
    again, again_state = loaded.predict(obs, deterministic=True)
    np.testing.assert_array_equal(again, action)
    np.testing.assert_array_equal(again_state[0], state[0])
    # The same model told to plan in float32 plans (slightly) differently: the choice is what was loaded.
    exact = algo.load(tmp_path / "model", device="cpu", planning_dtype="float32")
    assert exact.planning_torch_dtype == th.float32


def test_auto_follows_the_machine_it_is_loaded_on(tmp_path, flags) -> None:
    flags("avx512_bf16")
    model = PETS("MlpPolicy", "Pendulum-v1", seed=0, planning_dtype="auto", **TINY)
    assert model.planning_torch_dtype == th.bfloat16
    model.save(tmp_path / "model")
    flags("avx2")
    assert PETS.load(tmp_path / "model", device="cpu").planning_torch_dtype == th.float32
