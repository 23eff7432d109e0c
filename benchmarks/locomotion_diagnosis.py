"""Why does a planner learn (or not) on a locomotion task? Per-episode evidence from short training runs.

Each run trains one configuration for a few episodes and records, for every real step it plans:

* the planner's predicted return of the plan it executes (mean predicted return of the last CEM iteration's elites,
  over the planning horizon ``H``) and the return the real env then paid over the next ``H`` steps: a planner whose
  predictions far exceed what it gets is exploiting model error;
* the spread of the elites' predicted returns (how much the search distinguishes candidates);
* the mean absolute executed action (a search that cannot move the actions far from zero gets no speed);
* the model's one-step hold-out error after each training.

Per episode it appends one JSON line to ``--results`` (resumable: finished runs are skipped). Run from the repository
root, one torch thread per run::

    python -m benchmarks.locomotion_diagnosis --runs pets p_sep_bc --steps 4000 --results diag.jsonl
    python -m benchmarks.locomotion_diagnosis --model-fit 1000 3000 --results fit.jsonl   # the model alone, on random data
    python -m benchmarks.locomotion_diagnosis --replan run.zip --env Hopper-v5 --horizons 15 30 60   # a trained model
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

#: Planning settings shared by every diagnostic run (about 20k model evaluations per step, 0.2-0.4 s on one core).
BASE: dict[str, Any] = dict(
    learning_starts=1000,
    population_size=200,
    n_elites=20,
    cem_iterations=5,
    horizon=20,
    ensemble_size=5,
    dynamics_net_arch=[200, 200, 200, 200],
)

#: name -> (algorithm class, constructor arguments on top of BASE, env kwargs)
RUNS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "pets": ("PETS", dict(init_sigma=0.5), {}),
    "p_sep_bc": ("POPLIN_P", dict(planning_variant="sep", init_sigma=0.03, policy_kwargs=dict(net_arch=[32])), {}),
    "p_sep_bc_sigma0.1": ("POPLIN_P", dict(planning_variant="sep", init_sigma=0.1, policy_kwargs=dict(net_arch=[32])), {}),
    "p_sep_bc_64x64": (
        "POPLIN_P",
        dict(planning_variant="sep", init_sigma=0.03, policy_kwargs=dict(net_arch=[64, 64])),
        {},
    ),
    "p_sep_bc_exact": (
        "POPLIN_P",
        dict(planning_variant="sep", init_sigma=0.03, policy_kwargs=dict(net_arch=[32])),
        dict(exclude_current_positions_from_observation=False),
    ),
    "pets_exact": ("PETS", dict(init_sigma=0.5), dict(exclude_current_positions_from_observation=False)),
    "p_sep_bc_fit50": (
        "POPLIN_P",
        dict(planning_variant="sep", init_sigma=0.03, policy_kwargs=dict(net_arch=[32]), dynamics_epochs=50),
        {},
    ),
    "a_replan": ("POPLIN_A", dict(planning_variant="replan", init_sigma=0.5), {}),
}


def run(name: str, env_id: str, steps: int, seed: int, results: Path, overrides: dict[str, Any]) -> None:
    import gymnasium as gym
    import torch as th
    from stable_baselines3.common.callbacks import BaseCallback

    import sb3_poplin

    th.set_num_threads(1)
    algo_name, kwargs, env_kwargs = RUNS[name]
    config = dict(BASE, **kwargs, **overrides)
    env = gym.make(env_id, **env_kwargs)
    model = getattr(sb3_poplin, algo_name)("MlpPolicy", env, seed=seed, **config)
    horizon = model.horizon

    class Recorder(BaseCallback):
        def _init_callback(self) -> None:
            self.rewards: list[float] = []
            self.predicted: list[float] = []  # nan on random steps
            self.spread: list[float] = []
            self.abs_action: list[float] = []
            self.episode = 0
            self.start = time.perf_counter()

        def _on_step(self) -> bool:
            m = self.model
            self.rewards.append(float(self.locals["rewards"][0]))
            self.abs_action.append(float(np.abs(self.locals["buffer_actions"][0]).mean()))
            out = getattr(m, "_diag_last_out", None)
            if out is not None:
                elite = out.elite_returns[0]
                self.predicted.append(float(elite.mean()))
                self.spread.append(float(elite.max() - elite.min()))
                m._diag_last_out = None
            else:
                self.predicted.append(float("nan"))
                self.spread.append(float("nan"))
            if self.locals["dones"][0]:
                self._end_episode()
            return True

        def _end_episode(self) -> None:
            rewards = np.array(self.rewards)
            predicted = np.array(self.predicted)
            planned = ~np.isnan(predicted)
            realized = np.array([rewards[t : t + horizon].sum() for t in range(len(rewards))])
            full = np.arange(len(rewards)) <= len(rewards) - horizon  # windows inside the episode
            mask = planned & full
            logs = self.model.logger.name_to_value
            record = dict(
                run=name,
                env=env_id,
                seed=seed,
                episode=self.episode,
                timesteps=self.num_timesteps,
                episode_return=float(rewards.sum()),
                planned=bool(planned.any()),
                predicted_h_return=float(predicted[mask].mean()) if mask.any() else None,
                realized_h_return=float(realized[mask].mean()) if mask.any() else None,
                prediction_corr=float(np.corrcoef(predicted[mask], realized[mask])[0, 1]) if mask.sum() > 2 else None,
                elite_spread=float(np.nanmean(self.spread)) if planned.any() else None,
                mean_abs_action=float(np.mean(self.abs_action)),
                dynamics_holdout_mse=logs.get("train/dynamics_holdout_mse"),
                plan_ms=float(1000 * np.median(list(self.model._plan_times))) if self.model._plan_times else None,
                wall_s=time.perf_counter() - self.start,
                config={k: v for k, v in config.items()},
                env_kwargs=env_kwargs,
            )
            with results.open("a") as f:
                f.write(json.dumps(record) + "\n")
            print(json.dumps({k: v for k, v in record.items() if k not in ("config", "env_kwargs")}), flush=True)
            self.rewards, self.predicted, self.spread, self.abs_action = [], [], [], []
            self.episode += 1

    original_on_plan = model._on_plan

    def on_plan(raw_obs: np.ndarray, out: Any) -> None:
        model._diag_last_out = out
        original_on_plan(raw_obs, out)

    model._on_plan = on_plan  # type: ignore[method-assign]
    model.learn(steps, callback=Recorder())


def model_fit(env_id: str, sizes: list[int], seed: int) -> list[dict[str, Any]]:
    """How well the ensemble fits random data of a few episodes, as the first trainings see it.

    Random-action transitions of ``max(sizes)`` steps train the paper's ensemble (5 members of 4x200, batch 32) with the
    default 5 epochs and with at least 1,000 and 2,000 gradient steps; the test data is a random episode of another
    seed. Reports the one-step test MSE of the state change (against predicting no change) and the open-loop error of
    20-step predictions along that episode's actions.
    """
    import math

    import gymnasium as gym
    import torch as th

    from sb3_poplin.common.dynamics import ProbabilisticEnsemble

    th.set_num_threads(1)

    def collect(env_seed: int, n: int) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        env = gym.make(env_id)
        obs, _ = env.reset(seed=env_seed)
        rng = np.random.default_rng(env_seed)
        rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for _ in range(n):
            action = rng.uniform(env.action_space.low, env.action_space.high).astype(np.float32)
            next_obs, _, terminated, truncated, _ = env.step(action)
            rows.append((obs, action, next_obs))
            obs = next_obs if not (terminated or truncated) else env.reset()[0]
        return tuple(th.as_tensor(np.array(column), dtype=th.float32) for column in zip(*rows))  # type: ignore[return-value]

    obs, actions, next_obs = collect(seed, max(sizes))
    test_obs, test_actions, test_next = collect(seed + 1, 1000)
    obs_dim = obs.shape[1]
    test_inputs, test_targets = th.cat([test_obs, test_actions], 1), test_next - test_obs
    records = []
    for n in sizes:
        inputs, targets = th.cat([obs[:n], actions[:n]], 1), next_obs[:n] - obs[:n]
        batches = math.ceil((n - int(0.1 * n)) / 32)
        for label, epochs in (
            ("5 epochs", 5),
            ("1,000 steps", math.ceil(1000 / batches)),
            ("2,000 steps", math.ceil(2000 / batches)),
        ):
            epochs = max(epochs, 5)
            th.manual_seed(seed)
            model = ProbabilisticEnsemble(inputs.shape[1], obs_dim, 5, (200, 200, 200, 200))
            optimizer = th.optim.Adam(model.parameters(), lr=1e-3)
            info = model.fit(
                inputs, targets, optimizer, max_epochs=epochs, batch_size=32, generator=th.Generator().manual_seed(seed)
            )
            with th.no_grad():
                test_mse = float(((model.forward_elites_mean(test_inputs)[:, :obs_dim] - test_targets) ** 2).mean())
                errors = np.zeros(20)
                starts = range(0, 1000 - 20, 50)
                for start in starts:
                    state = test_obs[start : start + 1]
                    for h in range(20):
                        step = th.cat([state, test_actions[start + h : start + h + 1]], 1)
                        state = state + model.forward_elites_mean(step)[:, :obs_dim]
                        errors[h] += float(((state - test_obs[start + h + 1 : start + h + 2]) ** 2).mean())
                errors /= len(starts)
            record = dict(
                transitions=n,
                training=label,
                gradient_steps=int(info["updates"]),
                test_mse=test_mse,
                no_change_mse=float((test_targets**2).mean()),
                open_loop_mse={h: float(errors[h - 1]) for h in (1, 5, 10, 20)},
            )
            print(json.dumps(record), flush=True)
            records.append(record)
    return records


def open_loop_termination(model: Any, obs: np.ndarray, actions: np.ndarray) -> int | None:
    """The step at which the model, run open loop from ``obs`` on the executed ``actions`` (mean prediction of the
    elite members), predicts the episode terminates; None if it predicts none. Says whether the model foresaw a fall."""
    import torch as th

    rollout = model.model_rollout
    if rollout.termination_fn is None:
        return None
    state = th.as_tensor(obs, dtype=th.float32).reshape(1, -1)
    # The model reads actions in [-1, 1], the termination function in env units.
    scaled = th.as_tensor(model.policy.scale_action(actions), dtype=th.float32).reshape(len(actions), 1, -1)
    with th.no_grad():
        for step, action in enumerate(scaled, start=1):
            # the elite members' mean prediction, whatever propagation the model plans with
            next_state = state + rollout.mean_prediction(th.cat([state, action], dim=-1))[:, : rollout.obs_dim]
            if bool(rollout.termination_fn(state, rollout.unscale_action(action), next_state).item()):
                return step
            state = next_state
    return None


def replan(
    model_path: Path, env_id: str, horizons: list[int], episodes: int, seed: int, overrides: dict[str, Any]
) -> list[dict[str, Any]]:
    """Plan with a trained model (a saved zip) at several horizons, everything else as trained (or as ``overrides``
    say: planning arguments such as ``init_sigma`` or ``population_size``).

    Separates the horizon from what the model and the policy learned: the same networks, CEM settings and seeds, only
    how far ahead the planner looks changes. For a task that terminates, whether a longer look-ahead avoids a fall the
    trained horizon cannot see.
    """
    import gymnasium as gym
    import torch as th
    from stable_baselines3.common.save_util import load_from_zip_file

    from sb3_poplin.zoo.registry import ZOO_ALGOS

    th.set_num_threads(1)
    records = []
    data, _, _ = load_from_zip_file(model_path, load_data=True)
    algo_class = {cls.__name__: cls for cls in ZOO_ALGOS.values()}[data["algorithm_name"]]
    for horizon in horizons:
        model = algo_class.load(model_path, env=gym.make(env_id), device="cpu", **{"horizon": horizon, **overrides})
        env = gym.make(env_id)
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed + episode)
            model.set_random_seed(seed + episode)
            state, start, total, length, done = None, True, 0.0, 0, False
            plan_s = 0.0
            first_obs, actions = obs, []
            while not done:
                tic = time.perf_counter()
                action, state = model.predict(obs, state=state, episode_start=np.array([start]), deterministic=True)
                plan_s += time.perf_counter() - tic
                obs, reward, terminated, truncated, _ = env.step(action)
                actions.append(action)
                total, length, start, done = total + float(reward), length + 1, False, terminated or truncated
            record = dict(kind="replan", model=str(model_path), env=env_id, horizon=horizon, episode=episode, seed=seed)
            record.update(overrides)
            record.update(ret=total, length=length, terminated=bool(terminated), plan_ms=1000 * plan_s / length)
            record.update(predicted_termination_step=open_loop_termination(model, first_obs, np.array(actions)))
            print(json.dumps(record))
            records.append(record)
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", default=["pets", "p_sep_bc"], choices=sorted(RUNS))
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=Path("locomotion_diagnosis.jsonl"))
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override a constructor argument")
    parser.add_argument(
        "--model-fit",
        nargs="*",
        type=int,
        default=None,
        metavar="N",
        help="instead of training runs: fit the ensemble on N random transitions (e.g. 1000 3000)",
    )
    parser.add_argument("--replan", type=Path, default=None, metavar="ZIP", help="instead: plan with this trained model")
    parser.add_argument("--horizons", nargs="+", type=int, default=[15, 30, 60], help="with --replan")
    parser.add_argument("--episodes", type=int, default=2, help="with --replan: episodes per horizon")
    args = parser.parse_args()
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    if args.replan is not None:
        records = replan(args.replan, args.env, args.horizons, args.episodes, args.seed, overrides)
        with args.results.open("a") as f:
            f.writelines(json.dumps(r) + "\n" for r in records)
        return
    if args.model_fit is not None:
        records = model_fit(args.env, args.model_fit or [1000, 3000], args.seed)
        with args.results.open("a") as f:
            f.writelines(json.dumps(dict(kind="model_fit", env=args.env, seed=args.seed, **r)) + "\n" for r in records)
        return
    done = set()
    if args.results.exists():
        for line in args.results.read_text().splitlines():
            rec = json.loads(line)
            if rec.get("kind") != "model_fit" and rec["timesteps"] >= args.steps:
                done.add((rec["run"], rec["env"], rec["seed"]))
    for name in args.runs:
        if (name, args.env, args.seed) in done:
            print(f"{name}: already in {args.results}")
            continue
        run(name, args.env, args.steps, args.seed, args.results, overrides)


if __name__ == "__main__":
    main()
