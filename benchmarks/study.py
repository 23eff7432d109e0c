"""
Learning studies: named sets of entries (an algorithm and its settings) run over several seeds, resumable, with one
results page for all of them (``docs/results.md``).

A study's runs are of one of two kinds (:mod:`benchmarks.study_runs`): a resumable rl-zoo3 train run with checkpoints
and a progress log (``python -m benchmarks.study run -- <rl-zoo3 flags>``), or a run that trains once and evaluates MPC
and policy control at checkpoints (``python -m benchmarks.study checkpoint-run ...``). Every run lives in
``<folder>/<study>/<entry>/<algo>/<env>_<seed + 1>/`` (a slash of the env id written as a dash); the configuration file
of an entry is written to ``<folder>/<study>/conf/<entry>.yml`` at every start. The records of every run (evaluation
returns, training episodes, times) are merged into ``docs/results/<study>.jsonl``, the only files of a study that are
committed: the page and its figures regenerate from them.

    python -m benchmarks.study pets-cheetah                   # every entry, the study's seeds, 2 runs at a time
    python -m benchmarks.study pets-cheetah --entries pets sac --seeds 0
    python -m benchmarks.study pets-cheetah --print-commands  # one command line per run, for a cluster
    python -m benchmarks.study --report-only pets-cheetah     # this study's records from its run folders, then the page
    python -m benchmarks.study --report-only all              # every study's records, the page and every figure

Runs are scheduled seed-major (every entry's first seed first), so a study stopped early has its entries side by side.
A command line of ``--print-commands`` is self-contained: run the lines on machines that share the study folder (or copy
the run folders back), then ``--report-only`` here.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

# The studies' modules import one way, each only modules to its right: this command line -> study_definitions (every
# study) -> study_report (the page) -> study_types (entries and studies) and study_runs (the runs and their records).
from benchmarks.study_definitions import HEADLINE_ENTRIES, HEADLINE_NOTE, HEADLINE_STEPS, PAPER_TABLE_50K, STUDIES
from benchmarks.study_report import headline_table, write_headline, write_page
from benchmarks.study_runs import (
    COMMAND,
    REPLANS,
    Run,
    checkpoint_command,
    checkpoint_run_main,
    is_finished,
    merge_results,
    read_results,
    read_run,
    schedule,
    seeds_in,
    zoo_command,
    zoo_run_main,
)
from benchmarks.study_types import Entry, Records, Study

#: the warm-up of SAC and TD3: POPLIN's one random episode
LEARNING_STARTS = 1000


# ----------------------------------------------------------------------------------------------------------------------
# Configuration files, runs and records
# ----------------------------------------------------------------------------------------------------------------------
def entry_folder(folder: Path, study: str, entry: Entry) -> Path:
    """The folder of an entry's runs (``-f`` of their commands)."""
    return folder / study / entry.name


def zoo_key(entry: Entry, env: str, zoo: dict[str, Any]) -> str:
    """The rl-zoo3 entry SAC or TD3 takes on ``env``."""
    if entry.zoo_env is not None:
        return entry.zoo_env
    for key in (env, env.replace("-v5", "-v4")):
        if key in zoo:
            return key
    raise ValueError(f"rl-zoo3 has no {entry.algo} hyperparameters for {env}: give the entry a zoo_env")


def zoo_hyperparams(entry: Entry, env: str) -> dict[str, Any]:
    """The rl-zoo3 hyperparameters of an entry of a zoo study on ``env``."""
    if entry.base is not None:
        from sb3_poplin.zoo.registry import hyperparams_file

        packaged = yaml.safe_load(hyperparams_file(entry.algo, None if entry.base == "paper" else entry.base).read_text())
        return dict(packaged[env], **(entry.hyperparams or {}), n_timesteps=entry.n_timesteps)
    if entry.model_based:
        return dict(entry.hyperparams or {}, n_timesteps=entry.n_timesteps, buffer_size=entry.n_timesteps)
    from rl_zoo3 import __file__ as zoo_file

    with open(Path(zoo_file).parent / "hyperparams" / f"{entry.algo}.yml") as f:
        zoo = yaml.load(f, Loader=yaml.UnsafeLoader)  # as rl-zoo3 reads it (anchors, !!float)
    # The buffer holds every step of a run either way; sized to the run, its checkpoints stay small.
    return dict(zoo[zoo_key(entry, env, zoo)], learning_starts=LEARNING_STARTS, buffer_size=entry.n_timesteps)


