"""
Return against planning budget on HalfCheetah-v5: does POPLIN-P reach the paper-size PETS with a fifth of its model
evaluations per step?

A model evaluation is one imagined transition of one candidate: population x horizon x CEM iterations x particles per
real step (expectation propagation: one particle). Every budget below trains the paper's model (5 members of 4x200) with
the paper's settings of its algorithm (the packaged ``sb3_poplin/hyperparams/<algo>.yml`` entry) and changes only the
planning budget. Each (budget, seed) is one resumable rl-zoo3 run of :mod:`benchmarks.locomotion` in
``<folder>/<budget>/<algo>/<env>_<seed + 1>/``. Returns: the mean of the last three training episodes before the step
count (the paper's measure; training episodes are MPC-controlled) and the evaluation at that step count.

    python -m benchmarks.locomotion_budgets                          # every budget, 3 seeds, writes docs/locomotion_budgets.md
    python -m benchmarks.locomotion_budgets --budgets poplin_p-15k pets-15k --jobs 1
    python -m benchmarks.locomotion_budgets --print-commands         # one command line per run, for a cluster
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from benchmarks.locomotion import Run, eval_at, fmt, merge_results, read_run, run_command, schedule

COMMAND = "python -m benchmarks.locomotion_budgets"
ENV = "HalfCheetah-v5"

#: planning settings of the CPU entries (sb3_poplin/hyperparams/cpu/)
CPU_ENTRY: dict[str, Any] = dict(population_size=100, n_elites=10, horizon=15, cem_iterations=3)
#: planning against the members' disagreement: one particle per member (TSinf), each candidate scored by the mean of the
#: members' predicted returns less their standard deviation; the member forward passes of the expectation over 5 members
PESSIMISM: dict[str, Any] = dict(propagation="fixed_model", num_particles=5, pessimism=1.0)

#: budget name -> (algorithm, planning settings over the paper entry)
BUDGETS: dict[str, tuple[str, dict[str, Any]]] = {
    "pets-paper": ("pets", dict(population_size=500, n_elites=50, horizon=30, cem_iterations=5)),
    "pets-15k": ("pets", dict(population_size=100, n_elites=10, horizon=30, cem_iterations=5)),
    "poplin_p-paper": ("poplin_p", dict(population_size=500, n_elites=50, horizon=30, cem_iterations=5)),
    "poplin_p-15k": ("poplin_p", dict(population_size=100, n_elites=10, horizon=30, cem_iterations=5)),
    "poplin_p-7.5k": ("poplin_p", dict(population_size=50, n_elites=5, horizon=30, cem_iterations=5)),
    "poplin_p-15k-es": (
        "poplin_p",
        dict(population_size=100, n_elites=10, horizon=30, cem_iterations=5, cem_early_stop_tol=0.05),
    ),
    # The paper's search at horizon 15 instead of 30: replanned with the same trained model (pets-paper seed 0 at 8k),
    # horizon 30 scored -539 and -602 where horizon 15 scored -128 to -309 (docs/locomotion_diagnosis.md, section 8).
    "pets-paper-h15": ("pets", dict(population_size=500, n_elites=50, horizon=15, cem_iterations=5)),
    # POPLIN-P at a fifth of the paper PETS' evaluations with that shorter horizon.
    "poplin_p-15k-h15": ("poplin_p", dict(population_size=200, n_elites=20, horizon=15, cem_iterations=5)),
    # The CPU entries: their runs are the locomotion study's (see STUDY_RUNS).
    "pets-cpu": ("pets", CPU_ENTRY),
    "poplin_p-cpu": ("poplin_p", CPU_ENTRY),
    "poplin_p-cpu-pessimism": ("poplin_p", {**CPU_ENTRY, **PESSIMISM}),
    # The same with the policy's parameter noise at 0.1 instead of BC's 0.03: the planner reaches further from the
    # distilled policy (docs/locomotion_diagnosis.md, section 4).
    "poplin_p-cpu-pessimism-sigma0.1": ("poplin_p", {**CPU_ENTRY, **PESSIMISM, "init_sigma": 0.1}),
    # The CPU entry planning with the exact reward: the env observes the root's x, whose change over the step is the
    # forward velocity the env rewards (the default observation only has the end-of-step velocity, docs/rewards.md).
    # The model and the policy do not read x (dynamics_ignore_positions, the default).
    "poplin_p-cpu-exact-reward": ("poplin_p", CPU_ENTRY),
    # The CPU entry distilling on the last two episodes' plans only: the policy, the centre of POPLIN-P's search,
    # follows the current plans instead of the average of every plan so far (docs/locomotion_diagnosis.md, section 4).
    "poplin_p-cpu-window2k": ("poplin_p", {**CPU_ENTRY, "distillation_window": 2000}),
    # The CPU entry reading CEM's normals from a noise table instead of drawing them (~1.15x faster planning at this
    # size, benchmarks/cem_sampling.py): does learning stay the same on locomotion, as it does on Pendulum-v1?
    "poplin_p-cpu-noise-table": ("poplin_p", {**CPU_ENTRY, "cem_noise_table": 1 << 24}),
    # The CPU entry searching further from the distilled policy without pessimism (sigma 0.1 instead of BC's 0.03): the
    # reach limit of docs/locomotion_diagnosis.md, section 4.
    "poplin_p-cpu-sigma0.1": ("poplin_p", {**CPU_ENTRY, "init_sigma": 0.1}),
    # The CPU entry distilling on the plans of its three best episodes only: the policy, the centre of POPLIN-P's
    # search, keeps the gait of its best episodes instead of regressing onto the plans of collapses as much as onto
    # those (docs/locomotion_diagnosis.md, section 4).
    "poplin_p-cpu-best3": ("poplin_p", {**CPU_ENTRY, "distillation_best_episodes": 3}),
    # Hopper-v5's CPU entry training its model every 1,000 steps instead of after every episode: while it learns its
    # episodes last 20-150 steps, and a fit of at least 1,000 gradient steps after each took ~40% of the study's wall
    # time (docs/performance.md, *Training cost*).
    "poplin_p-cpu-hopper-train1000": ("poplin_p", {**CPU_ENTRY, "train_freq": [1000, "step"]}),
    # The same searching further from the distilled policy (sigma 0.1 instead of BC's 0.03): on Hopper-v5 PETS and
    # POPLIN-A, whose search reaches any action, lunge for 110-150 steps where POPLIN-P keeps an 80-step dive
    # (docs/locomotion_diagnosis.md, section 7).
    "poplin_p-cpu-hopper-train1000-sigma0.1": ("poplin_p", {**CPU_ENTRY, "train_freq": [1000, "step"], "init_sigma": 0.1}),
}
#: env of the budgets that do not run HalfCheetah-v5 (shown beside the study's algorithms in docs/locomotion.md, not
#: in this benchmark's HalfCheetah-v5 table)
BUDGET_ENVS: dict[str, str] = {
    "poplin_p-cpu-hopper-train1000": "Hopper-v5",
    "poplin_p-cpu-hopper-train1000-sigma0.1": "Hopper-v5",
}
#: env keyword arguments of the budgets that change the env (everything else runs the default HalfCheetah-v5)
ENV_KWARGS: dict[str, dict[str, Any]] = {
    "poplin_p-cpu-exact-reward": {"exclude_current_positions_from_observation": False},
}
#: budgets whose settings are the CPU entry's: their runs are those of ``python -m benchmarks.locomotion`` (same
#: hyperparameters), read from the study's folder instead of being run again
STUDY_RUNS = {"pets-cpu": Path("logs/locomotion"), "poplin_p-cpu": Path("logs/locomotion")}
#: the budget every other one is measured against
REFERENCE = "pets-paper"


def particles(settings: dict[str, Any]) -> int:
    """Particles per candidate (one with expectation propagation, the default)."""
    return settings.get("num_particles", 1) if settings.get("propagation", "expectation") != "expectation" else 1


def nominal_evaluations(settings: dict[str, Any]) -> int:
    """Model evaluations per real step with every CEM iteration run: population x horizon x iterations x particles."""
    return settings["population_size"] * settings["horizon"] * settings["cem_iterations"] * particles(settings)


def budget_folder(budget: str, folder: Path) -> Path:
    """Where the runs of ``budget`` live: the study's folder for the CPU entries, else ``<folder>/<budget>``."""
    return STUDY_RUNS.get(budget, folder / budget)


