"""What a run logs (stdout table, tensorboard, file formats) and what its progress bar shows."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import stable_baselines3.common.callbacks as sb3_callbacks
from stable_baselines3.common.logger import KVWriter, Logger

from sb3_poplin import POPLIN_P
from sb3_poplin.common.logs import PlanningProgressBar

EPISODE = 50


class RecordingWriter(KVWriter):
    """Keeps every dump: (step, values, exclusions)."""

    def __init__(self) -> None:
        self.dumps: list[tuple[int, dict[str, Any], dict[str, Any]]] = []

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        self.dumps.append((step, dict(key_values), dict(key_excluded)))

    def values(self, key: str) -> list[tuple[int, Any]]:
        return [(step, values[key]) for step, values, _ in self.dumps if key in values]

    def excluded(self, key: str) -> tuple[str, ...]:
        for _, values, exclusions in self.dumps:
            if key in values:
                return tuple(exclusions.get(key) or ())
        raise KeyError(key)


def short_pendulum() -> gym.Env:
    return gym.make("Pendulum-v1", max_episode_steps=EPISODE)


def logged_run(tiny_kwargs: dict[str, Any], steps: int, **kwargs: Any) -> tuple[POPLIN_P, RecordingWriter]:
    """A tiny POPLIN-P with one random episode, then planned ones, logging into a recording writer."""
    model = POPLIN_P("MlpPolicy", short_pendulum(), seed=0, **{**tiny_kwargs, "learning_starts": EPISODE, **kwargs})
    writer = RecordingWriter()
    model.set_logger(Logger(folder=None, output_formats=[writer]))
    model.learn(steps)
    return model, writer


@pytest.fixture(scope="module")
def run(request: pytest.FixtureRequest) -> tuple[POPLIN_P, RecordingWriter]:
    from tests.conftest import TINY

    return logged_run(dict(TINY), 4 * EPISODE, policy_eval_freq=4 * EPISODE, policy_eval_episodes=2)


def test_the_story_of_a_run_is_logged(run: tuple[POPLIN_P, RecordingWriter]) -> None:
    model, writer = run
    assert [step for step, _ in writer.values("time/fps")] == [EPISODE, 2 * EPISODE, 3 * EPISODE, 4 * EPISODE]
    # SB3's own keys, and ours
    for key in ("time/fps", "rollout/ep_rew_mean", "rollout/ep_rew_last", "time/eta_s", "time/plan_ms"):
        assert writer.values(key), key
    for key in ("time/dynamics_train_s", "time/distillation_s", "train/dynamics_holdout_mse", "time/plan_ms_median"):
        assert writer.values(key), key
    returns = [float(info["r"]) for info in model.ep_info_buffer]
    assert [value for _, value in writer.values("rollout/ep_rew_last")] == pytest.approx(returns)
    # the time left shrinks to zero at the end of the run
    eta = [value for _, value in writer.values("time/eta_s")]
    assert eta[-1] == 0.0 and all(value > 0 for value in eta[:-1])
    assert model.last_model_fit_s is not None and model.last_model_fit_s > 0


def test_the_hold_out_error_of_every_member_goes_to_tensorboard_not_to_the_table(
    run: tuple[POPLIN_P, RecordingWriter],
) -> None:
    model, writer = run
    members = [f"train/dynamics_holdout_mse_member_{i}" for i in range(model.ensemble_size)]
    for key in members:
        assert writer.values(key) and np.isfinite(writer.values(key)[-1][1])
        assert writer.excluded(key) == ("stdout",)
    for key in ("rollout/ep_rew_last", "time/eta_s", "time/plan_ms", "time/dynamics_train_s", "train/dynamics_holdout_mse"):
        assert "tensorboard" not in writer.excluded(key), key
    # the elites' mean is the mean of the elite members' errors
    elites = model.dynamics.elite_idx.tolist()
    step, elite_mean = writer.values("train/dynamics_holdout_mse")[-1]
    per_member = {key: dict(writer.values(key))[step] for key in members}
    assert elite_mean == pytest.approx(np.mean([per_member[members[i]] for i in elites]))


def test_mpc_return_counts_only_planned_episodes(run: tuple[POPLIN_P, RecordingWriter]) -> None:
    model, writer = run
    returns = [float(info["r"]) for info in model.ep_info_buffer]
    # the first episode is the random warm-up
    assert list(model.mpc_episode_returns) == pytest.approx(returns[1:])
    assert writer.values("rollout/mpc_ep_rew_mean")[-1][1] == pytest.approx(np.mean(returns[1:]))
    # the policy evaluation at step 200 ran before the 4th episode's end was counted: episodes 2 and 3
    ((step, value),) = writer.values("eval/mpc_control_return")
    assert step == 4 * EPISODE and value == pytest.approx(np.mean(returns[1:3]))
    assert writer.values("eval/policy_control_return")


def test_verbose_table_shows_the_new_keys(tiny_kwargs: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    model = POPLIN_P("MlpPolicy", short_pendulum(), seed=0, verbose=1, **{**tiny_kwargs, "learning_starts": EPISODE})
    model.learn(2 * EPISODE)
    out = capsys.readouterr().out
    for key in ("ep_rew_last", "eta_s", "plan_ms", "dynamics_train_s", "fps", "dynamics_holdout_mse"):
        assert key in out, key
    assert "member_0" not in out


class FakeBar:
    """Stands in for tqdm.rich's bar: records what the progress bar callback shows."""

    instances: list[FakeBar] = []

    def __init__(self, total: int) -> None:
        self.total, self.n, self.descriptions = total, 0, []
        FakeBar.instances.append(self)

    def update(self, n: int) -> None:
        self.n += n

    def set_description(self, description: str) -> None:
        self.descriptions.append(description)

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_progress_bar_shows_return_planning_time_and_model_fit(
    tiny_kwargs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sb3_callbacks, "tqdm", FakeBar)
    FakeBar.instances = []
    model = POPLIN_P("MlpPolicy", short_pendulum(), seed=0, **{**tiny_kwargs, "learning_starts": EPISODE})
    callback = model._init_callback(None, progress_bar=True)
    assert sum(isinstance(c, PlanningProgressBar) for c in callback.callbacks) == 1
    model.learn(3 * EPISODE, progress_bar=True)
    (bar,) = FakeBar.instances
    assert bar.total == 3 * EPISODE and bar.n == 3 * EPISODE
    assert len(bar.descriptions) == 3  # one per finished episode
    assert bar.descriptions[0].startswith("return ")
    last = bar.descriptions[-1]
    assert "ms/step" in last and "model fit" in last and f"return {model.ep_info_buffer[-1]['r']:.0f}" in last