def write_conf(folder: Path, study_name: str, entry: Entry) -> Path:
    """The entry's configuration file (rewritten at every start: it must match the study's definition): rl-zoo3
    hyperparameters of every env it runs on, or the settings of its checkpoint runs."""
    study = STUDIES[study_name]
    if study.kind == "zoo":
        content: dict[str, Any] = {env: zoo_hyperparams(entry, env) for env in entry.envs_in(study)}
    else:
        content = dict(
            algo=entry.algo,
            checkpoints=list(study.checkpoints),
            eval_episodes=study.eval_episodes,
            hyperparams=entry.hyperparams or {},
            **({"env_kwargs": entry.env_kwargs} if entry.env_kwargs else {}),
        )
    path = folder / study_name / "conf" / f"{entry.name}.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    # One temporary name per process: two study commands of one entry (one seed per core) write its file at once.
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    header = f"# Written by {COMMAND} {study_name}: the {entry.name} entry.\n"
    partial.write_text(header + yaml.safe_dump(content, sort_keys=False))
    partial.replace(path)  # a run starting meanwhile reads the old file or the new one, never half of one
    return path


def study_commands(
    study_name: str, entries: Sequence[Entry], envs: Sequence[str], seeds: Sequence[int], args: argparse.Namespace
) -> list[tuple[Run, list[str], Path]]:
    """The runs of a study still to make, seed-major, each as (run, command line, run folder)."""
    study = STUDIES[study_name]
    commands = []
    for seed in seeds:
        for entry in entries:
            for env in (e for e in entry.envs_in(study) if e in envs):
                run = Run(entry.algo, env, seed, entry.n_timesteps)
                folder = entry_folder(args.folder, study_name, entry)
                if is_finished(run.folder(folder)):
                    continue
                if entry.runs_of is not None:
                    print(f"{study_name}/{entry.name} {env} seed {seed}: a run of {entry.runs_of}, not run here")
                    continue
                conf = write_conf(args.folder, study_name, entry)
                if study.kind == "zoo":
                    command = zoo_command(
                        run,
                        folder,
                        conf,
                        entry.eval_freq_in(study),
                        study.eval_episodes,
                        args.checkpoint_freq,
                        args.device,
                        entry.env_kwargs,
                    )
                else:
                    command = checkpoint_command(run, folder, conf)
                commands.append((run, command, run.folder(folder)))
    return commands


def results_file(results: Path, study_name: str) -> Path:
    return results / f"{study_name}.jsonl"


def collect(study_name: str, folder: Path, results: Path) -> Records:
    """Merge what the study's run folders hold now into its results file; return its records."""
    study = STUDIES[study_name]
    fresh = []
    for entry in (e for e in study.entries if e.runs_of is None):
        for env in entry.envs_in(study):
            where = entry_folder(folder, study_name, entry)
            for seed in seeds_in(where, entry.algo, env):
                record = read_run(Run(entry.algo, env, seed, entry.n_timesteps), where)
                if record is not None:
                    fresh.append({"entry": entry.name, **record})
    return merge_results(results_file(results, study_name), fresh, order=record_order(study))


def record_order(study: Study) -> Callable[[dict[str, Any]], tuple]:
    """The order of a study's records in its results file: by entry and env as in the study, then by seed."""
    names = [e.name for e in study.entries]

    def key(record: dict[str, Any]) -> tuple:
        entry = names.index(record["entry"]) if record["entry"] in names else len(names)
        env = study.envs.index(record["env"]) if record["env"] in study.envs else len(study.envs)
        return entry, env, record["env"], record["seed"]

    return key


def study_records(study_name: str, results: Path) -> Records:
    """A study's records, with those of entries that share another study's runs (relabelled as this study's)."""
    study = STUDIES[study_name]
    own = {e.name for e in study.entries if e.runs_of is None}
    records = [r for r in read_results(results_file(results, study_name)) if r.get("entry") in own]
    for entry in (e for e in study.entries if e.runs_of is not None):
        other, name = entry.runs_of.split("/")
        records += [dict(r, entry=entry.name) for r in read_results(results_file(results, other)) if r.get("entry") == name]
    return records


#: planning budgets a finished run's model can be replanned with (``replan``), over the run's own settings
REPLAN_BUDGETS: dict[str, dict[str, Any]] = {
    "paper": dict(population_size=500, n_elites=50, cem_iterations=5, horizon=30),
}


