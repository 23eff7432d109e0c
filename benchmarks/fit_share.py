"""
Share of a long run's wall time that goes to training (model fitting and distillation), with the CPU entries.

Once a run's buffer is large enough for the cap to bind (the CPU entries' ``dynamics_max_updates``: 1,500 gradient
steps, from ~10.7k transitions), every training iteration fits the ensemble for that many steps and then distils the
policy, while each 1,000-step episode plans 1,000 steps. This benchmark measures both in one process, alternately, so
that they see the same machine load: for every CPU entry (``sb3_poplin/hyperparams/cpu/<algo>.yml``) and env, one model
is built from the entry, its replay buffer is filled with ``--transitions`` synthetic transitions of the env's sizes (a
gradient step costs the same whatever the data), and each round times

* planning: the median of 5 MPC steps (``model.predict``);
* one training iteration (``model.train``: the capped fit and the distillation) with the ensemble's optimiser as the
  algorithms build it (torch's fused Adam, :func:`sb3_poplin.common.dynamics.make_adam`);
* the same iteration with torch's default Adam (the optimiser before the fused one), for the before/after ratio.

The share of a long run is ``train / (train + 1,000 x plan)``: one training per 1,000-step episode, as on
HalfCheetah-v5 (Hopper-v5's episodes end early and train more often, see the note of the written section)::

    python -m benchmarks.fit_share                      # every CPU entry; writes its section of docs/performance.md
    python -m benchmarks.fit_share --algos pets --envs HalfCheetah-v5 --rounds 1 --output ''   # smoke run
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th

from benchmarks.cpu_entries import entry, time_predict
from benchmarks.fit_budget import write_section
from sb3_poplin.zoo.registry import ZOO_ALGOS

COMMAND = "python -m benchmarks.fit_share"

#: real steps per training iteration in a long run (one HalfCheetah-v5 episode)
STEPS_PER_TRAINING = 1000


def fill_buffer(model: Any, n: int, seed: int = 0) -> None:
    """``n`` synthetic transitions of the model's observation and action sizes, whose next state is a smooth function
    of state and action (learnable, so the hold-out error improves and early stopping acts as on real data)."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, 1, model.obs_dim)).astype(np.float32)
    actions = rng.uniform(-1, 1, size=(n, 1, model.act_dim)).astype(np.float32)
    mixing = rng.normal(size=(model.obs_dim + model.act_dim, model.obs_dim)) / np.sqrt(model.obs_dim + model.act_dim)
    next_obs = (obs + 0.1 * np.tanh(np.concatenate([obs, actions], axis=2) @ mixing)).astype(np.float32)
    zeros = np.zeros(1, dtype=np.float32)
    for i in range(n):
        model.replay_buffer.add(obs[i], next_obs[i], actions[i], zeros, zeros, [{}])


def time_training(model: Any, optimizer: th.optim.Optimizer) -> tuple[float, float]:
    """Seconds of one training iteration with the given ensemble optimiser, and its gradient steps."""
    model.dynamics.optimizer = optimizer
    start = time.perf_counter()
    model.train(gradient_steps=1, batch_size=model.batch_size)
    return time.perf_counter() - start, model.last_dynamics_info["updates"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algos", nargs="+", default=["poplin_p", "poplin_a", "pets", "rs"])
    parser.add_argument("--envs", nargs="+", default=["HalfCheetah-v5", "Hopper-v5"])
    parser.add_argument("--transitions", type=int, default=20_000, help="buffer size (the CPU entries' cap binds from ~10.7k)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--output", default="docs/performance.md", help="markdown file ('' to print only)")
    args = parser.parse_args(argv)
    th.set_num_threads(1)
    started, load_start = time.perf_counter(), " / ".join(f"{x:.2f}" for x in os.getloadavg())
    from stable_baselines3.common.logger import configure

    rows = []
    for env_id in args.envs:
        obs, _ = gym.make(env_id).reset(seed=0)
        for algo in args.algos:
            kwargs = entry(algo, env_id, "cpu")
            kwargs.update(learning_starts=0, n_threads=1, seed=0)
            model = ZOO_ALGOS[algo]("MlpPolicy", env_id, **kwargs)
            model.set_logger(configure(None, [""]))
            fill_buffer(model, args.transitions)
            model.predict(obs, deterministic=False)  # warm-up: first-call allocations
            lr = model.dynamics_learning_rate
            fused = model.dynamics.optimizer
            default = th.optim.Adam(model.dynamics.parameters(), lr=lr)
            assert fused.defaults["fused"] and not default.defaults["fused"], "expected a fused and a default Adam"
            plan, train_fused, train_default = [], [], []
            for round_ in range(args.rounds):
                plan.append(time_predict(model, obs, 5))
                order = [(fused, train_fused), (default, train_default)]
                for optimizer, times in order if round_ % 2 == 0 else order[::-1]:
                    seconds, updates = time_training(model, optimizer)
                    times.append(seconds)
            plan_s = statistics.median(plan)
            row = dict(
                env=env_id,
                algo=algo,
                plan_ms=1000 * plan_s,
                updates=updates,
                default_s=statistics.median(train_default),
                fused_s=statistics.median(train_fused),
            )
            for name in ("default", "fused"):
                row[f"{name}_share"] = row[f"{name}_s"] / (row[f"{name}_s"] + STEPS_PER_TRAINING * plan_s)
            rows.append(row)
            print(
                f"{env_id:15s} {algo:9s} plan {row['plan_ms']:6.1f} ms/step; training ({updates:.0f} steps) default "
                f"{row['default_s']:5.1f} s, fused {row['fused_s']:5.1f} s; share {100 * row['default_share']:4.1f}% -> "
                f"{100 * row['fused_share']:4.1f}%",
                flush=True,
            )

    lines = [
        "| env | algorithm | plan ms / step | gradient steps per training | training s: default Adam | training s: fused Adam "
        "| default / fused | share of a long run: default Adam | share: fused Adam |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['env']} | {row['algo']} | {row['plan_ms']:.0f} | {row['updates']:,.0f} | {row['default_s']:.1f} "
            f"| {row['fused_s']:.1f} | {row['default_s'] / row['fused_s']:.2f}x | {100 * row['default_share']:.1f}% "
            f"| **{100 * row['fused_share']:.1f}%** |"
        )
    table = "\n".join(lines)
    print(table)
    if args.output:
        load_end = " / ".join(f"{x:.2f}" for x in os.getloadavg())
        body = (
            "### Training share of a long run, CPU entries (measured)\n\n"
            f"*1 torch thread, torch {th.__version__}; load average {load_start} at start, {load_end} at end; "
            f"{(time.perf_counter() - started) / 60:.1f} min. Command: `{' '.join([COMMAND, *sys.argv[1:]])}`*\n\n"
            f"Each CPU entry with {args.transitions:,} transitions in its buffer (the fitting cap binds), median of "
            f"{args.rounds} rounds; planning and training alternate in one process. *Training*: one `model.train` "
            "(capped ensemble fit, then the policy's distillation where the algorithm has one). *Share of a long run*: "
            f"training / (training + {STEPS_PER_TRAINING:,} x plan), one training per 1,000-step episode (HalfCheetah-v5; "
            "Hopper-v5's episodes end after 20-150 steps while it learns, each followed by a training of at least "
            "`dynamics_min_updates` steps: its share in the study's runs is the `fit_s` of their progress.jsonl).\n\n" + table
        )
        write_section(Path(args.output), "fit-share", body)
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
