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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", default=["pets", "p_sep_bc"], choices=sorted(RUNS))
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=Path("locomotion_diagnosis.jsonl"))
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override a constructor argument")
    args = parser.parse_args()
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    done = set()
    if args.results.exists():
        for line in args.results.read_text().splitlines():
            rec = json.loads(line)
            if rec["timesteps"] >= args.steps:
                done.add((rec["run"], rec["env"], rec["seed"]))
    for name in args.runs:
        if (name, args.env, args.seed) in done:
            print(f"{name}: already in {args.results}")
            continue
        run(name, args.env, args.steps, args.seed, args.results, overrides)


if __name__ == "__main__":
    main()