def replan_main(argv: Sequence[str]) -> None:
    """``python -m benchmarks.study replan <study> --entry E --seed S [--budget paper] [--episodes N]``: evaluate the
    final model of a finished zoo run with another planning budget (deterministic MPC episodes, seeded apart from the
    run's), and append the result to ``replans.jsonl`` in the run's folder, whose record then carries it to the page."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    from sb3_poplin.zoo.registry import ZOO_ALGOS

    parser = argparse.ArgumentParser(prog=f"{COMMAND} replan", description=replan_main.__doc__)
    parser.add_argument("study", choices=list(STUDIES))
    parser.add_argument("--entry", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--env", default=None, help="default: the study's first env")
    parser.add_argument("--budget", choices=list(REPLAN_BUDGETS), default="paper")
    parser.add_argument("--episodes", type=int, default=1)
    parser.add_argument("--folder", type=Path, default=Path("logs"), help="where the runs wrote")
    args = parser.parse_args(list(argv))
    study = STUDIES[args.study]
    entry = next((e for e in study.entries if e.name == args.entry), None)
    if entry is None or entry.algo not in ZOO_ALGOS:
        parser.error(f"{args.entry!r} is not a model-based entry of {args.study}")
    env_id = args.env or study.envs[0]
    run_folder = Run(entry.algo, env_id, args.seed, entry.n_timesteps).folder(entry_folder(args.folder, args.study, entry))
    model_file = run_folder / f"{env_id.replace('/', '-')}.zip"  # rl-zoo3's final model of the run
    if not is_finished(run_folder) or not model_file.exists():
        parser.error(f"{run_folder} holds no finished run: run it first ({COMMAND} {args.study} --entries {entry.name})")
    settings = REPLAN_BUDGETS[args.budget]
    model = ZOO_ALGOS[entry.algo].load(model_file, device="cpu", n_threads=1, **settings)
    # The env as the run trained and evaluated on it (rl-zoo3's --env-kwargs of the entry)
    env = make_vec_env(env_id, n_envs=1, seed=args.seed + 20_000, env_kwargs=entry.env_kwargs)
    start = time.perf_counter()
    returns, _ = evaluate_policy(model, env, n_eval_episodes=args.episodes, deterministic=True, return_episode_rewards=True)
    record = dict(
        budget=args.budget,
        settings=settings,
        timesteps=int(model.num_timesteps),
        returns=[float(r) for r in returns],
        mean=float(np.mean(returns)),
        plan_ms=1000.0 * float(np.median(model.engine.plan_times)),
        wall_s=time.perf_counter() - start,
    )
    with (run_folder / REPLANS).open("a") as f:
        f.write(json.dumps(record) + "\n")
    print(json.dumps(record))


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "run":
        zoo_run_main(argv[1:])
        return
    if argv and argv[0] == "checkpoint-run":
        checkpoint_run_main(argv[1:])
        return
    if argv and argv[0] == "replan":
        replan_main(argv[1:])
        return
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", choices=[*STUDIES, "all"], help="a study, or all of them")
    parser.add_argument("--entries", nargs="+", default=None, help="entries to run (default: all; one study only)")
    parser.add_argument("--envs", nargs="+", default=None, help="envs to run (default: every env of the study)")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="seeds to run (default: the study's)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (one core each)")
    parser.add_argument("--checkpoint-freq", type=int, default=2000, help="steps between checkpoints of zoo runs")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--folder", type=Path, default=Path("logs"), help="where the runs write (not committed)")
    parser.add_argument("--results", type=Path, default=Path("docs/results"), help="the folder of the records")
    parser.add_argument("--output", type=Path, default=Path("docs/results.md"), help="the results page")
    parser.add_argument("--readme", type=Path, default=Path("README.md"), help="the README, whose headline table is rewritten")
    parser.add_argument("--print-commands", action="store_true", help="print one command line per run and stop")
    parser.add_argument("--report-only", action="store_true", help="run nothing: read the run folders, write the page")
    args = parser.parse_args(argv)
    names = list(STUDIES) if args.study == "all" else [args.study]
    if args.entries is not None:
        if len(names) > 1:
            parser.error("--entries needs one study")
        known = [e.name for e in STUDIES[names[0]].entries]
        unknown = sorted(set(args.entries) - set(known))
        if unknown:
            parser.error(f"unknown entries {unknown}; {names[0]} has {known}")

    if not args.report_only:
        commands = []
        for name in names:
            study = STUDIES[name]
            entries = [e for e in study.entries if args.entries is None or e.name in args.entries]
            envs = study.envs if args.envs is None else args.envs
            commands += study_commands(name, entries, envs, study.seeds if args.seeds is None else args.seeds, args)
        if args.print_commands:
            for _, command, _ in commands:
                print(" ".join(shlex.quote(c) for c in ["python", *command[1:]]))
            return
        schedule(commands, args.jobs)
    for name in names:
        collect(name, args.folder, args.results)
    records = {name: study_records(name, args.results) for name in STUDIES}
    write_page(STUDIES, records, args.output, names, COMMAND)
    if "pets-cheetah" in names:
        paper = {name: PAPER_TABLE_50K[label] if label else "" for name, label in HEADLINE_ENTRIES.items()}
        link = Path(os.path.relpath(args.output, args.readme.parent)).as_posix() + "#pets-cheetah"
        study = STUDIES["pets-cheetah"]
        table = headline_table(study, records["pets-cheetah"], list(paper), HEADLINE_STEPS, paper, link, HEADLINE_NOTE)
        write_headline(args.readme, table)
    counts = {
        name: {e.name: sum(r["entry"] == e.name for r in records[name]) for e in STUDIES[name].entries} for name in names
    }
    print(json.dumps(counts))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
