"""Returns reached by the POPLIN family after fixed numbers of real steps, with MPC and policy control.

Each (variant, env, seed) run trains once and is evaluated at every checkpoint (e.g. 3,000 and 5,000 steps) with
MPC control (planning with the learned model) and policy control (the distilled network alone), on evaluation
episodes seeded apart from training. All variants share one configuration (population, horizon, CEM iterations,
ensemble); random shooting gets population x iterations candidates in its single round, the same number of model
evaluations. Also times one planning step at the small and at the paper's configuration. Writes a markdown table.

    python -m benchmarks.learning_returns                                  # POPLIN-A-Init and POPLIN-P-Sep-BC
    python -m benchmarks.learning_returns --variants all --checkpoints 5000 --output docs/variants.md
    python -m benchmarks.learning_returns --quick                          # a smoke run

With ``--results runs.jsonl`` every finished run is appended to that file as it ends, and runs already in it (same
variant, env, seed, checkpoints, evaluation episodes and configuration) are not repeated: an interrupted sweep resumes
where it stopped, and the table is written from the file.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from sb3_poplin.__main__ import DEFAULT_CONFIG

SMALL_CONFIG: dict[str, Any] = DEFAULT_CONFIG  # the configuration of `python -m sb3_poplin`
PAPER_CONFIG: dict[str, Any] = dict(population_size=500, n_elites=50, horizon=30, cem_iterations=5, ensemble_size=5)

#: name -> (algorithm class name, constructor arguments)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "POPLIN-A-Init": ("POPLIN_A", dict(planning_variant="init")),
    "POPLIN-A-Replan": ("POPLIN_A", dict(planning_variant="replan")),
    "POPLIN-P-Uni-BC": ("POPLIN_P", dict(planning_variant="uni", distillation="bc")),
    "POPLIN-P-Sep-BC": ("POPLIN_P", dict(planning_variant="sep", distillation="bc")),
    "POPLIN-P-Uni-GAN": ("POPLIN_P", dict(planning_variant="uni", distillation="gan")),
    "POPLIN-P-Sep-GAN": ("POPLIN_P", dict(planning_variant="sep", distillation="gan")),
    "POPLIN-P-Uni-AVG": ("POPLIN_P", dict(planning_variant="uni", distillation="avg")),
    "POPLIN-P-Sep-AVG": ("POPLIN_P", dict(planning_variant="sep", distillation="avg")),
    "PETS": ("PETS", {}),
    "RS": ("RS", {}),
}
CORE_VARIANTS = ["POPLIN-A-Init", "POPLIN-P-Sep-BC"]


def _run(job: dict[str, Any]) -> dict[str, Any]:
    """One training run with evaluations at the checkpoints (in its own process, one thread)."""
    import torch as th
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    import sb3_poplin

    th.set_num_threads(1)
    algo_name, variant_kwargs = VARIANTS[job["variant"]]
    algo = getattr(sb3_poplin, algo_name)
    config = dict(job["config"], **variant_kwargs)
    if algo_name == "RS":
        config["population_size"] = config["population_size"] * config.get("cem_iterations", 5)
    checkpoints = sorted(job["checkpoints"])
    results: dict[str, Any] = dict(job)

    class Checkpoints(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps in checkpoints:
                model = self.model
                env = make_vec_env(job["env"], n_envs=1, seed=10_000 + job["seed"])
                for mode in ("mpc", "policy") if model.uses_policy_network else ("mpc",):
                    model.predict_with = mode
                    mean, _ = evaluate_policy(model, env, n_eval_episodes=job["eval_episodes"])
                    results[f"{mode}@{self.num_timesteps}"] = float(mean)
                model.predict_with = "mpc"
            return True

    model = algo("MlpPolicy", job["env"], seed=job["seed"], **config)
    start = time.perf_counter()
    model.learn(checkpoints[-1], callback=Checkpoints())
    results["seconds"] = time.perf_counter() - start
    results["fit_s"] = model.dynamics_train_seconds
    results["holdout_mse"] = model.last_dynamics_info.get("holdout_mse", float("nan"))
    if job.get("save_buffer"):
        model.save_replay_buffer(job["save_buffer"].format(**job))
    results["plan_ms_median"] = 1000 * float(np.median(model._plan_times)) if model._plan_times else float("nan")
    return results


def time_planning(env_id: str, config: dict[str, Any], algo_name: str, repeats: int) -> float:
    """Median wall time (ms) of one planning step of an untrained model (planning cost does not depend on training)."""
    import gymnasium as gym

    import sb3_poplin

    algo = getattr(sb3_poplin, algo_name)
    model = algo("MlpPolicy", env_id, seed=0, **config)
    obs, _ = gym.make(env_id).reset(seed=0)
    state = None
    model.predict(obs)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        _, state = model.predict(obs, state=state)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def _parse_overrides(items: list[str]) -> dict[str, dict[str, Any]]:
    """``["init_sigma=0.2", "PETS.horizon=30"]`` -> ``{"": {"init_sigma": 0.2}, "PETS": {"horizon": 30}}``."""
    overrides: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set expects [VARIANT.]KEY=VALUE, got {item!r}")
        variant, dot, name = key.rpartition(".")
        if dot and variant not in VARIANTS:
            raise SystemExit(f"--set {item!r}: unknown variant {variant!r}; choose from {list(VARIANTS)}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        overrides.setdefault(variant, {})[name] = value
    return overrides


def _same_job(result: dict[str, Any], job: dict[str, Any]) -> bool:
    """Whether a finished run's record answers this job (so a resumed sweep need not repeat it)."""
    return all(result.get(key) == job[key] for key in ("variant", "env", "seed", "checkpoints", "eval_episodes", "config"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=CORE_VARIANTS, help=f"'all' or names from {list(VARIANTS)}")
    parser.add_argument("--envs", nargs="+", default=["Pendulum-v1", "InvertedPendulum-v5"])
    parser.add_argument("--checkpoints", nargs="+", type=int, default=[3000, 5000])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--eval-episodes", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="one seed, 600 steps, Pendulum only")
    parser.add_argument("--output", default="docs/learning.md")
    parser.add_argument("--title", default="Returns reached (small configuration)", help="heading of the markdown file")
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="[VARIANT.]KEY=VALUE",
        help="constructor arguments on top of the shared configuration (VALUE is JSON, else a string); "
        "a VARIANT. prefix limits one to that variant, e.g. POPLIN-A-Init.init_sigma=0.2",
    )
    parser.add_argument("--results", default=None, help="JSON-lines file of finished runs: appended to, and resumed from")
    parser.add_argument(
        "--save-buffers",
        default=None,
        metavar="PATTERN",
        help="save each run's replay buffer at the end, e.g. runs/{variant}_{env}_{seed}.pkl (fields of the job)",
    )
    parser.add_argument("--timing-algos", nargs="*", default=["POPLIN_A", "POPLIN_P"])
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the planning timings")
    args = parser.parse_args()
    if args.variants == ["all"]:
        args.variants = list(VARIANTS)
    if args.quick:
        args.envs, args.checkpoints, args.seeds, args.eval_episodes = ["Pendulum-v1"], [400, 600], 1, 1

    overrides = _parse_overrides(args.set)
    jobs = [
        dict(
            variant=v,
            env=e,
            seed=s,
            checkpoints=args.checkpoints,
            eval_episodes=args.eval_episodes,
            config={**SMALL_CONFIG, **overrides.get("", {}), **overrides.get(v, {})},
            save_buffer=args.save_buffers,
        )
        for e in args.envs
        for v in args.variants
        for s in range(args.seeds)
    ]
    results = []
    if args.results is not None and Path(args.results).exists():
        with open(args.results) as file:
            finished = [json.loads(line) for line in file if line.strip()]
        results = [r for r in finished if any(_same_job(r, job) for job in jobs)]
        jobs = [job for job in jobs if not any(_same_job(r, job) for r in results)]
        print(f"{len(results)} runs read from {args.results}, {len(jobs)} to go", flush=True)
    with mp.get_context("spawn").Pool(args.workers) as pool:
        for result in pool.imap_unordered(_run, jobs):
            print(json.dumps({k: v for k, v in result.items() if k != "config"}), flush=True)
            results.append(result)
            if args.results is not None:
                with open(args.results, "a") as file:
                    file.write(json.dumps(result) + "\n")

    lines = [
        f"# {args.title}",
        "",
        f"Command: `python -m benchmarks.learning_returns {shlex.join(sys.argv[1:])}`. "
        f"{args.seeds} seeds, mean +/- std over seeds of the mean return of {args.eval_episodes} evaluation episodes. "
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, one torch thread per run.",
        "",
        f"Configuration: `{json.dumps(SMALL_CONFIG)}`, other arguments at their defaults (init_sigma: 0.5 for "
        "POPLIN-A, 0.03 for P-BC and P-GAN, 0.1 for P-AVG, 0.5 for PETS; RS draws population x 5 sequences)"
        + (f'; overridden: `{json.dumps(overrides)}` ("" = every variant).' if overrides else "."),
        "",
        "| env | variant | steps | MPC control | policy control | train time (s) | of which model fitting (s) "
        "| last hold-out MSE | plan ms/step |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def cell(values: list[float]) -> str:
        return f"{np.mean(values):.1f} +/- {np.std(values):.1f}" if values else "n/a"

    for env in args.envs:
        for variant in args.variants:
            runs = [r for r in results if r["env"] == env and r["variant"] == variant]
            for step in args.checkpoints:
                mpc = [r[f"mpc@{step}"] for r in runs if f"mpc@{step}" in r]
                pol = [r[f"policy@{step}"] for r in runs if f"policy@{step}" in r]
                fit = [r["fit_s"] for r in runs if "fit_s" in r]  # runs recorded before these fields have neither
                mse = [r["holdout_mse"] for r in runs if "holdout_mse" in r]
                lines.append(
                    f"| {env} | {variant} | {step} | {cell(mpc)} | {cell(pol)} | "
                    f"{np.mean([r['seconds'] for r in runs]):.0f} | {f'{np.mean(fit):.0f}' if fit else 'n/a'} | "
                    f"{f'{np.mean(mse):.4g}' if mse else 'n/a'} | {np.mean([r['plan_ms_median'] for r in runs]):.1f} |"
                )

    if args.skip_timing:
        args.timing_algos = []
    import torch as th

    th.set_num_threads(args.threads)
    if args.timing_algos:
        lines += ["", f"## Planning time per env step (untrained model, median, {args.threads} torch thread(s))", ""]
        lines += ["| env | algorithm | config | ms per step |", "|---|---|---|---:|"]
    repeats = 3 if args.quick else 20
    for env in ["Pendulum-v1", "HalfCheetah-v5"]:
        for algo in args.timing_algos:
            for name, config in (("small", SMALL_CONFIG), ("paper (500 x 30 x 5 iters, 5 x 4x200)", PAPER_CONFIG)):
                ms = time_planning(env, config, algo, repeats)
                lines.append(f"| {env} | {algo} | {name} | {ms:.1f} |")
                print(lines[-1], flush=True)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
