"""The study runner (benchmarks/study.py): a killed zoo run resumes from its checkpoint without repeating episodes, a
finished run is not rerun, a checkpoint run evaluates MPC and policy control at its checkpoints, command lines and
configuration files follow the studies' definitions, and the results page is written from the runs' records. Tiny
settings on Pendulum-v1, everything in tmp folders."""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from benchmarks import study, study_report, study_runs
from benchmarks import study_definitions as definitions
from benchmarks.study_runs import eval_at
from benchmarks.study_types import Entry, Study

REPO_ROOT = Path(__file__).resolve().parent.parent
ENV_ID = "Pendulum-v1"  # episodes of exactly EPISODE steps (a time limit passed as an env keyword argument)
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
    dynamics_min_updates=0,  # the tests check the runner, not model quality: no extra gradient steps past the epochs
    buffer_size=2000,
    # Sampled particles: planning and the scoring of executed plans draw from their generators, which a resumed run must
    # restore to draw what the uninterrupted one does.
    propagation="fixed_model",
    num_particles=2,
    exploitation_log_freq=7,  # not a divisor of EPISODE: a resumed run keeps the cadence only if it counts on
)


def run_study_command(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.study", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
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
    """A zoo run that checkpoints every ``checkpoint_freq`` steps and dies like a killed process after ``episodes``."""
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
    assert study_runs.latest_checkpoint(run_folder).name == f"ckpt_{2 * EPISODE}"
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
    # The run's record, as the report reads it.
    record = study_runs.read_run(study_runs.Run("poplin_p", ENV_ID, 0, 4 * EPISODE), folder)
    assert record["finished"] and record["timesteps"] == 4 * EPISODE and len(record["episodes"]) == 4
    assert [t for t, _ in record["evals"]] == [2 * EPISODE, 4 * EPISODE] and record["plan_ms"] > 0
    # The model's predicted return of the executed plans beside the env's, for every planned episode (not the random one)
    assert [t for t, _, _ in record["exploitation"]] == [EPISODE * k for k in (2, 3, 4)]
    assert all(np.isfinite(predicted) and np.isfinite(realized) for _, predicted, realized in record["exploitation"])

    # The resumed run drew what the uninterrupted one draws (the random streams are in the checkpoint, and the training
    # that followed the checkpointed episode is made first): the same episodes, evaluations and model.
    straight = tmp_path / "straight"
    uninterrupted = run_study_command(["run", "--", *zoo_args(conf, straight)], tmp_path)
    assert uninterrupted.returncode == 0, uninterrupted.stdout + uninterrupted.stderr
    straight_progress = read_progress(straight / "poplin_p" / f"{ENV_ID}_1")
    for kind, key in (("episode", "ret"), ("eval", "mean")):
        assert [r[key] for r in progress if r["kind"] == kind] == [r[key] for r in straight_progress if r["kind"] == kind]
    # The scored plans too: the scoring's own generator and its cadence are in the checkpoint.
    straight_record = study_runs.read_run(study_runs.Run("poplin_p", ENV_ID, 0, 4 * EPISODE), straight)
    assert record["exploitation"] == straight_record["exploitation"]

    # A finished run is never rerun.
    before = (run_folder / "progress.jsonl").read_text()
    again = run_study_command(["run", "--", *zoo_args(conf, folder)], tmp_path)
    assert again.returncode == 0 and "finished" in again.stdout
    assert (run_folder / "progress.jsonl").read_text() == before


def test_a_run_killed_before_its_first_checkpoint_starts_over(conf: Path, tmp_path: Path) -> None:
    folder = tmp_path / "study"
    run_folder = folder / "poplin_p" / f"{ENV_ID}_1"
    run_killed(conf, folder, tmp_path, checkpoint_freq=10 * EPISODE, episodes=1, steps=2 * EPISODE)
    assert study_runs.latest_checkpoint(run_folder) is None
    resumed = run_study_command(["run", "--", *zoo_args(conf, folder, 2 * EPISODE)], tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    progress = read_progress(run_folder)
    assert [r["timesteps"] for r in progress if r["kind"] == "episode"] == [EPISODE, 2 * EPISODE]


def test_a_run_killed_before_an_evaluation_due_at_its_checkpoint_makes_it_on_resume(conf: Path, tmp_path: Path) -> None:
    folder = tmp_path / "study"
    run_folder = folder / "poplin_p" / f"{ENV_ID}_1"
    # Episode 2 ends where an evaluation is due: the checkpoint comes first, and the kill right after it (a stop during
    # a long evaluation) loses no training steps.
    run_killed(conf, folder, tmp_path, checkpoint_freq=2 * EPISODE, episodes=2)
    assert study_runs.latest_checkpoint(run_folder).name == f"ckpt_{2 * EPISODE}"
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


def tiny_checkpoint_study() -> Study:
    settings = {k: v for k, v in TINY.items() if k not in ("n_timesteps", "policy")}
    return Study(
        envs=(ENV_ID,),
        title="Tiny checkpoint study",
        kind="checkpoints",
        checkpoints=(2 * EPISODE, 3 * EPISODE),
        eval_episodes=1,
        seeds=(0,),
        entries=(
            Entry(
                "p",
                "poplin_p",
                "POPLIN-P",
                3 * EPISODE,
                dict(settings, policy_epochs=2),
                env_kwargs={"max_episode_steps": EPISODE},
            ),
            Entry(
                "rs", "rs", "RS", 3 * EPISODE, dict(settings, population_size=48), env_kwargs={"max_episode_steps": EPISODE}
            ),
        ),
        notes="Tiny notes.",
    )


def test_a_checkpoint_study_runs_records_and_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(study, "STUDIES", {"tiny": tiny_checkpoint_study()})
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))  # the scheduled runs import benchmarks from the repository
    folder, results, output = tmp_path / "logs", tmp_path / "results", tmp_path / "docs" / "results.md"
    common = ["--folder", str(folder), "--results", str(results), "--output", str(output)]
    study.main(["tiny", "--jobs", "2", *common])

    run_folder = folder / "tiny" / "p" / "poplin_p" / f"{ENV_ID}_1"
    record = json.loads((run_folder / study_runs.CHECKPOINT_RECORD).read_text())
    assert record["finished"] and record["n_timesteps"] == 3 * EPISODE
    assert [t for t, _ in record["evals"]] == [2 * EPISODE, 3 * EPISODE], "MPC control at each checkpoint"
    assert [t for t, _ in record["policy_evals"]] == [2 * EPISODE, 3 * EPISODE], "and the distilled policy alone"
    # One episode of EPISODE steps per evaluation: Pendulum's return is at most 0 and at least -16.3 per step.
    assert all(-16.3 * EPISODE <= r <= 0 for _, r in record["evals"] + record["policy_evals"])
    assert record["plan_ms"] > 0 and record["fit_s"] > 0 and record["wall_s"] > 0
    rs = json.loads((folder / "tiny" / "rs" / "rs" / f"{ENV_ID}_1" / study_runs.CHECKPOINT_RECORD).read_text())
    assert "policy_evals" not in rs, "RS has no policy"
    conf = yaml.safe_load((folder / "tiny" / "conf" / "rs.yml").read_text())
    assert conf["hyperparams"]["population_size"] == 48 and conf["env_kwargs"] == {"max_episode_steps": EPISODE}

    lines = (results / "tiny.jsonl").read_text().splitlines()
    assert [json.loads(line)["entry"] for line in lines] == ["p", "rs"]
    page = output.read_text()
    assert "| entry | MPC at 0.1k | MPC at 0.15k | policy at 0.1k | policy at 0.15k |" in page
    assert "| RS | " in page and "Tiny notes." in page
    assert "python -m benchmarks.study tiny --seeds 0\npython -m benchmarks.study --report-only tiny" in page
    assert (output.parent / "results_tiny.png").stat().st_size > 5_000

    # A finished run is not run again.
    before = (run_folder / study_runs.CHECKPOINT_RECORD).read_text()
    args = ["--conf-file", str(folder / "tiny/conf/p.yml"), "--env", ENV_ID, "--seed", "0", "-f", str(folder / "tiny/p")]
    again = run_study_command(["checkpoint-run", *args], tmp_path)
    assert again.returncode == 0 and "finished" in again.stdout
    assert (run_folder / study_runs.CHECKPOINT_RECORD).read_text() == before