def write_conf(budget: str, n_timesteps: int, folder: Path) -> Path:
    """The budget's zoo hyperparameter file: the packaged paper entry of its algorithm with the budget's settings."""
    from sb3_poplin.zoo.registry import hyperparams_file

    algo, settings = BUDGETS[budget]
    env = BUDGET_ENVS.get(budget, ENV)
    paper = yaml.safe_load(hyperparams_file(algo).read_text())[env]
    entry = dict(paper, **settings, n_timesteps=n_timesteps, buffer_size=n_timesteps)
    path = folder / "conf" / f"{budget}.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f"# Written by {COMMAND}: the paper entry of {algo} with the {budget} planning budget.\n"
    path.write_text(header + yaml.safe_dump({env: entry}))
    return path


def last_training_episodes(record: dict[str, Any], step: int, n: int = 3) -> float | None:
    """Mean return of the last ``n`` training episodes that ended by ``step`` (None if the run has not got there)."""
    episodes = [ret for timesteps, ret in record["episodes"] if timesteps <= step]
    if record["timesteps"] < step or len(episodes) < n:
        return None
    return float(np.mean(episodes[-n:]))


def write_report(records: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> None:
    n_seeds = len(args.seeds)
    step = args.steps
    reference = nominal_evaluations(BUDGETS[REFERENCE][1])
    halfway = step // 2
    lines = [
        f"# Return against planning budget ({ENV}, {step // 1000}k steps)",
        "",
        f"Written by `{COMMAND}`. Every row trains the paper's model (5 members of 4x200) with the paper's settings of its "
        "algorithm and changes only the planning budget. *Evaluations per step*: population x horizon x CEM iterations "
        "x particles (one particle with expectation propagation, whose one evaluation runs every member; with TSinf a "
        "particle runs one member, so the `-pessimism` row does the member forward passes of 4,500 expectation "
        "evaluations); with early-stopped CEM the mean number of iterations actually run. The `-cpu` rows are the CPU "
        "entries, and their runs are the locomotion study's (`python -m benchmarks.locomotion`). "
        f"*Training return*: mean of the last 3 training episodes by {step // 1000}k steps (MPC-controlled, the paper's "
        f"measure); *evaluation*: `EvalCallback` ({args.eval_episodes} episodes, MPC) at {halfway / 1000:g}k and "
        f"{step // 1000}k: "
        "the halfway column compares the paper-size budgets, whose 10k runs take 5-10 hours each on one core, sooner. "
        "Mean ± std over seeds. "
        "The planner's reward is the env's own, from the default observation (the velocity approximation, see "
        "docs/rewards.md).",
        "",
        "| budget | algorithm | evaluations / step | share of paper PETS | training return "
        f"| evaluation at {halfway / 1000:g}k | evaluation at {step // 1000}k | plan ms / step |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for budget in (b for b in args.budgets if b not in BUDGET_ENVS):
        algo, settings = BUDGETS[budget]
        runs = records.get(budget, [])
        iterations = [r["cem_iterations"] for r in runs if r.get("cem_iterations") is not None]
        mean_iterations = np.mean(iterations) if iterations else settings["cem_iterations"]
        evaluations = settings["population_size"] * settings["horizon"] * mean_iterations * particles(settings)
        train = [v for r in runs if (v := last_training_episodes(r, step)) is not None]
        evals = [v for r in runs if (v := eval_at(r, step)) is not None]
        halfway_evals = [v for r in runs if (v := eval_at(r, halfway)) is not None]
        plan = [r["plan_ms"] for r in runs if r.get("plan_ms") is not None]
        plan_cell = f"{np.median(plan):.0f}" if plan else "-"
        lines.append(
            f"| {budget} | {algo} | {evaluations:,.0f} | {evaluations / reference:.2f} | {fmt(train, n_seeds)} | "
            f"{fmt(halfway_evals, n_seeds)} | {fmt(evals, n_seeds)} | {plan_cell} |"
        )
    command = ["--budgets", *args.budgets, "--seeds", *map(str, args.seeds), "--steps", str(args.steps)]
    lines += [
        "",
        "Plan ms per step is the median over the runs' planned steps, on whatever machine ran them (see the notes of "
        "docs/locomotion.md); compare budgets by their evaluations, not by these times.",
        "",
        "```bash",
        " ".join([COMMAND, *(shlex.quote(c) for c in command)]),  # COMMAND is several words: not quoted
        "```",
        "",
    ]
    args.output.write_text("\n".join(lines))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", nargs="+", default=list(BUDGETS), choices=list(BUDGETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--eval-freq", type=int, default=10_000)
    parser.add_argument("--eval-episodes", type=int, default=2)
    parser.add_argument("--checkpoint-freq", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--folder", type=Path, default=Path("logs/budgets"))
    parser.add_argument("--results", type=Path, default=Path("docs/locomotion_budgets_runs.jsonl"))
    parser.add_argument("--output", type=Path, default=Path("docs/locomotion_budgets.md"))
    parser.add_argument("--print-commands", action="store_true")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    args.mb_eval_freq = args.eval_freq  # every run here is model-based: run_command reads this one

    runs = {
        budget: [Run(BUDGETS[budget][0], BUDGET_ENVS.get(budget, ENV), seed, args.steps) for seed in args.seeds]
        for budget in args.budgets
    }
    if not args.report_only:
        commands = []
        for seed_index in range(len(args.seeds)):  # seed-major: every budget gets its first seed first
            for budget in args.budgets:
                run = runs[budget][seed_index]
                folder = budget_folder(budget, args.folder)
                if (run.folder(folder) / "finished.json").exists():
                    continue
                if budget in STUDY_RUNS:  # the study runs these, with its own evaluation schedule
                    print(f"{budget} seed {run.seed}: an unfinished run of the study (python -m benchmarks.locomotion)")
                    continue
                conf = write_conf(budget, args.steps, args.folder)
                command = run_command(run, folder, conf, args, env_kwargs=ENV_KWARGS.get(budget))
                commands.append((run, command, run.folder(folder)))
        if args.print_commands:
            for _, command, _ in commands:
                print(" ".join(shlex.quote(c) for c in ["python", *command[1:]]))
            return
        schedule(commands, args.jobs)
    fresh = []
    for budget, budget_runs in runs.items():
        for run in budget_runs:
            record = read_run(run, budget_folder(budget, args.folder))
            if record is not None:
                fresh.append(dict(record, budget=budget))
    merged = merge_results(args.results, fresh, key=("budget", "algo", "env", "seed"))
    by_budget: dict[str, list[dict[str, Any]]] = {}
    for record in merged:
        if record.get("budget") in args.budgets and record["seed"] in args.seeds:
            by_budget.setdefault(record["budget"], []).append(record)
    write_report(by_budget, args)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
