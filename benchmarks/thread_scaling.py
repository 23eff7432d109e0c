"""
Per-call time of the ensemble against the number of torch threads, for the small (CPU-sized) and the paper
configuration: the measurement behind the automatic thread count (``sb3_poplin.common.threads``).

Measured, each thread count interleaved with the others in every repetition so that all see the same machine load:

* planning calls: one ``forward_elites_mean`` of the ensemble on ``rows`` candidates (a CEM population), for the
  population of each configuration and a sweep of sizes around them;
* training calls: one minibatch step of the ensemble (loss, backward, Adam) per batch size;
* a whole planned step of POPLIN-P sep (150 model calls at the paper config, 75 at the small one) and what the
  automatic count chooses for it;
* with ``--readme``: the README's Use snippet (POPLIN-P, Pendulum-v1, 3,000 steps) trained with torch's default thread
  count (what the package did before the automatic count) and with the automatic count, each in its own process.

Run from the repository root::

    python -m benchmarks.thread_scaling                    # model calls and planned steps (a few minutes), docs/threads.md
    python -m benchmarks.thread_scaling --readme           # also the README snippet both ways (~15 min on a busy 2-core box)
    python -m benchmarks.thread_scaling --threads 1 2 4 8  # thread counts to compare (default: 1 .. torch's default)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch as th

from benchmarks.machine import cpu_model, load_average
from sb3_poplin.common.dynamics import ProbabilisticEnsemble
from sb3_poplin.common.threads import FLOPS_PER_EXTRA_THREAD, auto_threads, free_cores, mlp_ensemble_flops, torch_threads

COMMAND = "python -m benchmarks.thread_scaling"
REPORT = Path("docs/threads.md")
MARKER_START, MARKER_END = "<!-- benchmark:thread_scaling:start -->", "<!-- benchmark:thread_scaling:end -->"
README_MARKER_START, README_MARKER_END = "<!-- benchmark:readme_snippet:start -->", "<!-- benchmark:readme_snippet:end -->"


@dataclass(frozen=True)
class ModelShape:
    """An ensemble as the planner and the trainer call it.

    :param name: label
    :param in_dim: observation + action size
    :param out_dim: observation size
    :param members: ensemble members
    :param hidden: hidden widths
    :param population: CEM candidates of the configuration (rows of a planning call)
    :param batch_size: minibatch size per member of the configuration's training
    """

    name: str
    in_dim: int
    out_dim: int
    members: int
    hidden: tuple[int, ...]
    population: int
    batch_size: int


#: the README's / demo's Pendulum configuration and the paper's HalfCheetah one
SMALL = ModelShape("small (Pendulum, 3 x [64, 64])", 4, 3, 3, (64, 64), 100, 64)
PAPER = ModelShape("paper (HalfCheetah, 5 x 4x200)", 23, 17, 5, (200, 200, 200, 200), 500, 32)


def build_model(shape: ModelShape) -> ProbabilisticEnsemble:
    th.manual_seed(0)
    model = ProbabilisticEnsemble(shape.in_dim, shape.out_dim, n_members=shape.members, hidden_sizes=shape.hidden)
    model.fit_input_normalizer(th.randn(2048, shape.in_dim))
    return model


def interleaved(calls: dict[int, Callable[[], None]], reps: int, per_block: int) -> dict[int, float]:
    """Median seconds per call of each thread count's callable, timed in blocks of ``per_block`` calls, the thread
    counts taking turns in every repetition."""
    blocks: dict[int, list[float]] = {n: [] for n in calls}
    for _ in range(reps):
        for n, fn in calls.items():
            with torch_threads(n):
                fn()  # warm: the first call after a change of the thread count
                start = time.perf_counter()
                for _ in range(per_block):
                    fn()
                blocks[n].append((time.perf_counter() - start) / per_block)
    return {n: statistics.median(times) for n, times in blocks.items()}


def planning_call(model: ProbabilisticEnsemble, rows: int) -> Callable[[], None]:
    inputs = th.randn(rows, model.in_dim)

    def call() -> None:
        with th.inference_mode():
            model.forward_elites_mean(inputs)

    return call


def training_call(model: ProbabilisticEnsemble, batch_size: int) -> Callable[[], None]:
    inputs = th.randn(model.n_members, batch_size, model.in_dim)
    targets = th.randn(model.n_members, batch_size, model.out_dim)
    optimizer = th.optim.Adam(model.parameters(), lr=1e-4)

    def call() -> None:
        loss = model.nll_loss(inputs, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return call


def plan_step(shape: ModelShape) -> Callable[[], None]:
    """One planned step of POPLIN-P sep with the configuration's CEM (horizon 15 / 30, 5 iterations)."""
    from benchmarks.planner_throughput import PAPER as PAPER_CONFIG
    from benchmarks.planner_throughput import SMALL as SMALL_CONFIG
    from benchmarks.planner_throughput import build_planner

    config, env_id = (PAPER_CONFIG, "HalfCheetah-v5") if shape is PAPER else (SMALL_CONFIG, "Pendulum-v1")
    planner = build_planner("POPLIN-P sep", config, env_id, th.device("cpu"))
    obs = th.randn(1, shape.out_dim)
    generator = th.Generator().manual_seed(0)

    def call() -> None:
        planner.plan(obs, None, generator)

    return call