def write_progress(run_folder: Path, n_timesteps: int, scale: float, seed: int, finished: bool = True) -> None:
    """The progress log of a run, as a zoo run writes it: an evaluation every 2,500 steps."""
    run_folder.mkdir(parents=True)
    records = [
        dict(kind="eval", timesteps=t, mean=scale * t / 10 + seed, std=0.0, returns=[scale * t / 10 + seed], wall_s=t / 100)
        for t in range(2500, n_timesteps + 1, 2500)
    ]
    (run_folder / "progress.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if finished:
        (run_folder / "finished.json").write_text(json.dumps(dict(timesteps=n_timesteps, wall_s=n_timesteps / 100)))


def tiny_zoo_study() -> Study:
    return Study(
        envs=("HalfCheetah-v5",),
        title="Tiny zoo study",
        entries=(
            Entry("poplin_p", "poplin_p", "POPLIN-P", 10_000, {}, base="cpu"),
            Entry("pets", "pets", "PETS", 10_000, {}, base="cpu"),
            Entry("sac", "sac", "SAC", 30_000, eval_freq=2500),
            Entry("td3", "td3", "TD3", 30_000, eval_freq=2500),
        ),
        seeds=(0, 1),
        table_steps=(5_000, 10_000, 30_000),
        report_sections=(definitions.claim_lines,),
        intro="Tiny intro.",
    )


def test_report_and_commands_from_the_run_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(study, "STUDIES", {"tiny": tiny_zoo_study()})
    folder, results, output = tmp_path / "logs", tmp_path / "results", tmp_path / "results.md"
    # Two seeds of three entries, written as the runs write them in <folder>/<study>/<entry>/<algo>/<env>_<seed + 1>/.
    for entry, scale in (("poplin_p", 2.0), ("pets", 4.0), ("sac", 1.0)):
        for seed in (0, 1):
            n_timesteps = 30_000 if entry == "sac" else 10_000
            write_progress(folder / "tiny" / entry / entry / f"HalfCheetah-v5_{seed + 1}", n_timesteps, scale, seed)
    outputs = ["--folder", str(folder), "--results", str(results), "--output", str(output)]
    study.main(["--report-only", "tiny", *outputs])
    page = output.read_text()
    # POPLIN-P at 10k: 2 * 1000 + seed -> 2000.5 +- 0.5; SAC at 30k: 3000 + seed.
    assert "| POPLIN-P | 1000 ± 0 | 2000 ± 0 | - | 1.7 min | - |" in page
    assert "- HalfCheetah-v5: POPLIN-P at 10k (2000) against SAC at 30k (3000): the 3x claim does not hold here." in page
    assert (
        "- HalfCheetah-v5: PETS at 10k (4000) against SAC at 30k (3000): as high or higher with 0.33 of the steps "
        "(POPLIN-P's bar)." in page
    )
    assert "No runs recorded yet: TD3." in page and "Tiny intro." in page
    assert (tmp_path / "results_tiny.png").stat().st_size > 10_000
    lines = (results / "tiny.jsonl").read_text().splitlines()
    assert [json.loads(line)["entry"] for line in lines] == ["poplin_p"] * 2 + ["pets"] * 2 + ["sac"] * 2
    assert all(": " not in line for line in lines), "compact JSON lines"

    # A run folder that is lost keeps its committed record; a run that gets further replaces it.
    shutil.rmtree(folder / "tiny" / "pets")
    write_progress(folder / "tiny" / "td3" / "td3" / "HalfCheetah-v5_1", 5_000, 1.0, 0, finished=False)
    study.main(["--report-only", "tiny", *outputs])
    page = output.read_text()
    assert "| PETS | 2000 ± 0 | 4000 ± 0 | - |" in page
    assert "| TD3 | 500 (1 of 2 seeds) | - | - | not finished | - |" in page
    assert "- td3 HalfCheetah-v5 seed 0: 5,000 of 30,000 steps" in page

    # Finished runs produce no command; the others one self-contained command line each, seed-major.
    capsys.readouterr()
    study.main(["tiny", "--entries", "sac", "td3", "--print-commands", *outputs])
    commands = capsys.readouterr().out.strip().splitlines()
    assert len(commands) == 2 and all(
        c.startswith("python -m benchmarks.study run --checkpoint-freq 2000 -- ") for c in commands
    )
    assert ["--seed 0" in c for c in commands] == [True, False] and all("--algo td3" in c for c in commands)
    assert all("--eval-freq 2500" in c and f"-f {folder / 'tiny' / 'td3'} " in c for c in commands)
    # The entry's configuration file holds its rl-zoo3 entry, the zoo's tuned one with POPLIN's warm-up.
    conf = yaml.safe_load((folder / "tiny" / "conf" / "td3.yml").read_text())
    assert set(conf) == {"HalfCheetah-v5"} and conf["HalfCheetah-v5"]["learning_starts"] == study.LEARNING_STARTS
    assert conf["HalfCheetah-v5"]["buffer_size"] == 30_000

    with pytest.raises(SystemExit):
        study.main(["tiny", "--entries", "nope", "--print-commands", *outputs])


def test_budget_study_commands_and_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    entries = ["pets-paper", "poplin_p-cpu", "poplin_p-cpu-pessimism", "poplin_p-cpu-exact-reward"]
    entries += ["poplin_p-cpu-hopper-train1000"]
    study.main(["budgets-v5", "--entries", *entries, "--seeds", "0", "--print-commands"])
    lines = capsys.readouterr().out.splitlines()
    # The CPU entry's runs are locomotion-v5's: not run again here.
    assert lines[0] == "budgets-v5/poplin_p-cpu HalfCheetah-v5 seed 0: a run of locomotion-v5/poplin_p, not run here"
    commands = [line for line in lines if line.startswith("python -m benchmarks.study run")]
    assert len(commands) == 4 and all("--eval-freq 5000" in c and "-n 10000" in c for c in commands)
    # Only the exact-reward entry changes the env, for its training and evaluation envs (rl-zoo3's --env-kwargs).
    with_kwargs = [c for c in commands if "--env-kwargs" in c]
    assert len(with_kwargs) == 1 and "poplin_p-cpu-exact-reward" in with_kwargs[0]
    assert with_kwargs[0].endswith("--env-kwargs exclude_current_positions_from_observation:False")
    # The Hopper entry runs on Hopper-v5 only, the others on HalfCheetah-v5 only.
    hopper = [c for c in commands if "--env Hopper-v5" in c]
    assert len(hopper) == 1 and "poplin_p-cpu-hopper-train1000" in hopper[0]
    conf = yaml.safe_load((tmp_path / "logs/budgets-v5/conf/poplin_p-cpu-pessimism.yml").read_text())
    assert set(conf) == {"HalfCheetah-v5"}
    settings = conf["HalfCheetah-v5"]
    assert settings["propagation"] == "fixed_model" and settings["num_particles"] == 5 and settings["pessimism"] == 1.0
    assert settings["population_size"] == 100 and settings["dynamics_net_arch"] == [200, 200, 200, 200]
    assert settings["buffer_size"] == settings["n_timesteps"] == 10_000
    conf = yaml.safe_load((tmp_path / "logs/budgets-v5/conf/poplin_p-cpu-hopper-train1000.yml").read_text())
    assert set(conf) == {"Hopper-v5"} and conf["Hopper-v5"]["train_freq"] == [1000, "step"]
    assert conf["Hopper-v5"]["population_size"] == 100 and conf["Hopper-v5"]["horizon"] == 15
    assert not list((tmp_path / "logs/budgets-v5/conf").glob("*.partial"))


def test_budget_table_counts_model_evaluations_and_the_papers_measure() -> None:
    # A paper-size run halfway through and one seed of the pessimism entry, as their records are committed.
    halfway = dict(entry="pets-paper", algo="pets", env="HalfCheetah-v5", seed=0, n_timesteps=10_000, finished=False)
    halfway.update(timesteps=6_000, wall_s=1.0, plan_ms=1000.0, evals=[[5_000, -1318.0]], episodes=[[1000, -200.0]])
    pessimism = dict(halfway, entry="poplin_p-cpu-pessimism", algo="poplin_p", finished=True, timesteps=10_000)
    pessimism.update(evals=[[10_000, 150.0]], episodes=[[t, float(t)] for t in range(1000, 10_001, 1000)])
    rows = {line.split(" | ")[0][2:]: line for line in definitions.budget_table(definitions.BUDGETS_V5, [halfway, pessimism])}
    assert rows["PETS, the paper's search (500 x 30 x 5)"].endswith("| pets | 75,000 | 1.00 | - |")
    assert "| HalfCheetah-v5 | poplin_p | 4,500 | 0.06 | - |" in rows["POPLIN-P, CPU entry (100 x 15 x 3)"]
    # 5 particles per candidate; the training return is the mean of the last 3 training episodes by 10k.
    assert rows["POPLIN-P, pessimism 1 (TSinf)"].endswith("| 22,500 | 0.30 | 9000 (1 of 3 seeds) |")
    assert "| Hopper-v5 |" in rows["POPLIN-P, model trained every 1k steps"]


def test_the_committed_page_regenerates_from_the_committed_records(tmp_path: Path) -> None:
    results = tmp_path / "results"
    shutil.copytree(REPO_ROOT / "docs" / "results", results)
    output = tmp_path / "docs" / "results.md"
    readme = tmp_path / "README.md"
    readme.write_text((REPO_ROOT / "README.md").read_text())
    paths = ["--folder", str(tmp_path / "logs"), "--results", str(results), "--output", str(output), "--readme", str(readme)]
    study.main(["--report-only", "all", *paths])
    assert output.read_text() == (REPO_ROOT / "docs" / "results.md").read_text(), (
        "run: python -m benchmarks.study --report-only all"
    )
    # The README's headline table is written from the same records (between its headline comments).
    assert readme.read_text() == (REPO_ROOT / "README.md").read_text(), "run: python -m benchmarks.study --report-only all"
    assert "| POPLIN-P Sep-AVG |" in readme.read_text()
    for path in (REPO_ROOT / "docs" / "results").glob("*.jsonl"):
        assert (results / path.name).read_text() == path.read_text(), f"{path.name}: records merge back unchanged"
    assert sorted(p.name for p in output.parent.glob("results_*.png")) == sorted(
        f"results_{name}.png" for name in study.STUDIES if (results / f"{name}.jsonl").exists()
    )


def test_the_headline_block_is_replaced_and_a_readme_without_one_is_refused(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{study_report.HEADLINE_START}\nold table\n{study_report.HEADLINE_END}\n\n## next\n")
    study_report.write_headline(readme, ["| a | b |", "|---|---|"])
    assert readme.read_text() == (
        f"# title\n\n{study_report.HEADLINE_START}\n\n| a | b |\n|---|---|\n\n{study_report.HEADLINE_END}\n\n## next\n"
    )
    readme.write_text("# title\n")
    with pytest.raises(ValueError, match="no headline block"):
        study_report.write_headline(readme, ["| a |"])


def test_a_finished_run_is_replanned_with_a_larger_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = {k: v for k, v in TINY.items() if k != "n_timesteps"}
    entry = Entry(
        "p", "poplin_p", "POPLIN-P", 2 * EPISODE, dict(settings, policy_epochs=2), env_kwargs={"max_episode_steps": EPISODE}
    )
    tiny = Study(envs=(ENV_ID,), title="Tiny zoo study", eval_freq=2 * EPISODE, eval_episodes=1, seeds=(0,), entries=(entry,))
    tiny = dataclasses.replace(tiny, report_sections=(definitions.replanned,))
    monkeypatch.setattr(study, "STUDIES", {"tiny": tiny})
    wider = dict(population_size=48, n_elites=6, cem_iterations=3, horizon=6)
    monkeypatch.setattr(study, "REPLAN_BUDGETS", {"wider": wider})
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    folder, results, output = tmp_path / "logs", tmp_path / "results", tmp_path / "results.md"
    with pytest.raises(SystemExit):  # nothing to replan before the run has finished
        study.main(["replan", "tiny", "--entry", "p", "--seed", "0", "--budget", "wider", "--folder", str(folder)])
    study.main(["tiny", "--folder", str(folder), "--results", str(results), "--output", str(output)])

    study.main(["replan", "tiny", "--entry", "p", "--seed", "0", "--budget", "wider", "--folder", str(folder)])
    run_folder = folder / "tiny" / "p" / "poplin_p" / f"{ENV_ID}_1"
    (replan,) = [json.loads(line) for line in (run_folder / study_runs.REPLANS).read_text().splitlines()]
    assert replan["budget"] == "wider" and replan["settings"] == wider and replan["timesteps"] == 2 * EPISODE
    # One episode of EPISODE steps with the wider search: Pendulum pays between -16.3 and 0 per step.
    assert len(replan["returns"]) == 1 and -16.3 * EPISODE <= replan["mean"] <= 0 and replan["plan_ms"] > 0
    study.main(["--report-only", "tiny", "--folder", str(folder), "--results", str(results), "--output", str(output)])
    (record,) = [json.loads(line) for line in (results / "tiny.jsonl").read_text().splitlines()]
    (kept,) = record["replans"]  # rounded to 6 significant digits, as every record
    assert kept["budget"] == "wider" and kept["mean"] == pytest.approx(replan["mean"], rel=1e-5)
    page = output.read_text()
    assert "**A larger budget on the same model.**" in page
    assert (
        f"| POPLIN-P | 0 | {2 * EPISODE / 1000:g}k | {eval_at(record, 2 * EPISODE):.0f} | wider (864) | {replan['mean']:.0f} |"
        in page
    )


def test_steps_to_reach_interpolates_the_mean_curve_over_the_seeds_every_seed_has() -> None:
    records = [
        {"entry": "a", "seed": 0, "finished": False, "evals": [[5000, 0.0], [10000, 100.0], [15000, 300.0]]},
        {"entry": "a", "seed": 1, "finished": False, "evals": [[5000, 100.0], [10000, 300.0]]},
        {"entry": "a", "seed": 2, "finished": False, "evals": []},
    ]
    # Mean curve at the common steps: 50 at 5k, 200 at 10k (15k has one seed only).
    assert study_report.steps_to_reach(records, "a", 50.0) == 5000.0
    assert study_report.steps_to_reach(records, "a", 125.0) == 7500.0
    assert study_report.steps_to_reach(records, "a", 201.0) is None
    assert study_report.steps_to_reach(records, "b", 0.0) is None
    # Once a run has finished, the curve is its finished runs': one still going does not cut it short.
    records[0]["finished"] = True
    assert study_report.steps_to_reach(records, "a", 250.0) == 13750.0  # seed 0 alone: 100 at 10k, 300 at 15k


def test_a_cell_gives_the_mean_and_spread_of_several_seeds_and_one_seed_alone() -> None:
    assert study_report.fmt([], 3) == "-"
    assert study_report.fmt([100.0, 200.0, 300.0], 3) == "200 ± 82"
    assert study_report.fmt([100.0, 300.0], 3) == "200 ± 100 (2 of 3 seeds)"
    # one seed has no spread: no "± 0" that reads as a measured one
    assert study_report.fmt([1062.4], 3) == "1062 (1 of 3 seeds)"
    assert study_report.fmt([1062.4], 1) == "1062"


def test_a_run_finished_before_its_entry_was_made_longer_keeps_its_length_and_is_timed_apart(tmp_path: Path) -> None:
    entry = Entry("pets", "pets", "PETS", 30_000, {}, base="cpu")
    run = study_runs.Run("pets", "HalfCheetah-v5", 0, entry.n_timesteps)
    write_progress(run.folder(tmp_path), 10_000, 1.0, 0)
    record = study_runs.read_run(run, tmp_path)
    assert record is not None and record["finished"] and record["n_timesteps"] == 10_000
    assert [t for t, _ in record["evals"]] == [2500, 5000, 7500, 10_000]
    longer = dict(record, n_timesteps=30_000, wall_s=1800.0)
    assert study_report.wall_cell(30_000, [record]) == "1.7 min (to 10k)"
    assert study_report.wall_cell(30_000, [record, longer, dict(longer, wall_s=2400.0)]) == "35 min, 1.7 min (to 10k)"
    assert study_report.wall_cell(30_000, [dict(record, finished=False)]) == "not finished"
    assert study_report.wall_cell(30_000, []) == "-"


def test_targets_say_whether_they_are_met_with_the_means_they_compared() -> None:
    records = [
        dict(entry="poplin_p", seed=0, evals=[(10_000, 1000.0), (30_000, 1500.0)]),
        dict(entry="poplin_p", seed=1, evals=[(10_000, 1200.0)]),  # still running: counts where it has got to
        dict(entry="pets", seed=0, evals=[(30_000, 1200.0)]),
    ]
    assert study_report.at_least("poplin_p", 10_000, 1000)(records) == (True, "1100")
    assert study_report.at_least("poplin_p", 30_000, 3000)(records) == (False, "1500")
    assert study_report.at_least("poplin_p", 50_000, 3000)(records) is None
    assert study_report.beats("poplin_p", 30_000, "pets", 30_000)(records) == (True, "1500 against 1200")
    assert study_report.beats("poplin_p", 30_000, "pets", 30_000, 1.3)(records) == (False, "1500 against 1.3 x 1200")
    assert study_report.beats("poplin_p", 30_000, "sac", 90_000)(records) is None


def test_the_headline_says_the_study_is_incomplete_only_while_a_cell_has_fewer_seeds() -> None:
    tiny = dataclasses.replace(definitions.PETS_CHEETAH_STUDY, seeds=(0, 1))
    paper = {"pets": "4,205 ± 789"}
    full = [dict(entry="pets", env=tiny.envs[0], seed=s, evals=[(10_000, 100.0 + s), (30_000, 1500.0)]) for s in (0, 1)]
    caption = " ".join(study_report.headline_table(tiny, full, ["pets"], (10_000, 30_000), paper, "results.md"))
    assert "| PETS | 100 ± 0 | 1500 ± 0 | 4,205 ± 789 |" in caption and "not complete" not in caption
    lines = study_report.headline_table(tiny, full[:1], ["pets"], (10_000, 30_000), paper, "results.md")
    assert "| PETS | 100 (1 of 2 seeds) | 1500 (1 of 2 seeds) | 4,205 ± 789 |" in lines
    assert "the study is not complete" in " ".join(lines)


def _cheetah_record(entry: str, seed: int, episodes: list[tuple[int, float]], exploitation=None) -> dict:
    record = dict(entry=entry, algo="poplin_p", env=definitions.PETS_CHEETAH, seed=seed, evals=[], episodes=episodes)
    record["finished"] = True
    return {**record, **({"exploitation": exploitation} if exploitation is not None else {})}


def test_the_authors_kind_of_curve_leaves_the_random_trial_out_and_shows_their_figure() -> None:
    records = [
        _cheetah_record("poplin_p-avg", 0, [(1000, -345.0), (2000, -500.0), (11_000, 800.0), (21_000, 2000.0)]),
        _cheetah_record("poplin_p-avg", 1, [(1000, -300.0), (2000, -300.0), (11_000, 1000.0)]),
    ]
    lines = definitions.authors_curve(definitions.PETS_CHEETAH_STUDY, records)
    table = {line.split(" | ")[0]: line.split(" | ")[1:] for line in lines if line.startswith("| ")}
    # their 1k is our trial ending at 2k (the first planned one), their 10k ours at 11k; 20k has one seed of two
    ours = table["| POPLIN-P Sep-AVG"]
    assert ours[0] == "-400 ± 100" and ours[2] == "900 ± 100" and ours[3] == "2000 (1 of 2 seeds)" and ours[4] == "-"
    authors = table["| *POPLIN-P Sep-AVG, authors*"]
    assert authors[2] == "*850*" and authors[3] == "*3,000*" and authors[4] == "*4,000*"
    assert definitions.authors_curve(definitions.PETS_CHEETAH_STUDY, []) == []


def test_the_exploitation_table_pairs_predicted_and_realized_returns_per_trial() -> None:
    records = [
        _cheetah_record("pets", 0, [], exploitation=[(2000, 10.0, -4.0), (3000, 20.0, 2.0)]),
        _cheetah_record("pets", 1, [], exploitation=[(2000, 30.0, -6.0)]),
        _cheetah_record("poplin_p-avg", 0, []),  # recorded before the exploitation was: not a row
    ]
    lines = definitions.exploitation(definitions.PETS_CHEETAH_STUDY, records)
    rows = [line for line in lines if line.startswith("| PETS")]
    assert rows == ["| PETS | 2 | 20 / -5 | 20 / 2 | - | - | - | - |"]
    assert not any(line.startswith("| POPLIN-P") for line in lines)
    assert definitions.exploitation(definitions.PETS_CHEETAH_STUDY, records[2:]) == []


def test_the_figure_4_target_compares_the_gains_from_population_100_to_500() -> None:
    def run(entry: str, value: float) -> dict:
        return dict(entry=entry, seed=0, evals=[(10_000, value)])

    check = definitions._gains_more()
    records = [run("poplin_p-pop100", 100.0), run("poplin_p-paper", 900.0), run("pets-pop100", 500.0)]
    assert check(records) is None  # PETS at population 500 not measured yet
    assert check([*records, run("pets-paper", 700.0)]) == (True, "POPLIN-P +800, PETS +200")
    assert check([*records, run("pets-paper", 1400.0)]) == (False, "POPLIN-P +800, PETS +900")


def _prose_study() -> Study:
    entries = (Entry("a", "pets", "A", 20_000, {}), Entry("b", "pets", "B", 20_000, {}))
    return Study(envs=("HalfCheetah-v5", "Hopper-v5"), title="Prose", entries=entries)


def _prose_records() -> dict[str, list[dict]]:
    """Three seeds of ``a`` (one still short of 20k) and two of ``b`` on HalfCheetah-v5, one run of ``a`` on Hopper-v5,
    and one run of another study."""

    def run(entry: str, seed: int, evals: list, env: str = "HalfCheetah-v5", **more) -> dict:
        return dict(entry=entry, env=env, seed=seed, evals=evals, finished=True, wall_s=600.0 * (seed + 1), **more)

    records = [
        run("a", 0, [(10_000, 100.0), (20_000, 400.0)], episodes=[(1000, -1200.0), (2000, 50.0)], fit_s=30.0),
        run("a", 1, [(10_000, 200.0), (20_000, 600.0)], episodes=[(1000, -300.0), (2000, -20.0)], fit_s=120.0),
        run("a", 2, [(10_000, 300.0)], episodes=[(1000, -500.0)], policy_evals=[(10_000, -7.25)]),
        run("b", 0, [(10_000, 100.0)], policy_evals=[(10_000, 1000.0)]),
        run("b", 1, [(10_000, 300.0)], policy_evals=[(10_000, 3000.0)]),
        run("a", 0, [(10_000, 5.0)], env="Hopper-v5"),
    ]
    return {"prose": records, "other": [run("x", 0, [(5_000, 42.0)])]}


def _render(text: str) -> str:
    other = Study(envs=("HalfCheetah-v5",), title="Other", entries=(Entry("x", "pets", "X", 5_000, {}),))
    studies = {"prose": _prose_study(), "other": other}
    return study_report.render_prose(text, "prose", studies, _prose_records())


@pytest.mark.parametrize(
    ("template", "figure"),
    [
        # as a table's cell: mean ± std (ddof 0) over the seeds that got there, the value alone for one seed
        ("{eval:a@10000 on HalfCheetah-v5}", "200 ± 82"),
        ("{eval.1:a@10000 on HalfCheetah-v5}", "200.0 ± 81.6"),
        ("{eval:a@20000 on HalfCheetah-v5}", "500 ± 100"),
        ("{eval:a@10000 on Hopper-v5}", "5"),
        ("{eval:b@10000}", "200 ± 100"),  # b runs on one env only: no env to name
        ("{eval:a@10000 on HalfCheetah-v5 seed 1}", "200"),
        ("{eval-mean:b@10000}", "200"),
        ("{eval-values:a@10000 on HalfCheetah-v5}", "100, 200 and 300"),
        ("{eval-seeds:a@20000 on HalfCheetah-v5}", "2"),
        ("{eval-values:a+b@10000 on HalfCheetah-v5}", "100, 200, 300, 100 and 300"),
        ("{policy:b@10000}", "2000 ± 1000"),
        ("{policy-values.2:a@10000 on HalfCheetah-v5}", "-7.25"),
        ("{policy-means:a+b@10000 on HalfCheetah-v5}", "-7 to 2,000"),
        # training episodes: a run's values and a range's ends with a thousands separator
        ("{train:a@2000 on HalfCheetah-v5}", "15 ± 35"),
        ("{train-range:a@1000..2000 on HalfCheetah-v5}", "-1,200 to 50"),
        ("{train-highest:a@1000..2000 on HalfCheetah-v5}", "50, -20 and -500"),
        ("{train-lowest:a@1000..2000 on HalfCheetah-v5 seed 0}", "-1,200"),
        # each run's mean over the window (-575, -160 and -500), then mean ± std over the runs as a cell
        ("{train-window:a@1000..2000 on HalfCheetah-v5}", "-412 ± 181"),
        ("{ratio:a@20000 on HalfCheetah-v5 vs b@10000}", "2.50"),
        # 300 apart: 3 pooled standard deviations of the cells (ddof 0: 100 each); Welch's t with ddof 1 (141 for the gap)
        ("{effect:a@20000 on HalfCheetah-v5 vs b@10000}", "3.0"),
        ("{welch:a@20000 on HalfCheetah-v5 vs b@10000}", "2.1"),
        # seed 0 reaches b's mean, 200, a third of the way from its 100 at 10k to its 400 at 20k
        ("{reach:a on HalfCheetah-v5 seed 0 vs b@10000}", "13.3k"),
        ("{reach-ratio.2:a on HalfCheetah-v5 seed 0 vs b@10000}", "1.33"),
        ("{fit:a on HalfCheetah-v5}", "8%"),  # 30 of 600 s and 120 of 1,200 s; seed 2 did not record it
        ("{fit-range:a on HalfCheetah-v5}", "5-10%"),
        ("{wall-range:a on HalfCheetah-v5}", "10-30 min"),
        ("{eval:other/x@5000}", "42"),
        ("{unrecorded:1,746 ± 839}", "1,746 ± 839"),
    ],
)
def test_a_template_of_the_prose_is_its_figure_computed_from_the_records(template: str, figure: str) -> None:
    assert _render(f"at 10k: {template}.") == f"at 10k: {figure}."


@pytest.mark.parametrize(
    ("template", "error"),
    [
        ("{eval:nope@10000}", "no entry 'nope' in prose"),
        ("{eval:a@12345 on HalfCheetah-v5}", "no run has evals at step 12345"),
        ("{eval:a@10000 on HalfCheetah-v5 seed 7}", "no runs recorded"),
        ("{eval:a@10000}", "name one with ' on <env>'"),
        ("{eval:a@5000..10000 on HalfCheetah-v5}", "give one step"),
        ("{evl:a@10000}", "unknown kind 'evl'"),
        ("{eval:nowhere/a@10000}", "no study 'nowhere'"),
        ("{eval:a at 10k}", "a reference reads"),
        ("{ratio:b@10000}", "ratio compares two references"),
    ],
)
def test_a_template_that_names_no_figure_of_the_records_is_refused_by_name(template: str, error: str) -> None:
    named = re.escape(f"{template} in the prose of prose: ") + ".*" + re.escape(error)
    with pytest.raises(study_report.TemplateError, match=named):
        _render(f"text {template} text")


def test_no_note_types_a_figure_with_a_spread_outside_a_template() -> None:
    # Every "mean ± std" of a study's prose comes from the records (or is marked {unrecorded:...}): none is hand-typed.
    for name, definition in definitions.STUDIES.items():
        for prose in (definition.intro, definition.notes):
            typed = study_report.TEMPLATE.sub("", prose)
            assert "±" not in typed, f"{name}: a hand-typed figure: " + typed[max(0, typed.find("±") - 40) :][:80]


def test_the_study_modules_import_one_another_without_a_cycle() -> None:
    # Every import counts, those under TYPE_CHECKING or inside a function included.
    modules = {path.stem: path for path in (REPO_ROOT / "benchmarks").glob("study*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module is not None:
                imported.add(node.module)
                imported |= {f"{node.module}.{alias.name}" for alias in node.names}  # from benchmarks import study_x
        graph[name] = {other for other in modules if f"benchmarks.{other}" in imported and other != name}
    assert graph["study_types"] == set() and graph["study_runs"] == set()
    assert graph["study_report"] == {"study_types", "study_runs"}, "the generic page knows no study"

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, "import cycle: " + " -> ".join((*path, name))
        for other in graph[name]:
            visit(other, (*path, name))

    for name in graph:
        visit(name, ())


@pytest.mark.skipif(study_runs.fcntl is None, reason="runs are locked with fcntl (not on Windows)")
def test_a_run_another_study_process_is_running_is_skipped_and_runs_once_free(tmp_path: Path, capsys) -> None:
    run = study_runs.Run("pets", "Pendulum-v1", 0, 1000)
    folder = tmp_path / "run"
    command = [sys.executable, "-c", "import pathlib; pathlib.Path('ran').write_text('yes')"]
    held = study_runs.lock_run(folder)
    assert held is not None and (folder / study_runs.RUN_LOCK).read_text().strip() == str(os.getpid())
    # Another study process (this one's lock is taken through another open file, as a second process would) skips it.
    assert study_runs.lock_run(folder) is None
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        study_runs.schedule([(run, command, folder)], jobs=1)
        assert not (tmp_path / "ran").exists()
        assert f"skip {run.name}: a study process (pid {os.getpid()}) is running it" in capsys.readouterr().out
        held.close()  # the other process ended: the lock is free
        study_runs.schedule([(run, command, folder)], jobs=1)
    finally:
        os.chdir(cwd)
    assert (tmp_path / "ran").read_text() == "yes" and f"done {run.name}" in capsys.readouterr().out
    assert study_runs.lock_run(folder) is not None, "released when the run ended"
