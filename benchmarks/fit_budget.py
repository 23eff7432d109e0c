"""
What a cap on the ensemble's gradient steps per training costs in model quality, on the same data.

Replays the training schedule of a run on real HalfCheetah-v5 transitions: the data grow by one episode (1,000
transitions) per iteration, and after each the ensemble (5 members of 4x200, the algorithms' defaults: fused Adam 1e-3,
batch 32, at most 5 epochs, patience 5) is fitted again, warm-started from the previous fit, once with no cap and once
with each cap of ``--caps`` on ``dynamics_max_updates`` (by default 2,500, the CPU entries' earlier cap, and 1,500,
theirs now; a cap binds once 5 epochs of the 90% training split exceed it, from ~17.8k and ~10.7k transitions). The fits
of an iteration run back to back (the order rotates every iteration) so they see the same load. Reported per iteration:
fitting time, gradient steps, and the mean-squared error of the elite-averaged mean prediction (what planning uses) on a
fixed set of held-out transitions that no fit ever trains on.

The transitions come from a fixed random mixture of behaviours (uniform random actions and slowly varying action
sequences), seeded, so that the data are the same for both settings and every run of the benchmark::

    python -m benchmarks.fit_budget                    # 12 iterations, writes its section of docs/performance.md
    python -m benchmarks.fit_budget --iterations 4 --output ''   # smoke run, prints only

``--optimizers`` instead times the optimiser kernels side by side: at 10k, 50k and 200k transitions of the same data,
one capped fit (the CPU entries' ``dynamics_max_updates=2500``) with torch's default Adam and one with the fused Adam
that the algorithms use (``make_adam``), back to back in alternating order, each from the same starting weights::

    python -m benchmarks.fit_budget --optimizers          # writes its own section of docs/performance.md
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch as th

from sb3_poplin.common.dynamics import ProbabilisticEnsemble, make_adam

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


def write_section(path: Path, name: str, body: str) -> None:
    """Replace (or append) the section between this benchmark's markers in a markdown file."""
    start_mark, end_mark = f"<!-- benchmark:{name}:start -->", f"<!-- benchmark:{name}:end -->"
    text = path.read_text()
    block = f"{start_mark}\n\n{body}\n\n{end_mark}"
    if start_mark in text and end_mark in text:
        text = text[: text.index(start_mark)] + block + text[text.index(end_mark) + len(end_mark) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text.rstrip() + "\n")


def conditions(threads: int, load_start: str, started: float) -> str:
    """Threads, torch, load and duration of a run, for the tables' captions."""
    load_end = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"*{threads} torch thread(s), torch {th.__version__}; load average {load_start} at start, {load_end} at end; "
        f"{(time.perf_counter() - started) / 60:.1f} min. Command: `{' '.join([COMMAND, *sys.argv[1:]])}`*"
    )


