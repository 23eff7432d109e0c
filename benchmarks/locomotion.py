"""
The locomotion study: POPLIN-P, POPLIN-A and PETS against SAC and TD3 on MuJoCo, resumable, one rl-zoo3 run per process.

Every run is one rl-zoo3 train run in the zoo's own log layout (``<folder>/<algo>/<env>_<seed + 1>/``: monitor CSV,
``evaluations.npz``, the saved model), so ``sb3-poplin-zoo all_plots``, ``plot_train`` and every zoo tool read the study.
On top of a plain zoo run, a run

* appends every finished episode and every evaluation to ``progress.jsonl`` in its folder as it happens;
* checkpoints the model and its replay buffer at the first episode end after every ``--checkpoint-freq`` steps (written
  to a temporary folder, then renamed: a kill never leaves a half-written newest checkpoint), before an evaluation due
  at the same step;
* when started again after a kill or a stop, continues from its newest checkpoint: the monitor CSV, ``progress.jsonl``
  and ``evaluations.npz`` are cut back to the checkpoint's step, so no episode is counted twice, and an evaluation due
  at that step that the kill prevented is made first; a finished run (its folder holds ``finished.json``) is never
  rerun.

The model-based algorithms use sb3-poplin's CPU entries (``sb3_poplin/hyperparams/cpu/<algo>.yml``); SAC and TD3 use
rl-zoo3's tuned MuJoCo hyperparameters (its ``-v4`` entries: the v5 envs have the same dynamics) with
``learning_starts`` equal to POPLIN's, everything else the zoo's. Usage, from the repository root::

    python -m benchmarks.locomotion                      # the whole study, 2 runs at a time; writes docs/locomotion.md
    python -m benchmarks.locomotion --jobs 1 --algos poplin_p sac --envs HalfCheetah-v5
    python -m benchmarks.locomotion --print-commands     # one command line per run, for a job array, Ray or submitit
    python -m benchmarks.locomotion --report-only        # rewrite the page from what the runs have written

A run's command line (what ``--print-commands`` prints) is self-contained: run the lines on other machines that share
the study folder (or copy the run folders back), then ``--report-only`` here.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

COMMAND = "python -m benchmarks.locomotion"
MODEL_BASED = ("poplin_p", "poplin_a", "pets")
MODEL_FREE = ("sac", "td3")
ALGOS = (*MODEL_BASED, *MODEL_FREE)
ENVS = ("HalfCheetah-v5", "Hopper-v5")
#: names in the report
LABELS = {"poplin_p": "POPLIN-P", "poplin_a": "POPLIN-A", "pets": "PETS", "sac": "SAC", "td3": "TD3"}
#: the warm-up of every algorithm: POPLIN's one random episode (SAC and TD3 get the same)
LEARNING_STARTS = 1000
#: planning variants of the CPU entries run by ``python -m benchmarks.locomotion_budgets`` (budget name -> label): their
#: records (``--variant-results``) are shown beside the study's algorithms
VARIANTS = {
    "poplin_p-cpu-pessimism": "POPLIN-P, pessimism 1 (TSinf)",
    "poplin_p-cpu-pessimism-sigma0.1": "POPLIN-P, pessimism 1, sigma 0.1",
    "poplin_p-cpu-exact-reward": "POPLIN-P, exact reward (x observed)",
    "poplin_p-cpu-window2k": "POPLIN-P, distilled on the last 2k steps",
    "poplin_p-cpu-noise-table": "POPLIN-P, CEM noise table",
    "poplin_p-cpu-sigma0.1": "POPLIN-P, sigma 0.1",
    "poplin_p-cpu-best3": "POPLIN-P, distilled on its 3 best episodes",
    "poplin_p-cpu-hopper-train1000": "POPLIN-P, model trained every 1k steps",
    "poplin_p-cpu-hopper-train1000-sigma0.1": "POPLIN-P, model trained every 1k steps, sigma 0.1",
}
CHECKPOINT_PREFIX = "ckpt_"


@dataclass(frozen=True)
class Run:
    """One (algorithm, env, seed) training run of the study.

    :param algo: zoo name of the algorithm
    :param env: gymnasium id
    :param seed: seed
    :param n_timesteps: real steps
    """

    algo: str
    env: str
    seed: int
    n_timesteps: int

    @property
    def name(self) -> str:
        return f"{self.algo}/{self.env}/seed{self.seed}"

    def folder(self, study: Path) -> Path:
        """The rl-zoo3 run folder (fixed per seed, so a restarted run finds its checkpoints; rl-zoo3 writes a slash of
        the env id as a dash)."""
        return study / self.algo / f"{self.env.replace('/', '-')}_{self.seed + 1}"


# ----------------------------------------------------------------------------------------------------------------------
# One run: rl-zoo3's train with checkpoints, resume and a progress log
# ----------------------------------------------------------------------------------------------------------------------
def latest_checkpoint(run_folder: Path) -> Path | None:
    """The newest complete checkpoint folder of a run (complete folders are only ever created by a rename)."""
    folder = run_folder / "resume"
    if not folder.is_dir():
        return None
    done = [p for p in folder.iterdir() if p.name.startswith(CHECKPOINT_PREFIX) and (p / "state.json").is_file()]
    return max(done, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX) :]), default=None)


def cut_back(run_folder: Path, state: dict[str, Any]) -> None:
    """Forget what a killed run wrote after its checkpoint: episodes, evaluations and monitor rows past its step."""
    timesteps = state["timesteps"]
    progress = run_folder / "progress.jsonl"
    if progress.exists():
        kept = [line for line in progress.read_text().splitlines() if line and json.loads(line)["timesteps"] <= timesteps]
        progress.write_text("".join(f"{line}\n" for line in kept))
    for monitor in run_folder.glob("*.monitor.csv"):
        lines = monitor.read_text().splitlines()
        # Two header lines (the JSON metadata and the column names), then one row per finished episode.
        monitor.write_text("".join(f"{line}\n" for line in lines[: 2 + state["episodes"]]))
    evaluations = run_folder / "evaluations.npz"
    if evaluations.exists():
        with np.load(evaluations) as data:
            keep = data["timesteps"] <= timesteps
            arrays = {key: data[key][keep] for key in data.files}
        np.savez(evaluations, **arrays)


def _zoo_run(argv: list[str], checkpoint_freq: int, stop_after_episodes: int | None) -> None:
    """rl-zoo3's ``train()`` on ``argv`` with :class:`ResumableExperimentManager` (defined here: it imports rl-zoo3)."""
    import rl_zoo3.train
    from stable_baselines3.common.callbacks import BaseCallback, EvalCallback

    from sb3_poplin.zoo.exp_manager import PoplinExperimentManager
    from sb3_poplin.zoo.registry import register

    register()

    class StudyProgress(BaseCallback):
        """Appends episodes and evaluations to ``progress.jsonl`` and checkpoints at episode ends."""

        def __init__(self, manager: ResumableExperimentManager) -> None:
            super().__init__()
            self.manager = manager
            self.folder = Path(manager.save_path)
            state = manager.resume_state or {}
            self.episodes = state.get("episodes", 0)
            self.wall_offset = state.get("wall_s", 0.0)
            self.last_checkpoint = state.get("timesteps", 0)
            self.eval_callback = next((c for c in manager.callbacks if isinstance(c, EvalCallback)), None)
            # Evaluations already in progress.jsonl (after the cut-back); one that a kill caught between the callback's
            # evaluations.npz and this log is written on the first step of the resumed run.
            progress = self.folder / "progress.jsonl"
            lines = progress.read_text().splitlines() if progress.exists() else []
            self.evals_seen = sum(json.loads(line)["kind"] == "eval" for line in lines if line)

        def _on_training_start(self) -> None:
            self.start = time.perf_counter()
            evaluation, timesteps = self.eval_callback, self.num_timesteps
            if evaluation is None or timesteps == 0 or timesteps in evaluation.evaluations_timesteps:
                return
            if evaluation.eval_freq > 0 and (timesteps // evaluation.training_env.num_envs) % evaluation.eval_freq == 0:
                # Resumed from a checkpoint taken at the end of an episode where an evaluation was due but not made
                # (this callback checkpoints before EvalCallback evaluates at the same step): make it now, on the
                # checkpoint's model, as the uninterrupted run did.
                evaluation.n_calls -= 1  # on_step() counts the call back, to the step where the evaluation is due
                evaluation.on_step()
                self.record_evaluations()

        def _on_training_end(self) -> None:
            self.record_evaluations()  # one made at the last step

        def record_evaluations(self) -> None:
            """Append the evaluations EvalCallback made since the last call to ``progress.jsonl``."""
            if self.eval_callback is None:
                return
            made = self.eval_callback.evaluations_timesteps
            for index in range(self.evals_seen, len(made)):
                returns = [float(r) for r in self.eval_callback.evaluations_results[index]]
                self.write(
                    dict(
                        kind="eval",
                        timesteps=int(made[index]),
                        mean=float(np.mean(returns)),
                        std=float(np.std(returns)),
                        returns=returns,
                        wall_s=self.wall_s(),
                    )
                )
            self.evals_seen = len(made)

        def wall_s(self) -> float:
            return self.wall_offset + time.perf_counter() - self.start

        def write(self, record: dict[str, Any]) -> None:
            with (self.folder / "progress.jsonl").open("a") as f:
                f.write(json.dumps(record) + "\n")

        def plan_ms(self, length: int) -> float | None:
            """Median planning time of the latest ``length`` planned steps (model-based algorithms; None otherwise)."""
            times = getattr(self.model, "_plan_times", None)
            if not times:
                return None
            return 1000.0 * float(np.median(list(times)[-min(len(times), length) :]))

        def cem_iterations(self, length: int) -> float | None:
            """Mean CEM iterations of the latest ``length`` training steps (model-based algorithms; None otherwise)."""
            iterations = getattr(self.model, "_plan_iterations", None)
            if not iterations:
                return None
            return float(np.mean(list(iterations)[-min(len(iterations), length) :]))

        def _on_step(self) -> bool:
            self.record_evaluations()  # made by EvalCallback at the previous step (it runs after this callback)
            for info in self.locals.get("infos", []):
                if "episode" not in info:
                    continue
                self.episodes += 1
                self.write(
                    dict(
                        kind="episode",
                        timesteps=self.num_timesteps,
                        episode=self.episodes,
                        ret=float(info["episode"]["r"]),
                        length=int(info["episode"]["l"]),
                        plan_ms=self.plan_ms(int(info["episode"]["l"])),
                        cem_iterations=self.cem_iterations(int(info["episode"]["l"])),
                        wall_s=self.wall_s(),
                        # seconds spent so far fitting the model and distilling the policy (model-based runs)
                        fit_s=getattr(self.model, "dynamics_train_seconds", None),
                        distill_s=getattr(self.model, "distillation_seconds", None),
                    )
                )
                if self.num_timesteps - self.last_checkpoint >= checkpoint_freq:
                    self.checkpoint()
                if stop_after_episodes is not None and self.episodes >= stop_after_episodes:
                    os._exit(3)  # a test hook: dies like a killed process, with no cleanup
            return True

        def checkpoint(self) -> None:
            resume = self.folder / "resume"
            resume.mkdir(exist_ok=True)
            tmp = resume / f"tmp_{self.num_timesteps}"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            self.model.save(tmp / "model.zip")
            self.model.save_replay_buffer(tmp / "replay_buffer.pkl")  # type: ignore[attr-defined]
            state = dict(timesteps=self.num_timesteps, episodes=self.episodes, wall_s=self.wall_s())
            (tmp / "state.json").write_text(json.dumps(state))
            tmp.rename(resume / f"{CHECKPOINT_PREFIX}{self.num_timesteps}")
            for old in resume.iterdir():
                if old.name != f"{CHECKPOINT_PREFIX}{self.num_timesteps}":
                    shutil.rmtree(old, ignore_errors=True)
            self.last_checkpoint = self.num_timesteps

    class ResumableExperimentManager(PoplinExperimentManager):
        """rl-zoo3's experiment manager with one fixed folder per seed, checkpoints and resume (see the module doc)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.save_path = os.path.join(self.log_path, f"{self.env_name}_{self.seed + 1}")
            self.params_path = f"{self.save_path}/{self.env_name}"
            folder = Path(self.save_path)
            if (folder / "finished.json").exists():
                print(f"{self.save_path} is finished; nothing to do")
                sys.exit(0)
            checkpoint = latest_checkpoint(folder)
            self.resume_state: dict[str, Any] | None = None
            if checkpoint is not None:
                self.resume_state = json.loads((checkpoint / "state.json").read_text())
                cut_back(folder, self.resume_state)
                # rl-zoo3's own continue-training path: loads the model and the replay_buffer.pkl beside it.
                self.trained_agent = str(checkpoint / "model.zip")
                self.continue_training = True
                print(f"Resuming {self.save_path} from step {self.resume_state['timesteps']}")
            else:
                # A run killed before its first checkpoint starts over: clear what it wrote.
                for stale in ("progress.jsonl", "evaluations.npz", "0.monitor.csv"):
                    (folder / stale).unlink(missing_ok=True)

        def create_envs(self, n_envs: int, eval_env: bool = False, no_log: bool = False) -> Any:
            if self.resume_state is not None and not eval_env:
                self.monitor_kwargs = dict(self.monitor_kwargs, override_existing=False)  # append to the cut-back CSV
            env = super().create_envs(n_envs, eval_env=eval_env, no_log=no_log)
            if self.resume_state is not None:
                # Fresh episodes, not a replay of the first ones (the seed is also the env's reset seed).
                env.seed(self.seed + self.resume_state["timesteps"] + (10_000 if eval_env else 0))
            return env

        def create_callbacks(self) -> None:
            super().create_callbacks()
            if self.resume_state is None:
                return
            timesteps = self.resume_state["timesteps"]
            for callback in self.callbacks:
                if isinstance(callback, EvalCallback):
                    # Evaluate at the same steps as an uninterrupted run, and keep the evaluations made before.
                    callback.n_calls = timesteps // self.n_envs
                    path = Path(self.save_path) / "evaluations.npz"
                    if path.exists():
                        with np.load(path) as data:
                            callback.evaluations_timesteps = data["timesteps"].tolist()
                            callback.evaluations_results = data["results"].tolist()
                            callback.evaluations_length = data["ep_lengths"].tolist()
                        if callback.evaluations_results:
                            callback.best_mean_reward = max(float(np.mean(r)) for r in callback.evaluations_results)

        def learn(self, model: Any) -> None:
            if self.resume_state is not None:
                # Other random numbers than the run's first steps; the rest of the state came from the checkpoint.
                model.set_random_seed(self.seed + self.resume_state["timesteps"])
            progress = StudyProgress(self)
            # First: at the end of an episode where an evaluation is also due, the checkpoint is taken before the
            # evaluation (an hour for the paper-size PETS on one CPU core), so a kill during it loses no training.
            callbacks = [progress, *self.callbacks]
            done = model.num_timesteps if self.resume_state is not None else 0
            try:
                model.learn(
                    max(self.n_timesteps - done, 0),
                    callback=callbacks,
                    reset_num_timesteps=self.resume_state is None,
                    **({"log_interval": self.log_interval} if self.log_interval > -1 else {}),
                )
            finally:
                if model.env is not None:
                    model.env.close()
            self.wall_s = progress.wall_s()

        def save_trained_model(self, model: Any) -> None:
            super().save_trained_model(model)
            folder = Path(self.save_path)
            finished = dict(timesteps=int(model.num_timesteps), wall_s=getattr(self, "wall_s", None))
            (folder / "finished.json").write_text(json.dumps(finished))
            shutil.rmtree(folder / "resume", ignore_errors=True)

    rl_zoo3.train.ExperimentManager = ResumableExperimentManager  # type: ignore[misc]
    sys.argv = ["rl_zoo3.train", *argv]
    rl_zoo3.train.train()


def run_main(argv: Sequence[str]) -> None:
    """``python -m benchmarks.locomotion run [--checkpoint-freq N] -- <rl-zoo3 train flags>``"""
    parser = argparse.ArgumentParser(prog=f"{COMMAND} run", description="One resumable rl-zoo3 train run of the study.")
    parser.add_argument("--checkpoint-freq", type=int, default=2000, help="steps between checkpoints (at episode ends)")
    parser.add_argument("--stop-after-episodes", type=int, default=None, help=argparse.SUPPRESS)  # test hook
    args, zoo_argv = parser.parse_known_args(list(argv))
    if zoo_argv and zoo_argv[0] == "--":
        zoo_argv = zoo_argv[1:]
    _zoo_run(zoo_argv, args.checkpoint_freq, args.stop_after_episodes)


# ----------------------------------------------------------------------------------------------------------------------
# The study: runs, configuration files, scheduling
# ----------------------------------------------------------------------------------------------------------------------
def model_free_config(algo: str, envs: Sequence[str], n_timesteps: int, path: Path) -> Path:
    """rl-zoo3's tuned hyperparameters of SAC/TD3 for the envs (their ``-v4`` entries), with POPLIN's warm-up."""
    import yaml
    from rl_zoo3 import __file__ as zoo_file

    with open(Path(zoo_file).parent / "hyperparams" / f"{algo}.yml") as f:
        zoo = yaml.load(f, Loader=yaml.UnsafeLoader)  # rl-zoo3 reads its files the same way (anchors, !!float)
    # Entries of envs not asked for now stay: runs of another invocation (another env, a printed command line in a job
    # array) read the same file, at their start and at every resume.
    entries = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
    for env in envs:
        key = env if env in zoo else env.replace("-v5", "-v4")
        if key not in zoo:
            raise ValueError(f"rl-zoo3 has no {algo} hyperparameters for {env} (nor {key})")
        # The buffer holds every step of a run either way; sized to the run, its checkpoints stay small.
        entries[env] = dict(zoo[key], learning_starts=LEARNING_STARTS, buffer_size=n_timesteps)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w") as f:
        f.write(
            f"# Written by {COMMAND}: rl-zoo3's {algo} hyperparameters, learning_starts set to POPLIN's warm-up and\n"
            "# buffer_size to the run's length (the zoo's 1e6 also keeps every step of a run: same algorithm).\n"
        )
        yaml.safe_dump(dict(sorted(entries.items())), f, sort_keys=False)
    partial.replace(path)  # a run starting meanwhile reads the old file or the new one, never half of one
    return path


def model_based_config(algo: str) -> Path:
    """sb3-poplin's CPU hyperparameter file of a model-based algorithm."""
    from sb3_poplin.zoo.registry import hyperparams_file

    path = hyperparams_file(algo, "cpu")
    try:  # relative to the working directory when it is inside it: command lines that name no machine's paths
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def run_command(
    run: Run, study: Path, conf: Path, args: argparse.Namespace, env_kwargs: dict[str, Any] | None = None
) -> list[str]:
    """The command line of one run (what a job array would execute).

    :param env_kwargs: keyword arguments of the env (rl-zoo3's ``--env-kwargs``), for training and evaluation alike
    """
    return [
        sys.executable,
        "-m",
        "benchmarks.locomotion",
        "run",
        "--checkpoint-freq",
        str(args.checkpoint_freq),
        "--",
        "--algo",
        run.algo,
        "--env",
        run.env,
        "--seed",
        str(run.seed),
        "-f",
        str(study),
        "--conf-file",
        str(conf),
        "-n",
        str(run.n_timesteps),
        "--eval-freq",
        str(args.mb_eval_freq if run.algo in MODEL_BASED else args.eval_freq),
        "--eval-episodes",
        str(args.eval_episodes),
        "--num-threads",
        "1",
        "--device",
        args.device,
        "--verbose",
        "0",
        *(["--env-kwargs", *(f"{key}:{value!r}" for key, value in env_kwargs.items())] if env_kwargs else []),
    ]


def schedule(commands: list[tuple[Run, list[str], Path]], jobs: int) -> None:
    """Run the commands, ``jobs`` at a time, each with its output in its run folder (the third item)."""
    pending = list(commands)
    running: list[tuple[Run, subprocess.Popen, Any]] = []
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    while pending or running:
        while pending and len(running) < jobs:
            run, command, folder = pending.pop(0)
            folder.mkdir(parents=True, exist_ok=True)
            log = (folder / "stdout.log").open("a")
            print(f"[{time.strftime('%H:%M:%S')}] start {run.name}", flush=True)
            running.append((run, subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env), log))
        time.sleep(2)
        for item in list(running):
            run, process, log = item
            if process.poll() is not None:
                log.close()
                running.remove(item)
                status = "done" if process.returncode == 0 else f"FAILED (exit {process.returncode}, see stdout.log)"
                print(f"[{time.strftime('%H:%M:%S')}] {status} {run.name}", flush=True)


