"""
What a cap on the ensemble's gradient steps per training costs in model quality, on the same data.

Replays the training schedule of a run on real HalfCheetah-v5 transitions: the data grow by one episode (1,000
transitions) per iteration, and after each the ensemble (5 members of 4x200, the algorithm's defaults: Adam 1e-3, batch
32, at most 5 epochs, patience 5) is fitted again, warm-started from the previous fit, once with no cap (the default)
and once with ``dynamics_max_updates`` (the proposed cap, 1,000; and a much smaller cap as a stress test: at 200k
transitions the cap allows ~3.3% of the uncapped 30,470 steps, a fraction that these small data sizes only reach with
a smaller cap). The fits of an iteration run back to back (the order flips every iteration) so they see the same load.
Reported per iteration: fitting time, gradient steps, and the mean-squared error of the elite-averaged mean prediction
(what planning uses) on a fixed set of held-out transitions that no fit ever trains on.

The transitions come from a fixed random mixture of behaviours (uniform random actions and slowly varying action
sequences), seeded, so that the data are the same for both settings and every run of the benchmark::

    python -m benchmarks.fit_budget                    # 12 iterations, writes its section of docs/performance.md
    python -m benchmarks.fit_budget --iterations 4 --output ''   # smoke run, prints only
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch as th

from sb3_poplin.common.dynamics import ProbabilisticEnsemble

COMMAND = "python -m benchmarks.fit_budget"


def collect(env_id: str, episodes: int, seed: int) -> tuple[th.Tensor, th.Tensor]:
    """``episodes`` episodes of (obs, action) -> state delta, half with uniform random actions, half with actions that
    drift smoothly (closer to what a planner executes)."""
    import gymnasium as gym

    env = gym.make(env_id)
    rng = np.random.default_rng(seed)
    inputs, targets = [], []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed * 1000 + episode)
        action = rng.uniform(-1.0, 1.0, env.action_space.shape)
        done = False
        while not done:
            if episode % 2 == 0:
                action = rng.uniform(-1.0, 1.0, env.action_space.shape)
            else:
                action = np.clip(action + 0.3 * rng.standard_normal(env.action_space.shape), -1.0, 1.0)
            next_obs, _, terminated, truncated, _ = env.step(action.astype(np.float32))
            inputs.append(np.concatenate([obs, action]))
            targets.append(next_obs - obs)
            obs, done = next_obs, terminated or truncated
    env.close()
    return th.as_tensor(np.array(inputs), dtype=th.float32), th.as_tensor(np.array(targets), dtype=th.float32)


def elite_mse(model: ProbabilisticEnsemble, inputs: th.Tensor, targets: th.Tensor) -> float:
    """MSE of the elite-averaged mean prediction (expectation propagation's next-state delta)."""
    with th.no_grad():
        return float(((model.forward_elites_mean(inputs) - targets) ** 2).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--iterations", type=int, default=12, help="training iterations (one episode of data each)")
    parser.add_argument(
        "--caps", type=int, nargs="+", default=[1000, 250], help="caps on gradient steps per training (first: the proposed)"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default="docs/performance.md", help="markdown file ('' to print only)")
    args = parser.parse_args()
    th.set_num_threads(args.threads)
    started, load_start = time.perf_counter(), " / ".join(f"{x:.2f}" for x in os.getloadavg())

    train_in, train_out = collect(args.env, args.iterations, seed=1)
    test_in, test_out = collect(args.env, 2, seed=2)
    settings: dict[str, int | None] = {"no cap (default)": None, f"cap {args.caps[0]}": args.caps[0]}
    settings.update({f"cap {cap} (stress)": cap for cap in args.caps[1:]})
    models, optimizers, generators = {}, {}, {}
    for name in settings:
        th.manual_seed(0)
        models[name] = ProbabilisticEnsemble(train_in.shape[1], train_out.shape[1], n_members=5)
        optimizers[name] = th.optim.Adam(models[name].parameters(), lr=1e-3)
        generators[name] = th.Generator().manual_seed(0)
    per_episode = train_in.shape[0] // args.iterations
    rows = []
    for it in range(1, args.iterations + 1):
        n = it * per_episode
        row: dict[str, tuple[float, float, float]] = {}
        names = list(settings) if it % 2 else list(settings)[::-1]
        for name in names:
            start = time.perf_counter()
            info = models[name].fit(
                train_in[:n],
                train_out[:n],
                optimizers[name],
                max_epochs=5,
                batch_size=32,
                max_updates=settings[name],
                generator=generators[name],
            )
            row[name] = (time.perf_counter() - start, info["updates"], elite_mse(models[name], test_in, test_out))
        rows.append((n, row))
        print(
            f"  {n:>6} transitions: "
            + "  ".join("{}: {:.1f} s, {:.0f} steps, test MSE {:.4f}".format(name, *row[name]) for name in settings),
            flush=True,
        )

    head = "| transitions | " + " | ".join(f"{name}: s / steps / test MSE" for name in settings) + " |"
    lines = [head, "|---|" + "---|" * len(settings)]
    for n, row in rows:
        lines.append(f"| {n:,} | " + " | ".join("{:.1f} / {:.0f} / {:.4f}".format(*row[name]) for name in settings) + " |")
    totals = {name: sum(row[name][0] for _, row in rows) for name in settings}
    lines.append(
        "| **total** | "
        + " | ".join(f"**{totals[name]:.0f} s**, final test MSE {rows[-1][1][name][2]:.4f}" for name in settings)
        + " |"
    )
    table = "\n".join(lines)
    print(table)
    if args.output:
        body = (
            "### Fitting budget on the same data (measured)\n\n"
            f"*{args.threads} torch thread(s), torch {th.__version__}; load average {load_start} at start, "
            + " / ".join(f"{x:.2f}" for x in os.getloadavg())
            + f" at end; {(time.perf_counter() - started) / 60:.1f} min. Command: `{' '.join([COMMAND, *sys.argv[1:]])}`*\n\n"
            + (__doc__ or "").strip().split("\n\n")[1].replace("\n", " ")
            + f" Test set: 2 further episodes ({test_in.shape[0]:,} transitions), never trained on.\n\n"
            + table
        )
        path = Path(args.output)
        start_mark, end_mark = "<!-- benchmark:fit-budget:start -->", "<!-- benchmark:fit-budget:end -->"
        text = path.read_text()
        block = f"{start_mark}\n\n{body}\n\n{end_mark}"
        if start_mark in text and end_mark in text:
            text = text[: text.index(start_mark)] + block + text[text.index(end_mark) + len(end_mark) :]
        else:
            text = text.rstrip() + "\n\n" + block + "\n"
        path.write_text(text.rstrip() + "\n")
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
