"""The probabilistic ensemble: batched members, fitting, normaliser, elites."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th

from sb3_poplin.common.dynamics import EnsembleLinear, ProbabilisticEnsemble, make_adam


def _target(x: th.Tensor) -> th.Tensor:
    return th.stack([th.sin(2 * x[:, 0]) * x[:, 1], x[:, 0] ** 2 - 0.5 * x[:, 1]], dim=1)


def test_batched_layer_equals_each_member() -> None:
    th.manual_seed(0)
    layer = EnsembleLinear(4, 3, 5)
    x = th.randn(4, 7, 3)
    out = layer(x)
    for e in range(4):
        assert th.allclose(out[e], x[e] @ layer.weight[e] + layer.bias[e], atol=1e-6)


def test_members_are_different_at_initialisation() -> None:
    th.manual_seed(0)
    model = ProbabilisticEnsemble(3, 2, n_members=5, hidden_sizes=(8,))
    mean, _ = model(th.ones(5, 1, 3))
    assert mean.std(dim=0).min() > 1e-4


def test_fits_a_known_function_and_predicts_calibrated_noise() -> None:
    th.manual_seed(0)
    gen = th.Generator().manual_seed(0)
    model = ProbabilisticEnsemble(2, 2, n_members=4, n_elite_members=3, hidden_sizes=(64, 64))
    x = th.rand(3000, 2, generator=gen) * 4 - 2
    noise_std = 0.05
    y = _target(x) + noise_std * th.randn(3000, 2, generator=gen)
    optimizer = th.optim.Adam(model.parameters(), lr=2e-3)
    info = model.fit(x, y, optimizer, max_epochs=60, batch_size=64, patience=10, generator=gen)
    x_test = th.rand(500, 2, generator=gen) * 4 - 2
    mean, logvar = model.forward_elites(x_test.expand(3, -1, -1))
    mse = ((mean.mean(0) - _target(x_test)) ** 2).mean().item()
    assert mse < 0.02 * _target(x_test).var().item(), mse
    assert info["holdout_mse"] < 0.01
    # The predicted aleatoric std is of the order of the true noise (not collapsed, not blown up).
    predicted_std = logvar.exp().sqrt().mean().item()
    assert 0.3 * noise_std < predicted_std < 3 * noise_std, predicted_std
    assert model.elite_idx.shape == (3,) and len(set(model.elite_idx.tolist())) == 3


def test_elites_are_the_members_with_lowest_holdout_error() -> None:
    th.manual_seed(1)
    model = ProbabilisticEnsemble(2, 2, n_members=5, n_elite_members=2, hidden_sizes=(32,))
    x = th.randn(800, 2)
    y = _target(x)
    model.fit(x, y, th.optim.Adam(model.parameters(), lr=1e-3), max_epochs=3, batch_size=64)
    # Spoil member 0 and 1 so they must not be elites after a new selection round.
    with th.no_grad():
        for layer in model.layers:
            layer.weight[:2] += 5.0
    model.fit(x, y, th.optim.SGD(model.parameters(), lr=0.0), max_epochs=1, batch_size=64)
    assert not set(model.elite_idx.tolist()) & {0, 1}


def test_normalizer_guards_constant_dimensions() -> None:
    model = ProbabilisticEnsemble(3, 1, n_members=2, hidden_sizes=(8,))
    x = th.randn(100, 3)
    x[:, 1] = 7.0  # constant input (e.g. an unused sensor): std 0 must not become a division by ~0
    model.fit_input_normalizer(x)
    assert model.input_std[1] == 1.0
    assert th.isfinite(model(x.expand(2, -1, -1))[0]).all()
    y = x[:, :1] * 2
    model.fit(x, y, th.optim.Adam(model.parameters(), lr=1e-3), max_epochs=2)
    assert th.isfinite(model.input_std).all() and (model.input_std > 0).all()


def test_logvar_stays_within_learned_bounds() -> None:
    model = ProbabilisticEnsemble(2, 2, n_members=2, hidden_sizes=(8,))
    with th.no_grad():
        model.layers[-1].bias[..., 2:] = 1e3  # a huge raw log-variance
    _, logvar = model(th.randn(2, 5, 2))
    assert (logvar <= model.max_logvar + 1e-3).all()  # soft bounds: at most a hair over
    with th.no_grad():
        model.layers[-1].bias[..., 2:] = -1e3
    _, logvar = model(th.randn(2, 5, 2))
    assert (logvar >= model.min_logvar - 1e-3).all()


def test_state_dict_round_trip_keeps_normalizer_and_elites() -> None:
    model = ProbabilisticEnsemble(2, 2, n_members=3, n_elite_members=2, hidden_sizes=(8,))
    x = th.randn(200, 2) * 3 + 1
    model.fit(x, _target(x), th.optim.Adam(model.parameters()), max_epochs=1)
    clone = ProbabilisticEnsemble(2, 2, n_members=3, n_elite_members=2, hidden_sizes=(8,))
    clone.load_state_dict(model.state_dict())
    inputs = th.randn(2, 4, 2)
    assert th.equal(clone.forward_elites(inputs)[0], model.forward_elites(inputs)[0])
    assert th.equal(clone.input_mean, model.input_mean) and th.equal(clone.elite_idx, model.elite_idx)


@pytest.mark.parametrize(("n_transitions", "expected_updates"), [(10_000, 5 * 282), (40_000, 5000)])
def test_default_fitting_cap_binds_only_on_large_buffers(n_transitions: int, expected_updates: int) -> None:
    from stable_baselines3.common.logger import configure

    from sb3_poplin import PETS

    # Default training settings (5 epochs of batch 32, hold-out 10%, cap 5000); a tiny network keeps the test fast and a
    # patience longer than the run keeps early stopping out of the count.
    model = PETS("MlpPolicy", "Pendulum-v1", dynamics_net_arch=[8], ensemble_size=2, dynamics_patience=10_000, seed=0)
    model.set_logger(configure(None, [""]))
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(n_transitions, 1, 3)).astype(np.float32)
    actions = rng.uniform(-1, 1, size=(n_transitions, 1, 1)).astype(np.float32)
    zeros = np.zeros(1, dtype=np.float32)
    for i in range(n_transitions):
        model.replay_buffer.add(obs[i], obs[i] + 0.1 * actions[i], actions[i], zeros, zeros, [{}])
    model.train(gradient_steps=1, batch_size=32)
    # 10k transitions: 9,000 train rows = 282 batches per epoch, 5 epochs, the cap does not bind (training as uncapped).
    assert model.last_dynamics_info["updates"] == expected_updates


def test_fused_adam_fits_as_the_default_adam() -> None:
    # The fused optimiser is a faster kernel of the same update rule: the same fit from the same start ends at the same
    # weights (up to float32 rounding over ~100 steps) and picks the same elites.
    gen_x = th.Generator().manual_seed(1)
    x = th.rand(600, 2, generator=gen_x) * 4 - 2
    y = _target(x)
    fitted = []
    for fused in (True, False):
        th.manual_seed(0)
        model = ProbabilisticEnsemble(2, 2, n_members=3, n_elite_members=2, hidden_sizes=(32, 32))
        optimizer = make_adam(model.parameters(), lr=1e-3) if fused else th.optim.Adam(model.parameters(), lr=1e-3)
        assert bool(optimizer.defaults["fused"]) is fused
        info = model.fit(x, y, optimizer, max_epochs=5, batch_size=32, generator=th.Generator().manual_seed(2))
        fitted.append((model, info))
    (fused_model, fused_info), (plain_model, plain_info) = fitted
    assert fused_info["updates"] == plain_info["updates"] > 50
    assert th.equal(fused_model.elite_idx, plain_model.elite_idx)
    for (name, fused_param), plain_param in zip(fused_model.named_parameters(), plain_model.parameters()):
        assert th.allclose(fused_param, plain_param, rtol=1e-4, atol=1e-5), name
    assert fused_info["loss"] == pytest.approx(plain_info["loss"], rel=1e-4)


def test_adam_falls_back_where_no_fused_kernel_exists() -> None:
    # The meta device has no fused Adam: the default implementation is used instead of failing.
    params = [th.nn.Parameter(th.zeros(3, device="meta"))]
    optimizer = make_adam(params, lr=1e-3)
    assert not optimizer.defaults["fused"]
    assert optimizer.param_groups[0]["params"] == params


def test_algorithms_train_their_ensemble_with_the_fused_adam_on_cpu(tmp_path) -> None:
    from sb3_poplin import PETS

    model = PETS("MlpPolicy", "Pendulum-v1", dynamics_net_arch=[8], ensemble_size=2, seed=0, device="cpu")
    assert model.dynamics.optimizer.defaults["fused"] is True
    # The user's Adam arguments reach the optimiser; fused=False gives torch's default implementation, also after
    # a save and load.
    plain = PETS(
        "MlpPolicy",
        "Pendulum-v1",
        dynamics_net_arch=[8],
        ensemble_size=2,
        seed=0,
        learning_starts=20,
        # a tiny planner and no extra gradient steps: the test checks the optimiser's settings, not what it learns
        population_size=16,
        n_elites=4,
        horizon=3,
        cem_iterations=2,
        dynamics_min_updates=10,
        dynamics_optimizer_kwargs={"fused": False, "eps": 1e-4},
    )
    plain.learn(40)
    group = plain.dynamics.optimizer.param_groups[0]
    assert not group["fused"] and group["eps"] == 1e-4 and group["lr"] == plain.dynamics_learning_rate
    plain.save(tmp_path / "plain.zip")
    loaded = PETS.load(tmp_path / "plain.zip")
    assert loaded.dynamics_optimizer_kwargs == {"fused": False, "eps": 1e-4}
    assert not loaded.dynamics.optimizer.param_groups[0]["fused"] and loaded.dynamics.optimizer.param_groups[0]["eps"] == 1e-4


def test_ignored_inputs_are_not_read_by_any_forward_path() -> None:
    th.manual_seed(0)
    model = ProbabilisticEnsemble(3, 2, n_members=3, n_elite_members=2, hidden_sizes=(16, 16), ignored_inputs=[1])
    # The ignored input drifts far out of the range of the training data, as an observed position does.
    x = th.randn(300, 3)
    x[:, 1] = th.linspace(0, 50, 300)
    model.fit(x, _target(x[:, [0, 2]]), th.optim.Adam(model.parameters(), lr=3e-3), max_epochs=3)
    inputs = th.randn(40, 3)
    moved = inputs.clone()
    moved[:, 1] = 1e4 * th.randn(40)
    assert th.equal(model(inputs.expand(3, -1, -1))[0], model(moved.expand(3, -1, -1))[0])
    assert th.equal(model.forward_elites(inputs.expand(2, -1, -1))[0], model.forward_elites(moved.expand(2, -1, -1))[0])
    assert th.allclose(model.forward_elites_mean(inputs), model.forward_elites_mean(moved), atol=1e-6)
    # The planning paths agree with the training forward on the elites.
    elite_mean = model(inputs.expand(3, -1, -1))[0][model.elite_idx].mean(0)
    assert th.allclose(model.forward_elites_mean(inputs), elite_mean, atol=1e-5)
    # Every other input is read.
    for read in (0, 2):
        other = inputs.clone()
        other[:, read] += 1.0
        assert not th.allclose(model.forward_elites_mean(other), model.forward_elites_mean(inputs))
    # The mask is not in the state dict: a model saved before the argument existed loads, and reads every input.
    plain = ProbabilisticEnsemble(3, 2, n_members=3, n_elite_members=2, hidden_sizes=(16, 16))
    plain.load_state_dict(model.state_dict())
    assert "input_mask" not in model.state_dict()
    assert not th.allclose(plain.forward_elites_mean(moved), model.forward_elites_mean(moved))
    with pytest.raises(ValueError, match="ignored_inputs"):
        ProbabilisticEnsemble(3, 2, ignored_inputs=[3])


def test_reported_holdout_errors_are_those_of_the_restored_weights() -> None:
    # The fit restores each member's best epoch and reports (and picks the elites by) the errors it kept for it: they
    # must be what a fresh scoring of the restored model gives.
    gen = th.Generator().manual_seed(3)
    x = th.rand(800, 2, generator=gen) * 4 - 2
    y = _target(x) + 0.05 * th.randn(800, 2, generator=gen)
    th.manual_seed(0)
    model = ProbabilisticEnsemble(2, 2, n_members=4, n_elite_members=2, hidden_sizes=(16,))
    fit_gen = th.Generator().manual_seed(4)
    info = model.fit(x, y, make_adam(model.parameters(), lr=3e-3), max_epochs=8, batch_size=32, generator=fit_gen)
    # The same split as the fit's: its generator's first draw is the permutation of the data.
    perm = th.randperm(800, generator=th.Generator().manual_seed(4))
    hold = perm[:80]
    rescored = model.member_mse(x[hold], y[hold])
    reported = th.tensor([info[f"holdout_mse_member_{i}"] for i in range(4)])
    assert th.allclose(rescored, reported, rtol=1e-6, atol=0)
    assert th.equal(model.elite_idx, th.sort(th.argsort(rescored)[:2]).values)