# ----------------------------------------------------------------------------------------------------------------------
# The report
# ----------------------------------------------------------------------------------------------------------------------
def read_run(run: Run, study: Path) -> dict[str, Any] | None:
    """What one run has written so far (None if it never started)."""
    folder = run.folder(study)
    progress = folder / "progress.jsonl"
    if not progress.exists():
        return None
    records = [json.loads(line) for line in progress.read_text().splitlines() if line]
    episodes = [r for r in records if r["kind"] == "episode"]
    evals = [r for r in records if r["kind"] == "eval"]
    finished = folder / "finished.json"
    plan = [r["plan_ms"] for r in episodes if r.get("plan_ms") is not None]
    iterations = [r["cem_iterations"] for r in episodes if r.get("cem_iterations") is not None]
    return dict(
        algo=run.algo,
        env=run.env,
        seed=run.seed,
        n_timesteps=run.n_timesteps,
        finished=finished.exists(),
        timesteps=max((r["timesteps"] for r in records), default=0),
        wall_s=max((r["wall_s"] for r in records), default=0.0),
        plan_ms=float(np.median(plan)) if plan else None,
        cem_iterations=float(np.mean(iterations)) if iterations else None,
        evals=[(r["timesteps"], r["mean"]) for r in evals],
        episodes=[(r["timesteps"], r["ret"]) for r in episodes],
        # cumulative seconds of model fitting and of distillation at the last episode (runs recorded since they were added)
        fit_s=episodes[-1].get("fit_s") if episodes else None,
        distill_s=episodes[-1].get("distill_s") if episodes else None,
    )