def compare_optimizers(args: argparse.Namespace, started: float, load_start: str) -> None:
    """Default against fused Adam: seconds per capped fit at several data sizes, same data and starting weights."""
    sizes = args.sizes
    episodes = -(-max(sizes) // 1000)
    print(f"collecting {episodes} episodes of {args.env} ...", flush=True)
    all_in, all_out = collect(args.env, episodes, seed=1)
    test_in, test_out = collect(args.env, 2, seed=2)
    th.manual_seed(0)
    start_weights = ProbabilisticEnsemble(all_in.shape[1], all_out.shape[1], n_members=5).state_dict()
    kinds: dict[str, Callable[[Iterable[th.nn.Parameter]], th.optim.Optimizer]] = {
        "default Adam": lambda params: th.optim.Adam(params, lr=1e-3),
        "fused Adam (make_adam)": lambda params: make_adam(params, lr=1e-3),
    }
    for make in kinds.values():  # warm-up: first-call allocations and kernel selection stay out of the timings
        model = ProbabilisticEnsemble(all_in.shape[1], all_out.shape[1], n_members=5)
        model.fit(all_in[:2000], all_out[:2000], make(model.parameters()), max_epochs=1, max_updates=50)
    rows = []
    for n in sizes:
        times: dict[str, list[float]] = {kind: [] for kind in kinds}
        mse: dict[str, float] = {}
        updates: dict[str, float] = {}
        for round_ in range(args.rounds):
            for kind in list(kinds) if round_ % 2 == 0 else list(kinds)[::-1]:
                model = ProbabilisticEnsemble(all_in.shape[1], all_out.shape[1], n_members=5)
                model.load_state_dict(start_weights)
                start = time.perf_counter()
                info = model.fit(
                    all_in[:n],
                    all_out[:n],
                    kinds[kind](model.parameters()),
                    max_epochs=5,
                    batch_size=32,
                    max_updates=args.cap,
                    generator=th.Generator().manual_seed(0),
                )
                times[kind].append(time.perf_counter() - start)
                mse[kind], updates[kind] = elite_mse(model, test_in, test_out), info["updates"]
        row = {kind: (float(np.median(times[kind])), updates[kind], mse[kind]) for kind in kinds}
        rows.append((n, row))
        default, fused = row["default Adam"], row["fused Adam (make_adam)"]
        print(
            f"  {n:>7} transitions, {default[1]:.0f} updates: default {default[0]:.1f} s, fused {fused[0]:.1f} s "
            f"({default[0] / fused[0]:.2f}x); test MSE {default[2]:.4f} / {fused[2]:.4f}",
            flush=True,
        )
    lines = [
        "| transitions | gradient steps | default Adam: s per fit | fused Adam: s per fit | default / fused "
        "| ms per step: default / fused | test MSE: default / fused |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, row in rows:
        default, fused = row["default Adam"], row["fused Adam (make_adam)"]
        lines.append(
            f"| {n:,} | {default[1]:,.0f} | {default[0]:.1f} | {fused[0]:.1f} | **{default[0] / fused[0]:.2f}x** "
            f"| {1e3 * default[0] / default[1]:.2f} / {1e3 * fused[0] / fused[1]:.2f} | {default[2]:.4f} / {fused[2]:.4f} |"
        )
    intro = (
        f"Real {args.env} transitions (the mixture of behaviours above), the paper's ensemble (5 members of 4x200), "
        f"batch 32, at most 5 epochs, cap {args.cap} gradient steps per fit; each fit starts from the same weights "
        f"and the same generator, the two optimisers back to back in alternating order, median of {args.rounds} "
        "rounds. Test MSE: the elite-averaged mean prediction on 2 episodes never trained on."
    )
    publish(args, "fit-optimizers", "Fitting with the fused Adam", intro, "\n".join(lines), load_start, started)


def publish(
    args: argparse.Namespace, section: str, title: str, intro: str, table: str, load_start: str, started: float
) -> None:
    """Print ``table`` and, unless ``--output ''``, write it with its title, conditions and intro as ``section``.

    :param args: the command line (``--output`` and ``--threads`` are read)
    :param section: the section's marker name in the markdown file
    :param title: the section's heading, without "(measured)"
    :param intro: what was measured, how
    :param table: the markdown table
    :param load_start: the load average at the start, as :func:`main` formats it
    :param started: ``time.perf_counter()`` at the start
    """
    print(table)
    if args.output:
        body = f"### {title} (measured)\n\n{conditions(args.threads, load_start, started)}\n\n{intro}\n\n{table}"
        write_section(Path(args.output), section, body)
        print(f"wrote {args.output}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--iterations", type=int, default=12, help="training iterations (one episode of data each)")
    parser.add_argument("--caps", type=int, nargs="+", default=[2500, 1500], help="caps on gradient steps per training")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--optimizers", action="store_true", help="time default against fused Adam (see above)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 200_000], help="with --optimizers")
    parser.add_argument("--cap", type=int, default=2500, help="gradient steps per fit, with --optimizers")
    parser.add_argument("--rounds", type=int, default=2, help="fits per optimiser and size, with --optimizers")
    parser.add_argument("--output", default="docs/performance.md", help="markdown file ('' to print only)")
    args = parser.parse_args()
    th.set_num_threads(args.threads)
    started, load_start = time.perf_counter(), " / ".join(f"{x:.2f}" for x in os.getloadavg())
    if args.optimizers:
        compare_optimizers(args, started, load_start)
        return

    train_in, train_out = collect(args.env, args.iterations, seed=1)
    test_in, test_out = collect(args.env, 2, seed=2)
    settings: dict[str, int | None] = {"no cap": None, **{f"cap {cap}": cap for cap in args.caps}}
    models, optimizers, generators = {}, {}, {}
    for name in settings:
        th.manual_seed(0)
        models[name] = ProbabilisticEnsemble(train_in.shape[1], train_out.shape[1], n_members=5)
        optimizers[name] = make_adam(models[name].parameters(), lr=1e-3)  # as the algorithms build it
        generators[name] = th.Generator().manual_seed(0)
    per_episode = train_in.shape[0] // args.iterations
    rows = []
    for it in range(1, args.iterations + 1):
        n = it * per_episode
        row: dict[str, tuple[float, float, float]] = {}
        shift = it % len(settings)
        names = list(settings)[shift:] + list(settings)[:shift]
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
    description = (__doc__ or "").strip().split("\n\n")[1].replace("\n", " ")
    intro = f"{description} Test set: 2 further episodes ({test_in.shape[0]:,} transitions), never trained on."
    publish(args, "fit-budget", "Fitting budget on the same data", intro, "\n".join(lines), load_start, started)


if __name__ == "__main__":
    main()
