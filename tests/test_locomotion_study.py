"""The locomotion study's runner (benchmarks/locomotion.py): a killed run resumes from its checkpoint without repeating
episodes, a finished run is not rerun, and the report is written from the runs' records. Tiny settings on Pendulum-v1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from benchmarks import locomotion

REPO_ROOT = Path(__file__).resolve().parent.parent
ENV_ID = "Pendulum-v1"  # episodes of exactly EPISODE steps (a time limit passed through --env-kwargs)
EPISODE = 50
TINY = dict(
    n_timesteps=4 * EPISODE,
    policy="MlpPolicy",
    learning_starts=EPISODE,
    population_size=24,
    n_elites=4,
    cem_iterations=2,
    horizon=4,
    ensemble_size=2,
    dynamics_net_arch=[16, 16],
    dynamics_epochs=2,
    policy_epochs=2,
    buffer_size=2000,
)


def run_study_command(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.locomotion", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yml"
    path.write_text(yaml.safe_dump({ENV_ID: TINY}))
    return path


def zoo_args(conf: Path, folder: Path, steps: int = 4 * EPISODE) -> list[str]:
    return [
        "--algo", "poplin_p", "--env", ENV_ID, "--seed", "0", "-f", str(folder), "--conf-file", str(conf),
        "-n", str(steps), "--eval-freq", str(2 * EPISODE), "--env-kwargs", f"max_episode_steps:{EPISODE}",
        "--eval-episodes", "1", "--num-threads", "1", "--verbose", "0",
    ]  # fmt: skip


def run_killed(conf: Path, folder: Path, cwd: Path, checkpoint_freq: int, episodes: int, steps: int = 4 * EPISODE) -> None:
    """A study run that checkpoints every ``checkpoint_freq`` steps and dies like a killed process after ``episodes``."""
    killed = run_study_command(
        [
            "run",
            "--checkpoint-freq",
            str(checkpoint_freq),
            "--stop-after-episodes",
            str(episodes),
            "--",
            *zoo_args(conf, folder, steps),
        ],
        cwd,
    )
    assert killed.returncode == 3, killed.stdout + killed.stderr


def read_progress(run_folder: Path) -> list[dict]:
    return [json.loads(line) for line in (run_folder / "progress.jsonl").read_text().splitlines()]


def test_killed_run_resumes_from_its_checkpoint_without_repeating_episodes(conf: Path, tmp_path: Path) -> None:
    folder = tmp_path / "study"
    run_folder = folder / "poplin_p" / f"{ENV_ID}_1"
    # Checkpoint at the end of episode 2, then die like a killed process at the end of episode 3:
    # episode 3 and its monitor row are past the checkpoint and must be forgotten on resume.
    run_killed(conf, folder, tmp_path, checkpoint_freq=2 * EPISODE, episodes=3)
    assert locomotion.latest_checkpoint(run_folder).name == f"ckpt_{2 * EPISODE}"
    progress = read_progress(run_folder)
    assert [r["timesteps"] for r in progress if r["kind"] == "episode"] == [EPISODE, 2 * EPISODE, 3 * EPISODE]
    # A kill can fall between EvalCallback's evaluations.npz and the log's record of it (the record is written one step
    # later): the resumed run writes the record from the npz.
    (run_folder / "progress.jsonl").write_text("".join(json.dumps(r) + "\n" for r in progress if r["kind"] != "eval"))

    resumed = run_study_command(["run", "--checkpoint-freq", str(2 * EPISODE), "--", *zoo_args(conf, folder)], tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Resuming" in resumed.stdout
    progress = read_progress(run_folder)
    episodes = [r for r in progress if r["kind"] == "episode"]
    assert [r["timesteps"] for r in episodes] == [EPISODE * k for k in (1, 2, 3, 4)], "each episode once, none lost"
    assert [r["episode"] for r in episodes] == [1, 2, 3, 4]
    assert all(r["plan_ms"] is not None for r in episodes[1:]), "planned from the first step after learning_starts on"
    # Fitting and distillation seconds accumulate, across the resume too (they are saved with the checkpoint).
    fits, distills = [r["fit_s"] for r in episodes], [r["distill_s"] for r in episodes]
    assert fits == sorted(fits) and distills == sorted(distills) and fits[-1] > fits[1] > 0 and distills[-1] > 0
    evals = [r for r in progress if r["kind"] == "eval"]
    assert [r["timesteps"] for r in evals] == [2 * EPISODE, 4 * EPISODE]
    with np.load(run_folder / "evaluations.npz") as data:
        assert data["timesteps"].tolist() == [2 * EPISODE, 4 * EPISODE]
    monitor_rows = (run_folder / "0.monitor.csv").read_text().splitlines()[2:]
    assert len(monitor_rows) == 4 and sum(int(row.split(",")[1]) for row in monitor_rows) == 4 * EPISODE
    # The zoo layout: the final model, its config, and no checkpoints left once finished.
    assert (run_folder / f"{ENV_ID}.zip").exists() and (run_folder / ENV_ID / "config.yml").exists()
    assert (run_folder / "finished.json").exists() and not (run_folder / "resume").exists()

    # A finished run is never rerun.
    before = (run_folder / "progress.jsonl").read_text()
    again = run_study_command(["run", "--", *zoo_args(conf, folder)], tmp_path)
    assert again.returncode == 0 and "finished" in again.stdout
    assert (run_folder / "progress.jsonl").read_text() == before


def test_a_run_killed_before_its_first_checkpoint_starts_over(conf: Path, tmp_path: Path) -> None:
    folder = tmp_path / "study"
    run_folder = folder / "poplin_p" / f"{ENV_ID}_1"
    run_killed(conf, folder, tmp_path, checkpoint_freq=10 * EPISODE, episodes=1, steps=2 * EPISODE)
    assert locomotion.latest_checkpoint(run_folder) is None
    resumed = run_study_command(["run", "--", *zoo_args(conf, folder, 2 * EPISODE)], tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    progress = read_progress(run_folder)
    assert [r["timesteps"] for r in progress if r["kind"] == "episode"] == [EPISODE, 2 * EPISODE]


def test_report_and_commands_from_the_run_records(tmp_path: Path) -> None:
    folder = tmp_path / "study"
    results, output = tmp_path / "runs.jsonl", tmp_path / "locomotion.md"
    # Two seeds of three algorithms, written as the runs write them.
    for algo, scale in (("poplin_p", 2.0), ("pets", 4.0), ("sac", 1.0)):
        for seed in (0, 1):
            run = locomotion.Run(algo, "HalfCheetah-v5", seed, 30_000 if algo == "sac" else 10_000)
            run_folder = run.folder(folder)
            run_folder.mkdir(parents=True)
            records = [
                dict(
                    kind="eval",
                    timesteps=t,
                    mean=scale * t / 10 + seed,
                    std=0.0,
                    returns=[scale * t / 10 + seed],
                    wall_s=t / 100,
                )
                for t in range(2500, run.n_timesteps + 1, 2500)
            ]
            (run_folder / "progress.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
            (run_folder / "finished.json").write_text("{}")
    # One seed of a planning variant, as benchmarks.locomotion_budgets records it.
    variant = dict(
        budget="poplin_p-cpu-pessimism",
        algo="poplin_p",
        env="HalfCheetah-v5",
        seed=0,
        n_timesteps=10_000,
        finished=True,
        timesteps=10_000,
        wall_s=60.0,
        fit_s=6.0,
        distill_s=3.0,
        plan_ms=250.0,
        cem_iterations=3.0,
        evals=[[10_000, 3500.0]],
        episodes=[],
    )
    variants = tmp_path / "budgets.jsonl"
    variants.write_text(json.dumps(variant) + "\n")
    common = ["--envs", "HalfCheetah-v5", "--algos", "poplin_p", "pets", "sac", "--seeds", "0", "1", "--folder", str(folder)]
    outputs = ["--results", str(results), "--output", str(output), "--variant-results", str(variants)]
    report = run_study_command([*common, "--report-only", *outputs], tmp_path)
    assert report.returncode == 0, report.stdout + report.stderr
    page = output.read_text()
    # POPLIN-P at 10k: 2 * 1000 + seed -> 2000.5 +- 0.5; SAC at 30k: 3000 + seed.
    assert "| POPLIN-P | 1000 ± 0 | 2000 ± 0 | - |" in page
    assert "POPLIN-P at 10k steps (2000, 2 seeds) against SAC at 30k (3000): the 3x claim does not hold here." in page
    assert "| POPLIN-P, pessimism 1 (TSinf) | - | 3500 ± 0 (1 of 2 seeds) | - | 1 min | 250 | 10% / 5% |" in page
    assert "pessimism 1 (TSinf) at 10k steps (3500, 1 of 2 seeds) against SAC at 30k (3000): the 3x claim holds" in page
    # The other model-based algorithms are held to the same bar, in words of their own.
    assert "- PETS at 10k steps (4000, 2 seeds) against SAC at 30k (3000): as high or higher with 0.33 of the steps" in page
    assert (tmp_path / "locomotion_HalfCheetah-v5.png").stat().st_size > 10_000
    assert len(results.read_text().splitlines()) == 6
    # A study command for one algorithm (nothing left to run: its runs are finished) keeps the page of the whole study.
    partial = ["--envs", "HalfCheetah-v5", "--algos", "sac", "--seeds", "0", "1", "--folder", str(folder), *outputs]
    assert run_study_command(partial, tmp_path).returncode == 0
    assert "| POPLIN-P | 1000 ± 0 | 2000 ± 0 | - |" in output.read_text()
    # Finished runs produce no command; the others one self-contained command line each.
    commands = run_study_command([*common, "--algos", "poplin_p", "sac", "td3", "--print-commands"], tmp_path)
    lines = commands.stdout.strip().splitlines()
    assert len(lines) == 2 and all("--algo td3" in line and "benchmarks.locomotion run" in line for line in lines)


def test_budget_study_commands_and_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from benchmarks import locomotion_budgets

    monkeypatch.chdir(tmp_path)
    budgets = ["pets-paper", "poplin_p-cpu", "poplin_p-cpu-pessimism", "poplin_p-cpu-exact-reward"]
    locomotion_budgets.main(["--budgets", *budgets, "--seeds", "0", "--print-commands"])
    lines = capsys.readouterr().out.splitlines()
    # The CPU entry's runs are the locomotion study's: not run again here.
    assert lines[0] == "poplin_p-cpu seed 0: an unfinished run of the study (python -m benchmarks.locomotion)"
    commands = [line for line in lines if line.startswith("python -m benchmarks.locomotion run")]
    assert len(commands) == 3 and all("--eval-freq 10000" in c for c in commands)
    # Only the exact-reward budget changes the env, for its training and evaluation envs (rl-zoo3's --env-kwargs).
    with_kwargs = [c for c in commands if "--env-kwargs" in c]
    assert len(with_kwargs) == 1 and "poplin_p-cpu-exact-reward" in with_kwargs[0]
    assert with_kwargs[0].endswith("--env-kwargs exclude_current_positions_from_observation:False")
    conf = yaml.safe_load((tmp_path / "logs/budgets/conf/poplin_p-cpu-pessimism.yml").read_text())["HalfCheetah-v5"]
    assert conf["propagation"] == "fixed_model" and conf["num_particles"] == 5 and conf["pessimism"] == 1.0
    assert conf["population_size"] == 100 and conf["dynamics_net_arch"] == [200, 200, 200, 200]

    # A paper-size run halfway through: its 5k evaluation shows before its 10k one exists.
    halfway = dict(budget="pets-paper", algo="pets", env="HalfCheetah-v5", seed=0, n_timesteps=10_000, finished=False)
    halfway.update(timesteps=6_000, plan_ms=1000.0, evals=[[5_000, -1318.0]], episodes=[[1000, -200.0], [2000, 390.0]])
    (tmp_path / "runs.jsonl").write_text(json.dumps(halfway) + "\n")
    report = ["--report-only", "--output", "budgets.md", "--results", "runs.jsonl"]
    locomotion_budgets.main(["--budgets", *budgets, "--seeds", "0", *report])
    page = (tmp_path / "budgets.md").read_text()
    rows = {line.split(" | ")[0][2:]: line for line in page.splitlines() if line[:2] == "| "}
    assert "| training return | evaluation at 5k | evaluation at 10k | plan ms / step |" in rows["budget"]
    assert rows["pets-paper"].endswith("| 75,000 | 1.00 | - | -1318 ± 0 | - | 1000 |")
    assert "| 4,500 | 0.06 |" in rows["poplin_p-cpu"]
    assert "| 22,500 | 0.30 |" in rows["poplin_p-cpu-pessimism"]  # particles count: 5 per candidate
    # The page's command line runs as pasted (the module is not quoted as one word).
    assert (
        f"python -m benchmarks.locomotion_budgets --budgets {' '.join(budgets)} --seeds 0 --steps 10000" in page.splitlines()
    )


def test_budget_on_another_env_runs_there_and_stays_out_of_the_halfcheetah_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from benchmarks import locomotion_budgets

    monkeypatch.chdir(tmp_path)
    budgets = ["poplin_p-cpu-exact-reward", "poplin_p-cpu-hopper-train1000"]
    locomotion_budgets.main(["--budgets", *budgets, "--seeds", "0", "--print-commands"])
    commands = [line for line in capsys.readouterr().out.splitlines() if "benchmarks.locomotion run" in line]
    hopper = [c for c in commands if "poplin_p-cpu-hopper-train1000" in c]
    assert len(hopper) == 1 and "--env Hopper-v5" in hopper[0]
    conf = yaml.safe_load((tmp_path / "logs/budgets/conf/poplin_p-cpu-hopper-train1000.yml").read_text())
    assert set(conf) == {"Hopper-v5"} and conf["Hopper-v5"]["train_freq"] == [1000, "step"]
    assert conf["Hopper-v5"]["population_size"] == 100 and conf["Hopper-v5"]["horizon"] == 15
    # The page is HalfCheetah-v5's: the Hopper budget is shown in docs/locomotion.md, beside the study's algorithms.
    locomotion_budgets.main(["--budgets", *budgets, "--seeds", "0", "--report-only", "--output", "budgets.md"])
    page = (tmp_path / "budgets.md").read_text()
    assert "| poplin_p-cpu-exact-reward |" in page and "| poplin_p-cpu-hopper-train1000 |" not in page
    assert "poplin_p-cpu-hopper-train1000" in locomotion.VARIANTS


def test_model_free_config_keeps_the_entries_of_other_envs(tmp_path: Path) -> None:
    # Two study commands for different envs share the file: the second must not drop the first env's entry, which its
    # runs read again when they resume.
    path = tmp_path / "conf" / "sac.yml"
    locomotion.model_free_config("sac", ["HalfCheetah-v5"], 30_000, path)
    locomotion.model_free_config("sac", ["Hopper-v5"], 20_000, path)
    entries = yaml.safe_load(path.read_text())
    assert set(entries) == {"HalfCheetah-v5", "Hopper-v5"}
    assert entries["HalfCheetah-v5"]["buffer_size"] == 30_000 and entries["Hopper-v5"]["buffer_size"] == 20_000
    assert entries["Hopper-v5"]["learning_starts"] == locomotion.LEARNING_STARTS
    # Asked again, an env's entry is refreshed, not duplicated.
    locomotion.model_free_config("sac", ["HalfCheetah-v5"], 10_000, path)
    assert yaml.safe_load(path.read_text())["HalfCheetah-v5"]["buffer_size"] == 10_000
    assert not list(path.parent.glob("*.partial"))


def test_a_run_killed_before_an_evaluation_due_at_its_checkpoint_makes_it_on_resume(conf: Path, tmp_path: Path) -> None:
    folder = tmp_path / "study"
    run_folder = folder / "poplin_p" / f"{ENV_ID}_1"
    # Episode 2 ends where an evaluation is due: the checkpoint comes first, and the kill right after it (a stop during
    # a long evaluation) loses no training steps.
    run_killed(conf, folder, tmp_path, checkpoint_freq=2 * EPISODE, episodes=2)
    assert locomotion.latest_checkpoint(run_folder).name == f"ckpt_{2 * EPISODE}"
    progress = read_progress(run_folder)
    assert [r["kind"] for r in progress] == ["episode", "episode"], "killed before the evaluation at the checkpoint"

    resumed = run_study_command(["run", "--checkpoint-freq", str(2 * EPISODE), "--", *zoo_args(conf, folder)], tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    progress = read_progress(run_folder)
    # The missed evaluation comes first, then the rest of the run, in the order of an uninterrupted run.
    assert [(r["kind"], r["timesteps"]) for r in progress] == [
        ("episode", EPISODE), ("episode", 2 * EPISODE), ("eval", 2 * EPISODE),
        ("episode", 3 * EPISODE), ("episode", 4 * EPISODE), ("eval", 4 * EPISODE),
    ]  # fmt: skip
    with np.load(run_folder / "evaluations.npz") as data:
        assert data["timesteps"].tolist() == [2 * EPISODE, 4 * EPISODE]
        assert np.allclose(data["results"].mean(axis=1), [r["mean"] for r in progress if r["kind"] == "eval"])