def merge_results(
    results_file: Path, fresh: list[dict[str, Any]], key: tuple[str, ...] = ("algo", "env", "seed")
) -> list[dict[str, Any]]:
    """The committed results, updated with what the run folders hold now (a run folder lost with a machine keeps its last
    committed record).

    :param results_file: JSON lines, one record per run
    :param fresh: records read from the run folders now
    :param key: the fields that name a run
    """
    by_key: dict[tuple, dict[str, Any]] = {}
    if results_file.exists():
        for line in results_file.read_text().splitlines():
            if line:
                record = json.loads(line)
                by_key[tuple(record.get(k) for k in key)] = record
    for record in fresh:
        name = tuple(record.get(k) for k in key)
        old = by_key.get(name)
        if old is None or record["timesteps"] >= old["timesteps"]:
            by_key[name] = record
    merged = sorted(
        by_key.values(),
        key=lambda r: (str(r.get("budget", "")), r["env"], ALGOS.index(r["algo"]) if r["algo"] in ALGOS else 99, r["seed"]),
    )
    results_file.parent.mkdir(parents=True, exist_ok=True)
    results_file.write_text("".join(json.dumps(r) + "\n" for r in merged))
    return merged


def eval_at(record: dict[str, Any], step: int) -> float | None:
    """The evaluation return of a run at ``step`` (None if it has not got there)."""
    for timesteps, mean in record["evals"]:
        if timesteps == step:
            return float(mean)
    return None


