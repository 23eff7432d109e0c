"""The torch thread count of planning and training: the rule, the context manager, the model's argument."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch as th

import sb3_poplin.common.threads as threads
from sb3_poplin import PETS, POPLIN_P
from sb3_poplin.common.threads import (
    FreeCores,
    auto_threads,
    mlp_ensemble_flops,
    model_call_flops,
    model_threads_count,
    torch_threads,
)


@pytest.fixture
def two_caller_threads() -> Iterator[None]:
    """The caller allows two threads (the suite runs on one, see conftest)."""
    previous = th.get_num_threads()
    th.set_num_threads(2)
    try:
        yield
    finally:
        th.set_num_threads(previous)


def test_auto_threads_grows_with_the_work_and_stays_within_the_cap() -> None:
    per_thread = threads.FLOPS_PER_EXTRA_THREAD
    assert auto_threads(0.3 * per_thread, 16) == 1  # the README's Pendulum planning call
    assert auto_threads(per_thread, 16) == 2
    assert auto_threads(64 * per_thread, 16) == 16  # the paper's planning call, capped
    assert auto_threads(64 * per_thread, 3) == 3
    assert auto_threads(64 * per_thread, 0) == 1
    assert auto_threads(64 * per_thread) == th.get_num_threads()  # default cap: the caller's count


def test_mlp_ensemble_flops_counts_every_layer() -> None:
    # 2 members x 10 rows x (3*4 + 4*5 + 5*2) multiply-adds
    assert mlp_ensemble_flops(10, 3, [4, 5], 2, 2) == 2 * 10 * 2 * (12 + 20 + 10)


def test_torch_threads_sets_and_restores(two_caller_threads: None) -> None:
    with torch_threads(1):
        assert th.get_num_threads() == 1
        with torch_threads(1):  # nested, same count
            assert th.get_num_threads() == 1
    assert th.get_num_threads() == 2
    with pytest.raises(RuntimeError, match="inside"):
        with torch_threads(1):
            raise RuntimeError("inside")
    assert th.get_num_threads() == 2
    with torch_threads(None):
        assert th.get_num_threads() == 2


def test_free_cores_subtracts_other_processes_and_not_this_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """4 CPUs for 1 s: the counters say 3 cores were busy, of which this process used 1, so 2 others: 2 free."""
    readings = iter([(0.0, 0.0, 0.0, 0.0), (1.0, 300.0, 400.0, 1.0)])
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(FreeCores, "usable_cores", staticmethod(lambda: 4))
    monkeypatch.setattr(FreeCores, "_reading", lambda self: next(readings))
    monkeypatch.setattr(threads.time, "sleep", lambda seconds: None)
    free = FreeCores(min_window=0.5)
    assert free() == 2
    assert free() == 2  # a fresh reading is reused (the iterator would be exhausted otherwise)


def test_free_cores_of_this_machine_is_a_valid_count() -> None:
    count = FreeCores(min_window=0.01)()
    assert 1 <= count <= FreeCores.usable_cores()


def test_model_call_flops(tiny_kwargs: dict[str, Any]) -> None:
    model = POPLIN_P("MlpPolicy", "Pendulum-v1", **tiny_kwargs)
    in_dim, out_dim, hidden = 4, 3, tiny_kwargs["dynamics_net_arch"]
    members, population = tiny_kwargs["ensemble_size"], tiny_kwargs["population_size"]
    assert model_call_flops(model, "planning") == mlp_ensemble_flops(population, in_dim, hidden, out_dim, members)
    batch = model.dynamics_batch_size
    assert model_call_flops(model, "training") == 3 * mlp_ensemble_flops(batch, in_dim, hidden, 2 * out_dim, members)
    sampled = PETS("MlpPolicy", "Pendulum-v1", **{**tiny_kwargs, "propagation": "fixed_model", "num_particles": 4})
    assert model_call_flops(sampled, "planning") == mlp_ensemble_flops(population, in_dim, hidden, 2 * out_dim, 4)
    with pytest.raises(ValueError, match="phase"):
        model_call_flops(model, "acting")


def spy_threads(model: POPLIN_P) -> dict[str, set[int]]:
    """Record the torch thread count inside every plan and every ensemble fit of ``model``."""
    seen: dict[str, set[int]] = {"planning": set(), "training": set()}
    plan, fit = model.planner.plan, model.dynamics.fit

    def planning(*args: Any, **kwargs: Any) -> Any:
        seen["planning"].add(th.get_num_threads())
        return plan(*args, **kwargs)

    def training(*args: Any, **kwargs: Any) -> Any:
        seen["training"].add(th.get_num_threads())
        return fit(*args, **kwargs)

    model.planner.plan, model.dynamics.fit = planning, training  # type: ignore[method-assign]
    return seen


def test_small_models_plan_and_train_on_one_thread_and_restore_the_callers_count(
    tiny_kwargs: dict[str, Any], two_caller_threads: None
) -> None:
    model = POPLIN_P("MlpPolicy", "Pendulum-v1", seed=0, **{**tiny_kwargs, "learning_starts": 20})
    assert model.n_threads is None
    assert model_threads_count(model, "planning") == 1 and model_threads_count(model, "training") == 1
    seen = spy_threads(model)
    model.learn(30)
    assert seen == {"planning": {1}, "training": {1}}
    assert th.get_num_threads() == 2
    model.predict(model.env.reset())
    assert th.get_num_threads() == 2


def test_large_work_uses_the_idle_cores_up_to_the_callers_count(
    tiny_kwargs: dict[str, Any], two_caller_threads: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = POPLIN_P("MlpPolicy", "Pendulum-v1", seed=0, **tiny_kwargs)
    monkeypatch.setattr(threads, "FLOPS_PER_EXTRA_THREAD", 1.0)  # every call is "large"
    monkeypatch.setattr(threads, "free_cores", lambda: 2)
    assert model_threads_count(model, "planning") == 2
    monkeypatch.setattr(threads, "free_cores", lambda: 1)  # the other core is busy: no second thread
    assert model_threads_count(model, "planning") == 1


def test_n_threads_overrides_and_is_saved(tiny_kwargs: dict[str, Any], tmp_path: Path) -> None:
    previous = th.get_num_threads()
    model = POPLIN_P("MlpPolicy", "Pendulum-v1", seed=0, n_threads=2, **{**tiny_kwargs, "learning_starts": 20})
    seen = spy_threads(model)
    model.learn(22)  # two threads are slow on a busy machine: the fewest planned steps
    assert seen == {"planning": {2}, "training": {2}}
    assert th.get_num_threads() == previous
    model.save(tmp_path / "model.zip")
    assert POPLIN_P.load(tmp_path / "model.zip").n_threads == 2
    assert POPLIN_P.load(tmp_path / "model.zip", n_threads=None).n_threads is None
    with pytest.raises(ValueError, match="n_threads"):
        POPLIN_P("MlpPolicy", "Pendulum-v1", n_threads=0, **tiny_kwargs)


def test_training_inside_learn_is_capped_by_the_callers_count_not_by_planning(
    tiny_kwargs: dict[str, Any], two_caller_threads: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planning small (one thread) around training large: training may still use the caller's two threads."""
    model = POPLIN_P("MlpPolicy", "Pendulum-v1", seed=0, **{**tiny_kwargs, "learning_starts": 20})
    monkeypatch.setattr(threads, "free_cores", lambda: 2)
    per_phase = {"planning": 1.0, "training": 1e12}
    monkeypatch.setattr(threads, "model_call_flops", lambda model, phase: per_phase[phase])
    seen = spy_threads(model)
    model.learn(22)
    assert seen == {"planning": {1}, "training": {2}}
    assert th.get_num_threads() == 2 and threads._callers_counts == []
