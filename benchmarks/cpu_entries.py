"""
Planning time of the CPU hyperparameter set against the paper-size entries, side by side in one process.

For every algorithm with a CPU entry (``sb3_poplin/hyperparams/cpu/<algo>.yml``) and every env it covers, the model is
built twice, from the CPU entry and from the paper-size entry of the default file (``sb3_poplin/hyperparams/<algo>.yml``),
with one torch thread, and ``model.predict`` (one MPC planning step) is timed on the env's first observation, the two
models alternating so that both see the same machine load. Networks are untrained: a planning step costs the same
whatever they learned. Prints, and writes ``docs/cpu_entries.md``::

    python -m benchmarks.cpu_entries                 # every algorithm and env, 7 repetitions
    python -m benchmarks.cpu_entries --algos poplin_p --envs HalfCheetah-v5 --reps 3 --output /dev/null
"""

from __future__ import annotations

import argparse
import inspect
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch as th
import yaml

from sb3_poplin.zoo.registry import ZOO_ALGOS, hyperparams_file

#: yml keys that are not constructor arguments of the algorithm
NOT_ARGUMENTS = ("n_timesteps", "policy", "normalize", "n_envs", "env_wrapper", "frame_stack", "callback")


def entry(algo: str, env_id: str, config_set: str | None) -> dict[str, Any]:
    """The constructor arguments of one yml entry (zoo-only keys dropped, strings like ``dict(...)`` evaluated)."""
    raw = yaml.safe_load(hyperparams_file(algo, config_set).read_text())[env_id]
    kwargs = {key: value for key, value in raw.items() if key not in NOT_ARGUMENTS}
    if isinstance(kwargs.get("policy_kwargs"), str):
        kwargs["policy_kwargs"] = eval(kwargs["policy_kwargs"])  # the zoo's own convention for policy_kwargs strings
    return kwargs


def evaluations_per_step(kwargs: dict[str, Any], algo_class: type) -> int:
    """Model evaluations of one planning step: population x horizon x CEM iterations x particles."""
    defaults = {name: p.default for name, p in inspect.signature(algo_class).parameters.items()}
    settings = {**defaults, **kwargs}
    particles = 1 if settings["propagation"] in ("expectation", "E") else settings["num_particles"]
    return settings["population_size"] * settings["horizon"] * settings["cem_iterations"] * particles


def time_predict(model: Any, obs: Any, reps: int) -> float:
    start = time.perf_counter()
    for _ in range(reps):
        model.predict(obs, deterministic=False)
    return (time.perf_counter() - start) / reps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algos", nargs="+", default=["poplin_p", "poplin_a", "pets", "rs"])
    parser.add_argument("--envs", nargs="+", default=["HalfCheetah-v5", "Hopper-v5"])
    parser.add_argument("--reps", type=int, default=7, help="timed rounds (one paper-entry step, 5 CPU-entry steps)")
    parser.add_argument("--output", default="docs/cpu_entries.md")
    args = parser.parse_args(argv)
    th.set_num_threads(1)

    rows = []
    for env_id in args.envs:
        obs, _ = gym.make(env_id).reset(seed=0)
        for algo in args.algos:
            algo_class = ZOO_ALGOS[algo]
            built = {}
            for name, config_set in (("cpu", "cpu"), ("paper", None)):
                kwargs = entry(algo, env_id, config_set)
                kwargs.update(learning_starts=0, n_threads=1, seed=0)
                model = algo_class("MlpPolicy", env_id, **kwargs)
                model.predict(obs, deterministic=False)  # warm-up: first-call allocations
                built[name] = (model, evaluations_per_step(kwargs, algo_class))
            times: dict[str, list[float]] = {"cpu": [], "paper": []}
            for _ in range(args.reps):
                times["paper"].append(time_predict(built["paper"][0], obs, 1))
                times["cpu"].append(time_predict(built["cpu"][0], obs, 5))
            cpu_ms, paper_ms = (1000 * statistics.median(times[name]) for name in ("cpu", "paper"))
            row = dict(
                env=env_id,
                algo=algo,
                cpu_evals=built["cpu"][1],
                paper_evals=built["paper"][1],
                cpu_ms=cpu_ms,
                paper_ms=paper_ms,
            )
            rows.append(row)
            print(
                f"{env_id:15s} {algo:9s} cpu {cpu_ms:7.1f} ms ({row['cpu_evals']} evals)  "
                f"paper {paper_ms:7.1f} ms ({row['paper_evals']} evals)  ratio {paper_ms / cpu_ms:5.1f}x",
                flush=True,
            )

    load = os.getloadavg()
    lines = [
        "# The CPU hyperparameter set: planning time per step",
        "",
        "Written by `python -m benchmarks.cpu_entries`: one MPC planning step (`model.predict`) of each CPU entry "
        "(`sb3_poplin/hyperparams/cpu/`) and of the paper-size entry of the same algorithm and env, timed alternately in "
        f"one process with one torch thread (median of {args.reps} rounds). Model evaluations per step: population x "
        "horizon x CEM iterations x particles.",
        "",
        "| env | algorithm | CPU entry: evaluations / step | CPU entry: ms / step | paper entry: evaluations / step "
        "| paper entry: ms / step | paper / CPU time |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['env']} | {row['algo']} | {row['cpu_evals']:,} | {row['cpu_ms']:.0f} | {row['paper_evals']:,} | "
            f"{row['paper_ms']:.0f} | {row['paper_ms'] / row['cpu_ms']:.1f}x |"
        )
    lines += [
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {th.__version__}; load "
        f"average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min) when the run ended: with other jobs on the "
        "cores the absolute times are higher than on an idle core, the ratios hold.",
        "",
    ]
    if args.output and args.output != "/dev/null":
        Path(args.output).write_text("\n".join(lines))
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