def fmt(values: list[float], n_seeds: int) -> str:
    if not values:
        return "-"
    text = f"{np.mean(values):.0f} ± {np.std(values):.0f}"
    return text if len(values) == n_seeds else f"{text} ({len(values)} of {n_seeds} seeds)"


def groups(env: str, records: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The rows of an env's table and the curves of its plot: (label, runs) per algorithm, then per variant."""
    study = [r for r in records if r["env"] == env and "budget" not in r]
    variants = [r for r in records if r["env"] == env and r.get("budget") in VARIANTS]
    rows = [(LABELS.get(algo, algo), [r for r in study if r["algo"] == algo]) for algo in ALGOS]
    rows += [(label, [r for r in variants if r["budget"] == budget]) for budget, label in VARIANTS.items()]
    return [(label, runs) for label, runs in rows if runs]


def plot_env(env: str, records: list[dict[str, Any]], path: Path) -> None:
    """One learning curve per algorithm (evaluation return against steps, mean and min-max band over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, group in groups(env, records):
        runs = [r for r in group if r["evals"]]
        if not runs:
            continue
        steps = sorted({t for r in runs for t, _ in r["evals"]})
        means, lows, highs, xs = [], [], [], []
        for step in steps:
            values = [v for r in runs if (v := eval_at(r, step)) is not None]
            if len(values) < len(runs):
                continue  # plot only steps every seed has reached
            xs.append(step)
            means.append(np.mean(values))
            lows.append(np.min(values))
            highs.append(np.max(values))
        if not xs:
            continue
        (line,) = ax.plot(xs, means, marker="o", markersize=3, label=f"{label} ({len(runs)} seeds)")
        ax.fill_between(xs, lows, highs, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("evaluation return")
    ax.set_title(f"{env}: mean over seeds, band from min to max")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(records: list[dict[str, Any]], args: argparse.Namespace, output: Path) -> None:
    n_seeds = len(args.seeds)
    envs = [e for e in ENVS if any(r["env"] == e for r in records)] + sorted({r["env"] for r in records} - set(ENVS))
    steps = sorted({args.mb_steps // 2, args.mb_steps, args.mf_steps})
    lines = [
        "# Locomotion: POPLIN against PETS, SAC and TD3",
        "",
        f"Written by `{COMMAND}` (command below) from the runs' records in `docs/locomotion_runs.jsonl`. Each run is an "
        "rl-zoo3 train run; evaluation returns are the mean of the evaluation episodes of `EvalCallback` "
        f"({args.eval_episodes} episodes every {args.eval_freq} steps for SAC and TD3, every {args.mb_eval_freq} for the "
        "model-based runs, whose evaluation episodes plan every step and cost as much as training episodes; "
        "deterministic); cells give the mean ± std over "
        "seeds. Model-based runs use sb3-poplin's CPU entries (`sb3_poplin/hyperparams/cpu/`), SAC and TD3 rl-zoo3's tuned "
        f"MuJoCo hyperparameters with `learning_starts={LEARNING_STARTS}` (POPLIN's one random episode). The planner's "
        "reward is the env's own reward function, computed from the default v5 observation (the velocity approximation: "
        "see docs/rewards.md); nothing is shaped.",
        "",
    ]
    for env in envs:
        env_records = [r for r in records if r["env"] == env and "budget" not in r]
        lines += [f"## {env}", "", f"![{env} learning curves](locomotion_{env}.png)", ""]
        header = (
            "| algorithm | "
            + " | ".join(f"return at {s // 1000}k" for s in steps)
            + " | wall time per run | plan ms/step | model fitting / distillation, share of wall time |"
        )
        lines += [header, "|---" * (len(steps) + 4) + "|"]
        for label, runs in groups(env, records):
            cells = [fmt([v for r in runs if (v := eval_at(r, s)) is not None], n_seeds) for s in steps]
            finished = [r for r in runs if r["finished"]]
            wall = f"{np.mean([r['wall_s'] for r in finished]) / 60:.0f} min" if finished else "running"
            plan = [r["plan_ms"] for r in runs if r["plan_ms"] is not None]
            plan_cell = f"{np.median(plan):.0f}" if plan else "n/a"
            timed = [r for r in runs if r.get("fit_s") is not None and r["wall_s"] > 0]
            share_cell = (
                f"{100 * np.mean([r['fit_s'] / r['wall_s'] for r in timed]):.0f}% / "
                f"{100 * np.mean([(r.get('distill_s') or 0.0) / r['wall_s'] for r in timed]):.0f}%"
                if timed
                else "-"
            )
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {wall} | {plan_cell} | {share_cell} |")
        lines.append("")
        # POPLIN-P (and its variants) is the claim's subject; POPLIN-A and PETS are measured against the same bar.
        model_free = {LABELS[algo] for algo in MODEL_FREE}
        contenders = [(label, runs) for label, runs in groups(env, records) if label not in model_free]
        for label, runs in contenders:
            poplin = [v for r in runs if (v := eval_at(r, args.mb_steps)) is not None]
            for baseline in MODEL_FREE:
                base = [v for r in env_records if r["algo"] == baseline and (v := eval_at(r, args.mf_steps)) is not None]
                if poplin and base:
                    reached = np.mean(poplin) >= np.mean(base)
                    if label.startswith(LABELS["poplin_p"]):
                        verdict = "the 3x claim holds here." if reached else "the 3x claim does not hold here."
                    else:
                        verdict = "as high or higher" if reached else "lower"
                        verdict += f" with {args.mb_steps / args.mf_steps:.2g} of the steps (POPLIN-P's bar)."
                    seeds = f"{len(poplin)} of {n_seeds} seeds" if len(poplin) < n_seeds else f"{n_seeds} seeds"
                    lines.append(
                        f"- {label} at {args.mb_steps // 1000}k steps ({np.mean(poplin):.0f}, {seeds}) against "
                        f"{LABELS[baseline]} at {args.mf_steps // 1000}k ({np.mean(base):.0f}): {verdict}"
                    )
        lines.append("")
    unfinished = [r for r in records if not r["finished"] and "budget" not in r]
    if unfinished:
        lines += [
            "## Runs still in progress",
            "",
            "These runs resume from their last checkpoint when the command is run again:",
            "",
            *(
                f"- {r['algo']} {r['env']} seed {r['seed']}: {r['timesteps']} of {r['n_timesteps']} steps; training "
                f"episode returns so far: {', '.join(f'{ret:.0f}' for _, ret in r.get('episodes', [])) or 'none'}"
                for r in unfinished
            ),
            "",
        ]
    command = ["--envs", *args.envs, "--algos", *args.algos, "--seeds", *map(str, args.seeds)]
    lines += [
        "## Reproduce",
        "",
        "```bash",
        " ".join([COMMAND, *(shlex.quote(c) for c in command)]),
        "```",
        "",
        "Runs are resumable: a killed study continues from each run's last checkpoint (model + replay buffer) when the "
        "same command is run again, and finished runs are not rerun; a checkpoint due at the step of an evaluation is "
        "taken before it, so a stop during a long evaluation loses no training. `--print-commands` prints one command "
        "line per run, to dispatch to a cluster (a Slurm job array line per run, Ray or submitit tasks) with a shared "
        "study folder.",
        "",
        f"Machine: {os.cpu_count()} CPU cores, one torch thread per run; planning times are medians over each run's "
        "episodes, measured while other runs and work shared the cores (an idle core plans faster: the CPU entries are "
        "timed alone in docs/cpu_entries.md, by benchmarks/cpu_entries.py).",
        "",
    ]
    output.write_text("\n".join(lines))
    for env in envs:
        plot_env(env, records, output.parent / f"locomotion_{env}.png")


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "run":
        run_main(argv[1:])
        return
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=list(ENVS))
    parser.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--mb-steps", type=int, default=10_000, help="steps of the model-based runs")
    parser.add_argument("--mf-steps", type=int, default=30_000, help="steps of SAC and TD3")
    parser.add_argument("--eval-freq", type=int, default=2500, help="evaluation period of SAC and TD3 (steps)")
    parser.add_argument(
        "--mb-eval-freq",
        type=int,
        default=5000,
        help="evaluation period of the model-based runs (an MPC evaluation episode costs as much as a training one)",
    )
    parser.add_argument("--eval-episodes", type=int, default=2)
    parser.add_argument("--checkpoint-freq", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (one core each)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--folder", type=Path, default=Path("logs/locomotion"), help="the rl-zoo3 log folder of the study")
    parser.add_argument("--results", type=Path, default=Path("docs/locomotion_runs.jsonl"))
    parser.add_argument("--output", type=Path, default=Path("docs/locomotion.md"))
    parser.add_argument(
        "--variant-results",
        type=Path,
        default=Path("docs/locomotion_budgets_runs.jsonl"),
        help="records of benchmarks.locomotion_budgets, whose CPU-entry variants the report shows beside the algorithms",
    )
    parser.add_argument("--print-commands", action="store_true", help="print one command line per run and exit")
    parser.add_argument("--report-only", action="store_true", help="write the report from the runs so far, run nothing")
    args = parser.parse_args(argv)

    runs = [
        Run(algo, env, seed, args.mb_steps if algo in MODEL_BASED else args.mf_steps)
        for seed in args.seeds
        for env in args.envs
        for algo in args.algos
    ]
    if not args.report_only:
        confs = {algo: model_based_config(algo) for algo in args.algos if algo in MODEL_BASED}
        for algo in args.algos:
            if algo in MODEL_FREE:
                confs[algo] = model_free_config(algo, args.envs, args.mf_steps, args.folder / "conf" / f"{algo}.yml")
        commands = [
            (run, run_command(run, args.folder, confs[run.algo], args), run.folder(args.folder))
            for run in runs
            if not (run.folder(args.folder) / "finished.json").exists()
        ]
        if args.print_commands:
            for _, command, _ in commands:
                print(" ".join(shlex.quote(c) for c in ["python", *command[1:]]))
            return
        schedule(commands, args.jobs)
    fresh = [record for run in runs if (record := read_run(run, args.folder)) is not None]
    records = merge_results(args.results, fresh)
    if not args.report_only:
        # A command that ran part of the study (one algorithm, one env) still writes the page of the whole study: the
        # runs recorded before keep their rows. --report-only draws exactly what it is asked for.
        args.algos = [a for a in ALGOS if a in args.algos or any(r["algo"] == a for r in records)]
        args.envs = list(dict.fromkeys([*args.envs, *(r["env"] for r in records)]))
        args.seeds = sorted({*args.seeds, *(r["seed"] for r in records)})
    records = [r for r in records if r["algo"] in args.algos and r["env"] in args.envs and r["seed"] in args.seeds]
    if args.variant_results.exists():
        variants = [json.loads(line) for line in args.variant_results.read_text().splitlines() if line]
        records += [r for r in variants if r.get("budget") in VARIANTS and r["env"] in args.envs and r["seed"] in args.seeds]
    write_report(records, args, args.output)
    print(f"wrote {args.output} ({len(records)} runs)")


if __name__ == "__main__":
    main()
