"""
POPLIN-P sep's planning step with each way of getting CEM's samples, side by side in one process.

POPLIN-P sep perturbs every policy parameter at every imagined step: population x horizon x |theta| standard normals
per CEM iteration (11.6M at the paper configuration), which torch's sequential CPU generator draws at a few ns each.
Timed here, interleaved round by round on the same random ensemble and policy (HalfCheetah-v5 sizes, one state,
warm-started steps), with the ensemble's and the policy's forward passes timed inside the step:

* ``fresh``: every normal drawn afresh (the default);
* ``mirrored`` (``cem_mirrored=True``): half of them drawn, the other half reflected through the mean;
* ``noise table`` (``cem_noise_table=1 << 24``): each candidate's normals read as a window of a 64 MB table of normals
  drawn once, at an offset drawn per candidate;
* ``noise table + mirrored``: both;
* PETS (fresh draws, 6 numbers per imagined step): the model work alone, for reference.

*outside model*: the share of the step spent outside the ensemble's forward passes (sampling, the perturbed policies,
CEM's statistics, rewards); the speed-up is fresh / this, paired within each round::

    python -m benchmarks.cem_sampling                       # paper and CPU-entry configurations, writes docs/performance.md
    python -m benchmarks.cem_sampling --configs cpu --rounds 2 --output ''    # smoke run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch as th

from benchmarks.fit_budget import write_section
from benchmarks.machine import cpu_model, load_average
from benchmarks.planner_throughput import PAPER, Config, Probe, build_planner

ENV = "HalfCheetah-v5"
#: the CPU entries' planning (sb3_poplin/hyperparams/cpu/): population 100, horizon 15, 3 CEM iterations, the paper's model
CPU_ENTRY = Config("cpu", 100, 10, 15, 3, 5, (200, 200, 200, 200))
CONFIGS = {"paper": PAPER, "cpu": CPU_ENTRY}
TABLE_SIZE = 1 << 24
#: label -> (planner kind, mirrored, noise table size)
MODES: dict[str, tuple[str, bool, int]] = {
    "fresh": ("POPLIN-P sep", False, 0),
    "mirrored": ("POPLIN-P sep", True, 0),
    "noise table": ("POPLIN-P sep", False, TABLE_SIZE),
    "noise table + mirrored": ("POPLIN-P sep", True, TABLE_SIZE),
    "PETS (reference)": ("PETS", False, 0),
}


def measure(cfg: Config, rounds: int, reps: int) -> list[dict[str, Any]]:
    """Interleaved rounds of ``reps`` planning steps of every mode; per mode the medians and paired speed-ups."""
    steppers = {}
    for label, (kind, mirrored, table) in MODES.items():
        planner = build_planner(kind, cfg, ENV, th.device("cpu"))
        planner.cem.mirrored, planner.cem.noise_table_size = mirrored, table
        probe = Probe(planner, th.device("cpu"))
        generator = th.Generator().manual_seed(0)
        obs = th.randn(1, 17, generator=th.Generator().manual_seed(1))
        state: dict[str, Any] = {"mean": None}

        def step(planner: Any = planner, generator: th.Generator = generator, obs: th.Tensor = obs, state: dict = state):
            out = planner.plan(obs, state["mean"], generator)
            state["mean"] = planner.warm_start(out.mean)

        for _ in range(2):  # warm-up (and the table's one draw)
            step()
        steppers[label] = (step, probe)
    times: dict[str, list[tuple[float, float, float]]] = {label: [] for label in MODES}
    for r in range(rounds):
        order = list(MODES) if r % 2 == 0 else list(MODES)[::-1]
        for label in order:
            step, probe = steppers[label]
            for _ in range(reps):
                probe.reset()
                with probe.installed():
                    start = time.perf_counter()
                    step()
                    times[label].append((time.perf_counter() - start, probe.model_s, probe.policy_s))
        print(f"  {cfg.name} round {r + 1}/{rounds}: " + "  ".join(f"{k} {1e3 * times[k][-1][0]:.0f} ms" for k in MODES))
    results = []
    fresh = times["fresh"]
    for label in MODES:
        rows = times[label]
        results.append(
            {
                "mode": label,
                "step_ms": 1e3 * statistics.median(t for t, _, _ in rows),
                "model_ms": 1e3 * statistics.median(m for _, m, _ in rows),
                "outside": statistics.median((t - m) / t for t, m, _ in rows),
                "policy": statistics.median(p / t for t, _, p in rows),
                # fresh / this, step by step in the same rounds (same load)
                "speedup": statistics.median(f[0] / t[0] for f, t in zip(fresh, rows)),
            }
        )
    return results


def table(cfg: Config, results: list[dict[str, Any]]) -> str:
    lines = [
        "| config | sampling | ms / step | model ms | outside model | of which the perturbed policies | fresh / this |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {cfg.name} ({cfg.population} x {cfg.horizon} x {cfg.iterations}) | {r['mode']} | {r['step_ms']:.0f} "
            f"| {r['model_ms']:.0f} | {r['outside']:.1%} | {r['policy']:.1%} | **{r['speedup']:.2f}x** |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--reps", type=int, default=2, help="planning steps per mode and round")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default="docs/performance.md", help="markdown file ('' to print only)")
    args = parser.parse_args(argv)
    th.set_num_threads(args.threads)
    load_start, started = load_average(), time.perf_counter()
    tables = []
    for name in args.configs:
        cfg = CONFIGS[name]
        tables.append(table(cfg, measure(cfg, args.rounds, args.reps)))
        print(tables[-1], flush=True)
    if args.output:
        command = "python -m benchmarks.cem_sampling " + " ".join(sys.argv[1:] if argv is None else argv)
        body = (
            "### POPLIN-P sep's CEM sampling (measured)\n\n"
            f"*{cpu_model()}, {args.threads} torch thread(s), torch {th.__version__}; load average (1/5/15 min) "
            f"{load_start} at start, {load_average()} at end; {(time.perf_counter() - started) / 60:.1f} min, "
            f"{args.rounds} interleaved rounds of {args.reps} step(s) per mode. Command: `{command.strip()}`*\n\n"
            + (__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
            + " HalfCheetah-v5 sizes, [32] policy, sigma 0.1, 5 members of 4x200, expectation propagation; medians.\n\n"
            + "\n\n".join(tables)
        )
        write_section(Path(args.output), "cem-sampling", body)
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