def row(label: str, flops: float, times: dict[int, float]) -> tuple[str, int]:
    """A table row: per-call ms at each thread count, the ratio to one thread, the fastest count and the automatic one."""
    best = min(times, key=times.__getitem__)
    cells = " | ".join(f"{1000 * t:.3g} ({times[1] / t:.2f}x)" if n != 1 else f"{1000 * t:.3g}" for n, t in times.items())
    # what a model chooses here and now: capped by the most threads compared and by the cores left idle
    idle = free_cores()
    chosen = auto_threads(flops, min(max(times), idle))
    speedup = f"{times[1] / times[chosen]:.2f}x" if chosen in times else "not measured"
    return f"| {label} | {flops / 1e6:.3g} | {cells} | {best} | {chosen} ({speedup}), {idle} idle |", best


def model_call_tables(thread_counts: list[int], reps: int) -> str:
    header = (
        "| call | MFLOP / call | "
        + " | ".join(f"ms, {n} thread{'s' if n > 1 else ''}" + (" (speed-up)" if n > 1 else "") for n in thread_counts)
        + " | fastest | automatic (speed-up), cores idle |"
    )
    separator = "|" + "---|" * (header.count("|") - 1)
    lines = []
    for shape in (SMALL, PAPER):
        model = build_model(shape)
        lines += ["", f"**{shape.name}**", "", header, separator]
        sizes = sorted({shape.population, *(r for r in (100, 300, 1000, 3000) if r != shape.population)})
        for rows in sizes:
            flops = mlp_ensemble_flops(rows, shape.in_dim, shape.hidden, shape.out_dim, shape.members)
            per_block = max(3, min(200, int(2e8 // flops)))
            times = interleaved({n: planning_call(model, rows) for n in thread_counts}, reps, per_block)
            mark = " (the config's population)" if rows == shape.population else ""
            text, _ = row(f"plan, {rows} rows{mark}", flops, times)
            lines.append(text)
            print(text, flush=True)
        for batch in sorted({shape.batch_size, 256}):
            # forward, backward (two products per layer) and the log-variance half of the output layer
            flops = 3 * mlp_ensemble_flops(batch, shape.in_dim, shape.hidden, 2 * shape.out_dim, shape.members)
            per_block = max(3, min(100, int(1e8 // flops)))
            times = interleaved({n: training_call(model, batch) for n in thread_counts}, reps, per_block)
            mark = " (the config's)" if batch == shape.batch_size else ""
            text, _ = row(f"train, batch {batch}{mark}", flops, times)
            lines.append(text)
            print(text, flush=True)
    return "\n".join(lines)


def plan_step_table(thread_counts: list[int], reps: int) -> str:
    header = (
        "| planned step (POPLIN-P sep) | "
        + " | ".join(f"ms, {n} thread{'s' if n > 1 else ''}" for n in thread_counts)
        + " | fastest | automatic (speed-up vs 1), cores idle |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for shape in (SMALL, PAPER):
        flops = mlp_ensemble_flops(shape.population, shape.in_dim, shape.hidden, shape.out_dim, shape.members)
        times = interleaved({n: plan_step(shape) for n in thread_counts}, reps, 1 if shape is PAPER else 5)
        best = min(times, key=times.__getitem__)
        idle = free_cores()
        chosen = auto_threads(flops, min(max(thread_counts), idle))
        cells = " | ".join(f"{1000 * t:.0f}" for t in times.values())
        speedup = f"{times[1] / times[chosen]:.2f}x" if chosen in times else "not measured"
        text = f"| {shape.name} | {cells} | {best} | {chosen} ({speedup}), {idle} idle |"
        lines.append(text)
        print(text, flush=True)
    return "\n".join(lines)


def toggle_cost(n: int, repeats: int = 2000) -> float:
    """Microseconds to enter and leave a one-thread block from ``n`` threads (what a lone ``predict`` pays)."""
    with torch_threads(n):
        start = time.perf_counter()
        for _ in range(repeats):
            with torch_threads(1):
                pass
        return 1e6 * (time.perf_counter() - start) / repeats


README_SNIPPET = """
import json, sys, time
import torch as th
from sb3_poplin import POPLIN_P
n_threads, steps = json.loads(sys.argv[1]), int(sys.argv[2])
start = time.perf_counter()
model = POPLIN_P("MlpPolicy", "Pendulum-v1", seed=0, verbose=0, population_size=100, n_elites=10, horizon=15,
                 ensemble_size=3, dynamics_net_arch=[64, 64], dynamics_epochs=20, dynamics_batch_size=64,
                 learning_starts=200, n_threads=n_threads).learn(steps)
returns = [float(info["r"]) for info in model.ep_info_buffer]
print(json.dumps({"seconds": time.perf_counter() - start, "torch_threads": th.get_num_threads(),
                  "last_returns": returns[-3:]}))
"""


def readme_snippet(n_threads: int | None, steps: int) -> dict[str, float]:
    """The README's Use snippet (``learn(steps)``, 3,000 in the README) in a fresh process with ``n_threads`` (None:
    automatic)."""
    command = [sys.executable, "-c", README_SNIPPET, json.dumps(n_threads), str(steps)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def command_line(argv: list[str]) -> str:
    """The command as run, without ``--output`` (the report says where it is; a local path means nothing there)."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--output":
            skip = True
        elif not arg.startswith("--output="):
            kept.append(arg)
    return " ".join([COMMAND, *kept])


def replace_between(text: str, start: str, end: str, body: str) -> str:
    block = f"{start}\n{body.strip()}\n{end}"
    if start in text and end in text:
        return text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    return text.rstrip() + "\n\n" + block + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_threads = th.get_num_threads()
    parser.add_argument("--threads", type=int, nargs="+", default=None, help="thread counts (default: 1 .. torch's)")
    parser.add_argument("--reps", type=int, default=5, help="interleaved repetitions per measurement")
    parser.add_argument("--readme", action="store_true", help="also train the README snippet both ways (slow)")
    parser.add_argument("--readme-only", action="store_true", help="only the README snippet")
    parser.add_argument("--readme-steps", type=int, default=3000, help="training steps of the README snippet")
    parser.add_argument("--output", default=str(REPORT), help="markdown report ('' to print only)")
    args = parser.parse_args()
    thread_counts = args.threads or sorted({1, *(n for n in (2, 4, 8, 16) if n < default_threads), default_threads})
    if thread_counts[0] != 1:
        parser.error("the thread counts must include 1 (the speed-ups are relative to it)")

    context = (
        f"*{cpu_model()}, {os.cpu_count()} cores, torch {th.__version__} (default threads {default_threads}); "
        f"load average (1/5/15 min) {load_average()} at start, {free_cores()} core(s) left idle by other processes"
    )
    print(context, flush=True)
    output = Path(args.output) if args.output else None
    text = output.read_text() if output is not None and output.exists() else "# Threads\n"
    if not args.readme_only:
        started = time.perf_counter()
        calls = model_call_tables(thread_counts, args.reps)
        steps = plan_step_table(thread_counts, max(2, args.reps // 2))
        toggles = ", ".join(f"from {n}: {toggle_cost(n):.1f} us" for n in thread_counts if n > 1)
        body = "\n".join(
            [
                f"{context}, {load_average()} at end; {(time.perf_counter() - started) / 60:.1f} min. "
                f"Command: `{command_line(sys.argv[1:])}`*",
                "",
                "Median time of one call (ms) at each thread count, its speed-up over one thread, the fastest count and "
                f"the automatic one (one thread plus one per {FLOPS_PER_EXTRA_THREAD / 1e6:.0f} MFLOP of the call, at "
                f"most the caller's count, here {max(thread_counts)}, and the cores other processes left idle, "
                "measured when the row was timed).",
                calls,
                "",
                steps,
                "",
                f"Entering and leaving a one-thread block (what one `predict` outside `learn` pays): {toggles or 'n/a'}.",
            ]
        )
        text = replace_between(text, MARKER_START, MARKER_END, body)
    if args.readme or args.readme_only:
        started = time.perf_counter()
        results = {name: readme_snippet(n, args.readme_steps) for name, n in (("default", default_threads), ("auto", None))}
        for name, result in results.items():
            print(name, result, flush=True)
        before, after = results["default"]["seconds"], results["auto"]["seconds"]
        body = "\n".join(
            [
                f"{context}, {load_average()} at end; {(time.perf_counter() - started) / 60:.1f} min. "
                f"Command: `{command_line(sys.argv[1:])}`*",
                "",
                f"| README Use snippet, `learn({args.readme_steps:_})` | torch threads while training | seconds "
                "| last 3 episode returns |",
                "|---|---|---|---|",
                f"| before: torch's default (`n_threads={default_threads}`) | {default_threads} | {before:.0f} | "
                f"{[round(r) for r in results['default']['last_returns']]} |",
                f"| after: automatic (`n_threads=None`, the default) | chosen per call | {after:.0f} | "
                f"{[round(r) for r in results['auto']['last_returns']]} |",
                "",
                f"Before / after: **{before / after:.1f}x**. The caller's count after `learn`: "
                f"{results['auto']['torch_threads']} (restored).",
            ]
        )
        text = replace_between(text, README_MARKER_START, README_MARKER_END, body)
    if output is not None:
        output.write_text(text.rstrip() + "\n")
        print(f"wrote {output}")


if __name__ == "__main__":
    main()
