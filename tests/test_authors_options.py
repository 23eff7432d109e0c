"""The options that reproduce the authors' POPLIN code where it differs from ours (docs/results.md#pets-cheetah, the
fidelity table): the policy's output and initialisation, its whitening, the first planned trial, CEM's truncation and
the epoch a model fit keeps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch as th

from sb3_poplin import POPLIN_A, POPLIN_P
from sb3_poplin.common.cem import CEMOptimizer, truncated_normal_
from sb3_poplin.common.distillation import planned_whitening
from sb3_poplin.common.dynamics import ProbabilisticEnsemble, make_adam
from sb3_poplin.common.planners import ActionSequencePlanner
from sb3_poplin.common.policies import PolicyNetwork
from tests.test_planning import make_rollout, true_return

TINY = dict(population_size=20, n_elites=4, cem_iterations=2, horizon=4, ensemble_size=2, dynamics_net_arch=[16, 16])


def test_normc_initialisation_gives_unit_rows_a_small_output_and_zero_biases() -> None:
    th.manual_seed(0)
    net = PolicyNetwork(17, 6, [32, 32], init="normc")
    hidden, output = net.linears[:-1], net.linears[-1]
    for linear in hidden:
        th.testing.assert_close(linear.weight.norm(dim=1), th.ones(linear.out_features))
    th.testing.assert_close(output.weight.norm(dim=1), th.full((6,), 0.01))
    assert all(float(linear.bias.detach().abs().max()) == 0.0 for linear in net.linears)
    # so the first policy's actions are near zero whatever the (whitened) state
    assert float(net(th.randn(100, 17)).detach().abs().max()) < 0.1


def test_clipped_output_is_the_linear_output_clipped_in_both_passes() -> None:
    th.manual_seed(0)
    net = PolicyNetwork(5, 2, [8], output="clip")
    with th.no_grad():
        net.linears[-1].weight.mul_(50.0)  # drive some actions beyond the bounds
    obs = th.randn(64, 5)
    hidden = th.tanh(net.linears[0](obs))
    want = net.linears[1](hidden).clamp(-1.0, 1.0)
    got = net(obs)
    th.testing.assert_close(got, want)
    assert float(got.abs().max()) == 1.0 and bool(((got.abs() < 1.0) & (got.abs() > 0.5)).any())
    batched = net.forward_batched(obs.view(4, 16, 5), net.flat_parameters().detach().expand(4, -1))
    th.testing.assert_close(batched.reshape(64, 2), want)


def test_unknown_policy_output_or_init_is_refused() -> None:
    with pytest.raises(ValueError, match="Unknown policy output 'sigmoid'"):
        POPLIN_P("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(output="sigmoid"))
    with pytest.raises(ValueError, match="Unknown policy init 'xavier'"):
        POPLIN_P("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(init="xavier"))


def test_truncated_normal_is_the_redrawn_normal() -> None:
    out = truncated_normal_(th.empty(2_000_000), th.Generator().manual_seed(0))
    assert float(out.abs().max()) <= 2.0
    # the standard normal truncated at +-2: variance 1 - 2 * 2 * phi(2) / (2 Phi(2) - 1)
    phi2 = math.exp(-2.0) / math.sqrt(2 * math.pi)
    variance = 1.0 - 4.0 * phi2 / math.erf(2.0 / math.sqrt(2.0))
    assert abs(float(out.var()) - variance) < 0.003 and abs(float(out.mean())) < 0.003
    # as redrawing every number beyond 2 std does
    redrawn = th.randn(2_000_000, generator=th.Generator().manual_seed(1))
    while bool((redrawn.abs() > 2.0).any()):
        beyond = redrawn.abs() > 2.0
        redrawn[beyond] = th.randn(int(beyond.sum()), generator=th.Generator().manual_seed(2))
    assert abs(float(redrawn.var()) - float(out.var())) < 0.003
    # its histogram too (deciles of the two samples agree)
    quantiles = th.linspace(0.1, 0.9, 9)
    th.testing.assert_close(
        th.quantile(out[:200_000], quantiles), th.quantile(redrawn[:200_000], quantiles), atol=0.02, rtol=0
    )
    # reproducible from the generator, and the same split over threads or not
    again = truncated_normal_(th.empty(2_000_000), th.Generator().manual_seed(0), parallel_min=1 << 40)
    assert not th.equal(again, out)  # one stream instead of eight: other numbers
    th.testing.assert_close(truncated_normal_(th.empty(2_000_000), th.Generator().manual_seed(0)), out, rtol=0, atol=0)


# clamped: P(|z| < 2) * 0.7737 + P(|z| > 2) * 4 = 0.9205; truncated: 0.7737
@pytest.mark.parametrize(("truncation", "variance"), [("clamp", 0.9205), ("redraw", 0.7737)])
def test_cem_samples_spread_as_their_truncation_says(truncation: str, variance: float) -> None:
    cem = CEMOptimizer(population_size=4000, n_elites=10, n_iterations=1, truncation=truncation)
    seen: list[th.Tensor] = []

    def evaluate(samples: th.Tensor) -> th.Tensor:
        seen.append(samples.clone())
        return -samples.square().sum(-1)

    cem.optimize(evaluate, th.zeros(1, 50), th.full((1, 50), 0.25), generator=th.Generator().manual_seed(0))
    assert abs(float(seen[0].var()) / 0.25 - variance) < 0.02


def test_cem_with_redrawn_samples_beats_random_shooting() -> None:
    obs0 = th.tensor([[1.5, -0.3], [-1.0, 0.5]])
    rollout = make_rollout(20)
    returns = {}
    for name, population, iterations in (("cem", 100, 5), ("random", 500, 1)):
        cem = CEMOptimizer(population, 10, iterations, truncation="redraw")
        planner = ActionSequencePlanner(rollout, cem, act_dim=1, init_sigma=0.5)
        out = planner.plan(obs0, None, th.Generator().manual_seed(0))
        sequences = out.mean.view(2, 20).numpy()
        returns[name] = [true_return(obs0[i].numpy(), sequences[i]) for i in range(2)]
    assert all(c > r for c, r in zip(returns["cem"], returns["random"])), returns


def _diverging_fit(keep_epoch: str) -> tuple[ProbabilisticEnsemble, dict[str, float], list[float]]:
    """A fit whose later epochs get worse (a learning rate far too large), with the training errors of every epoch."""
    generator = th.Generator().manual_seed(0)
    inputs = th.randn(400, 4, generator=generator)
    targets = inputs[:, :2] * 0.5
    th.manual_seed(0)
    model = ProbabilisticEnsemble(4, 2, n_members=3, hidden_sizes=(32,))
    optimizer = make_adam(model.parameters(), lr=0.3)
    info = model.fit(inputs, targets, optimizer, max_epochs=6, batch_size=32, holdout_ratio=0.0, patience=10,
                     generator=generator, keep_epoch=keep_epoch)  # fmt: skip
    return model, info, model.member_mse(inputs, targets).tolist()


def test_a_fit_keeps_the_last_epoch_or_each_members_best() -> None:
    _, best_info, best_mse = _diverging_fit("best")
    _, last_info, last_mse = _diverging_fit("last")
    reported = {name: [info[f"holdout_mse_member_{i}"] for i in range(3)] for name, info in (("best", best_info),
                                                                                        ("last", last_info))}  # fmt: skip
    # each reports the error of the weights it kept (no hold-out: the training error)
    np.testing.assert_allclose(best_mse, reported["best"], rtol=1e-5)
    np.testing.assert_allclose(last_mse, reported["last"], rtol=1e-5)
    # the same training (same generator), so the last epoch is no better than each member's best, and worse somewhere
    assert all(b <= last + 1e-9 for b, last in zip(best_mse, last_mse))
    assert any(b < 0.9 * last for b, last in zip(best_mse, last_mse)), (best_mse, last_mse)


def test_planned_whitening_is_the_authors_running_statistics() -> None:
    states = th.randn(500, 3) * th.tensor([2.0, 0.05, 1.0]) + th.tensor([1.0, -3.0, 0.0])
    mean, std = planned_whitening(states)
    x = states.double().numpy()
    count = len(x) + 0.01
    want_mean = x.sum(0) / count
    want_var = np.maximum((np.square(x).sum(0) + 0.01) / count - want_mean**2, 0.01)
    np.testing.assert_allclose(mean.numpy(), want_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std.numpy(), np.sqrt(want_var + 1e-6), rtol=1e-5)
    assert abs(float(std[1]) - 0.1) < 1e-4  # the floor: a dimension of std 0.05 is scaled by 10, not 20


@pytest.mark.parametrize("distillation", ["avg", "bc"])
def test_authors_first_trial_leaves_the_policy_and_whitens_on_planned_states(distillation: str) -> None:
    update = dict(avg_update="set") if distillation == "avg" else {}
    model = POPLIN_P("MlpPolicy", "Pendulum-v1", seed=0, learning_starts=200, distillation=distillation, **update,
                     distill_after_warmup=False, policy_whitening="planned",
                     policy_kwargs=dict(output="clip", init="normc"), **TINY)  # fmt: skip
    actor = model.policy.actor
    initial = actor.flat_parameters().detach().clone()
    seen_at_plans: list[tuple[th.Tensor, th.Tensor, th.Tensor]] = []
    plan = model.planner.plan

    def watched_plan(*args, **kwargs):
        seen_at_plans.append((actor.flat_parameters().detach().clone(), actor.obs_mean.clone(), actor.obs_std.clone()))
        return plan(*args, **kwargs)

    model.planner.plan = watched_plan  # type: ignore[method-assign]
    model.learn(400)  # the random warm-up, its fit (which distils nothing), the first planned episode and its distillation
    assert model._n_model_updates == 2 and len(seen_at_plans) == 200
    # the first planned episode runs the initial policy on unwhitened observations
    parameters, obs_mean, obs_std = seen_at_plans[0]
    th.testing.assert_close(parameters, initial, rtol=0, atol=0)
    assert th.equal(obs_mean, th.zeros(3)) and th.equal(obs_std, th.ones(3))
    # then it is distilled, and whitened on the planned states
    assert not th.equal(actor.flat_parameters().detach(), initial)
    data = model.replay_buffer.all_transitions()
    planned = th.as_tensor(data["observations"][data["planned"]])
    assert len(planned) == 200
    mean, std = planned_whitening(planned)
    th.testing.assert_close(actor.obs_mean, mean)
    th.testing.assert_close(actor.obs_std, std)


def test_ours_distils_after_the_warmup() -> None:
    model = POPLIN_A("MlpPolicy", "Pendulum-v1", seed=0, learning_starts=200, **TINY)
    initial = model.policy.actor.flat_parameters().detach().clone()
    model.learn(201)
    assert not th.equal(model.policy.actor.flat_parameters().detach(), initial)
    assert float(model.policy.actor.obs_normalizer_fitted) == 1.0


def test_the_options_are_saved_with_the_model(tmp_path) -> None:
    kwargs = dict(cem_truncation="redraw", dynamics_keep_epoch="last", policy_whitening="planned", distill_after_warmup=False)
    model = POPLIN_P("MlpPolicy", "Pendulum-v1", seed=0, policy_kwargs=dict(output="clip", init="normc"), **kwargs, **TINY)
    model.save(tmp_path / "model")
    loaded = POPLIN_P.load(tmp_path / "model", device="cpu")
    for name, value in kwargs.items():
        assert getattr(loaded, name) == value
    assert loaded.planner.optimizer.truncation == "redraw" and loaded.distiller.whitening == "planned"
    assert loaded.policy.actor.output == "clip" and loaded.policy.init == "normc"
    obs = np.array([[0.1, 0.2, 0.3]], dtype=np.float32)
    np.testing.assert_array_equal(
        loaded.policy.predict(obs, deterministic=True)[0], model.policy.predict(obs, deterministic=True)[0]
    )


@pytest.mark.parametrize("execute", ["mean", "best"])
def test_a_plan_executes_the_final_mean_or_the_best_candidate(execute: str) -> None:
    model = POPLIN_P("MlpPolicy", "Pendulum-v1", seed=0, cem_execute=execute, **TINY)
    assert model.planner.return_mean == (execute == "mean")
    captured = {}
    optimize = model.planner.optimizer.optimize

    def watched(*args, **kwargs):
        captured["result"] = result = optimize(*args, **kwargs)
        return result

    model.planner.optimizer.optimize = watched  # type: ignore[method-assign]
    out = model.plan(np.array([[0.3, -0.9, 0.4]], dtype=np.float32))
    result = captured["result"]
    chosen = result.mean if execute == "mean" else result.best
    th.testing.assert_close(out.mean, chosen)  # what is executed, and warm-starts the next step
    # the executed noise is the chosen candidate's first step (what AVG averages)
    th.testing.assert_close(out.executed_noise, chosen[:, : model.planner.step_noise_dim])
    if execute == "best":  # the executed plan is the best candidate: its score is the best elite's return
        score = model.planner.score(th.tensor([[0.3, -0.9, 0.4]]), out.mean)
        assert float(score[0]) == pytest.approx(float(result.elite_returns[0, 0]), rel=1e-4, abs=1e-4)
