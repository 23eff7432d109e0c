"""
The two kinds of study run of :mod:`benchmarks.study`, their command lines, their scheduling and their records.

* A **zoo run** is one rl-zoo3 train run in the zoo's own log layout (``<folder>/<algo>/<env>_<seed + 1>/``: monitor
  CSV, ``evaluations.npz``, the saved model), so ``sb3-poplin-zoo all_plots``, ``plot_train`` and every zoo tool read it.
  On top of a plain zoo run, it

  * appends every finished episode and every evaluation to ``progress.jsonl`` in its folder as it happens;
  * checkpoints the model and its replay buffer at the first episode end after every ``--checkpoint-freq`` steps
    (written to a temporary folder, then renamed: a kill never leaves a half-written newest checkpoint), before an
    evaluation due at the same step;
  * when started again after a kill or a stop, continues from its newest checkpoint: the monitor CSV,
    ``progress.jsonl`` and ``evaluations.npz`` are cut back to the checkpoint's step, so no episode is counted twice,
    and an evaluation due at that step that the kill prevented is made first; a finished run (its folder holds
    ``finished.json``) is never rerun;
  * resumes exactly: the checkpoint holds every random stream the run draws from (torch's, numpy's and Python's, the
    model's planning and training generators, the action space's, the training and evaluation envs'), the transition of
    its step (SB3 stores it after the callbacks) and whether the model is still to be trained on the episode that ended
    there, so a resumed run draws, trains and evaluates exactly as the uninterrupted one (tests/test_study.py). Exact
    for envs whose steps draw no random numbers (their resets do: MuJoCo, classic control) and for in-process VecEnvs;
    otherwise the run resumes on fresh seeds.

  ``python -m benchmarks.study run [--checkpoint-freq N] -- <rl-zoo3 train flags>``

* A **checkpoint run** trains once and, at each of its checkpoints (e.g. 3,000 and 5,000 steps), evaluates MPC control
  (planning with the learned model) and policy control (the distilled network alone, where the algorithm has one) on
  evaluation episodes seeded apart from training. Its configuration is a YAML file (``algo``, ``checkpoints``,
  ``eval_episodes``, ``hyperparams``); its record, written when it finishes, is ``record.json`` in the same run folder
  layout. These runs last minutes: a killed one starts over.

  ``python -m benchmarks.study checkpoint-run --conf-file <yml> --env <id> --seed <n> -f <folder>``

A record is one JSON object per run: ``entry``, ``algo``, ``env``, ``seed``, ``n_timesteps``, ``finished``,
``timesteps``, ``wall_s``, ``plan_ms`` (median planning ms per step), ``evals`` (``[step, mean return]`` of the MPC
evaluations), and where recorded ``episodes`` (``[step, return]`` of the training episodes), ``cem_iterations``,
``fit_s`` and ``distill_s`` (seconds fitting the model and distilling the policy), ``exploitation`` (``[step,
predicted, realized]`` per planned episode: :mod:`sb3_poplin.common.exploitation`), ``policy_evals`` and
``holdout_mse``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import yaml

try:
    import fcntl
except ImportError:  # Windows: study runs are not locked
    fcntl = None  # type: ignore[assignment]

COMMAND = "python -m benchmarks.study"
CHECKPOINT_PREFIX = "ckpt_"
#: the file a checkpoint run writes when it has finished
CHECKPOINT_RECORD = "record.json"
#: evaluations of a finished run's model replanned with another planning budget (``python -m benchmarks.study replan``),
#: one JSON line each, in the run's folder
REPLANS = "replans.jsonl"


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
#: the random streams of a run at its checkpoint, in the checkpoint's folder (see :func:`random_streams`)
RANDOM_STREAMS = "random_streams.pkl"
#: the transition of the step a checkpoint is taken at, which SB3 stores only after the callbacks (see ``checkpoint``)
PENDING_TRANSITION = "pending_transition.pkl"


def sub_envs(venv: Any) -> list[Any] | None:
    """The gymnasium envs inside a VecEnv (through VecEnv wrappers such as VecNormalize), or None where they live in
    other processes (SubprocVecEnv)."""
    inner = getattr(venv, "unwrapped", venv)
    envs = getattr(inner, "envs", None)
    return list(envs) if envs is not None else None


def env_streams(venv: Any) -> list[dict[str, Any] | None] | None:
    """The state of each sub-env's random generator (what its resets draw from; None for an env never reset, whose
    first reset takes the VecEnv's seed), or None when the envs cannot be read."""
    envs = sub_envs(venv)
    if envs is None:
        return None
    return [None if env.unwrapped._np_random is None else env.unwrapped.np_random.bit_generator.state for env in envs]


def set_env_streams(venv: Any, states: list[dict[str, Any] | None]) -> None:
    """Put each sub-env's generator back to ``states``. The VecEnv was seeded when it was made (rl-zoo3 seeds every
    env), as the interrupted run's was: an env never reset then keeps that seed for its first reset, the others drop it
    (it would override the restored stream)."""
    envs = sub_envs(venv)
    assert envs is not None and len(envs) == len(states)
    inner = getattr(venv, "unwrapped", venv)
    for index, (env, state) in enumerate(zip(envs, states)):
        if state is not None:
            if env.unwrapped._np_random is None:
                env.unwrapped.np_random  # noqa: B018 (made on first access, then given the state)
            env.unwrapped.np_random.bit_generator.state = state
            inner._seeds[index] = None


def random_streams(model: Any, env_states: list[dict[str, Any]] | None, eval_env: Any | None) -> dict[str, Any] | None:
    """Every random stream a run draws from after a checkpoint: torch's, numpy's and Python's global generators, the
    model's planning, training and plan-scoring generators, its count of planned steps (the scoring's cadence), its
    action space's (the random warm-up), the training envs' (as they were before the step that ended the episode, i.e.
    before its automatic reset, which the resumed run repeats) and the evaluation envs'. None when an env's stream
    cannot be read (envs in other processes): the run then resumes on fresh seeds instead.

    :param env_states: the training envs' streams before the last step (:func:`env_streams`)
    :param eval_env: the evaluation VecEnv (None without one)
    """
    import torch as th

    eval_states = env_streams(eval_env) if eval_env is not None else []
    if env_states is None or eval_states is None:
        return None
    return dict(
        torch=th.get_rng_state(),
        numpy=np.random.get_state(),
        python=random.getstate(),
        plan=model.plan_generator.get_state() if hasattr(model, "plan_generator") else None,
        train=model.train_generator.get_state() if hasattr(model, "train_generator") else None,
        score=model.score_generator.get_state() if hasattr(model, "score_generator") else None,
        planned_steps=model.engine.planned_training_steps if hasattr(model, "engine") else None,
        action_space=model.action_space.np_random.bit_generator.state,
        envs=env_states,
        eval_envs=eval_states,
    )


def restore_random_streams(model: Any, streams: dict[str, Any], eval_env: Any | None) -> None:
    """Put every stream of :func:`random_streams` back (after the model and its envs were made)."""
    import torch as th

    th.set_rng_state(streams["torch"])
    np.random.set_state(streams["numpy"])
    random.setstate(streams["python"])
    if streams["plan"] is not None:
        model.plan_generator.set_state(streams["plan"])
    if streams["train"] is not None:
        model.train_generator.set_state(streams["train"])
    # Absent from checkpoints written before they were kept: such a run resumes scoring from a fresh stream and count.
    if streams.get("score") is not None:
        model.score_generator.set_state(streams["score"])
    if streams.get("planned_steps") is not None:
        model.engine.planned_training_steps = streams["planned_steps"]
    model.action_space.np_random.bit_generator.state = streams["action_space"]
    set_env_streams(model.get_env(), streams["envs"])
    if eval_env is not None and streams["eval_envs"]:
        set_env_streams(eval_env, streams["eval_envs"])


def store_pending_transition(model: Any, pending: dict[str, Any]) -> None:
    """Store the transition a checkpoint was taken at (SB3 stores it after the callbacks), as SB3 would have, then leave
    the model to reset its env when it starts learning (the reset the interrupted run made at that step)."""
    model._last_obs = pending["last_obs"]
    if pending["last_original_obs"] is not None:
        model._last_original_obs = pending["last_original_obs"]
    if hasattr(model, "planner"):  # sb3-poplin's algorithms store the step's planning noise with it
        model._last_executed_noise = pending["executed_noise"]
    model._store_transition(
        model.replay_buffer,
        pending["buffer_actions"],
        pending["new_obs"],
        pending["rewards"],
        pending["dones"],
        pending["infos"],
    )
    model._last_obs = None  # SB3 resets the env when learning starts; the restored streams make it the same reset


def latest_checkpoint(run_folder: Path) -> Path | None:
    """The newest complete checkpoint folder of a run (complete folders are only ever created by a rename)."""
    folder = run_folder / "resume"
    if not folder.is_dir():
        return None
    done = [p for p in folder.iterdir() if p.name.startswith(CHECKPOINT_PREFIX) and (p / "state.json").is_file()]
    return max(done, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX) :]), default=None)


def cut_back(run_folder: Path, state: dict[str, Any], redo_evaluation: bool = False) -> None:
    """Forget what a killed run wrote after its checkpoint: episodes, evaluations and monitor rows past its step.

    :param redo_evaluation: forget the evaluation made at the checkpoint's step too (the resumed run makes it again: its
        evaluation env's random stream was saved before it)
    """
    timesteps = state["timesteps"]

    def kept_eval(step: int) -> bool:
        return step < timesteps if redo_evaluation else step <= timesteps

    progress = run_folder / "progress.jsonl"
    if progress.exists():
        records = [json.loads(line) for line in progress.read_text().splitlines() if line]
        kept = [r for r in records if (kept_eval(r["timesteps"]) if r["kind"] == "eval" else r["timesteps"] <= timesteps)]
        progress.write_text("".join(json.dumps(r) + "\n" for r in kept))
    for monitor in run_folder.glob("*.monitor.csv"):
        lines = monitor.read_text().splitlines()
        # Two header lines (the JSON metadata and the column names), then one row per finished episode.
        monitor.write_text("".join(f"{line}\n" for line in lines[: 2 + state["episodes"]]))
    evaluations = run_folder / "evaluations.npz"
    if evaluations.exists():
        with np.load(evaluations) as data:
            keep = np.array([kept_eval(int(step)) for step in data["timesteps"]], dtype=bool)
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
            #: the training envs' random streams as they were before the current step (see ``random_streams``)
            self.env_streams_before: list[dict[str, Any]] | None = None
            # Evaluations already in progress.jsonl (after the cut-back); one that a kill caught between the callback's
            # evaluations.npz and this log is written on the first step of the resumed run.
            progress = self.folder / "progress.jsonl"
            lines = progress.read_text().splitlines() if progress.exists() else []
            self.evals_seen = sum(json.loads(line)["kind"] == "eval" for line in lines if line)
            self.exploitation_mark = self.last_checkpoint

        def _on_training_start(self) -> None:
            self.start = time.perf_counter()
            self.env_streams_before = env_streams(self.training_env)
            self.catch_up()

        def catch_up(self) -> None:
            """What the interrupted run did after its checkpoint, at the same step: the evaluation due there, then the
            training of the model on the episode that ended there (a checkpoint is taken at an episode's last step,
            before SB3 trains on it)."""
            self.evaluate_if_due()
            state = self.manager.resume_state
            model = self.model
            if state is not None and state.get("train_pending") and model.num_timesteps > model.learning_starts:
                model._update_current_progress_remaining(model.num_timesteps, model._total_timesteps)
                model.train(gradient_steps=max(model.gradient_steps, 1), batch_size=model.batch_size)

        def evaluate_if_due(self) -> None:
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
                if int(made[index]) == self.last_checkpoint:
                    self.eval_streams_after_evaluation()
            self.evals_seen = len(made)

        def eval_streams_after_evaluation(self) -> None:
            """The evaluation due at the checkpoint's step was made after it: the checkpoint's evaluation streams become
            those after it, so a resumed run keeps that evaluation instead of making it again."""
            checkpoint = latest_checkpoint(self.folder)
            path = None if checkpoint is None else checkpoint / RANDOM_STREAMS
            if path is None or not path.exists() or self.eval_callback is None:
                return
            streams = pickle.loads(path.read_bytes())
            eval_streams = env_streams(self.eval_callback.eval_env)
            if eval_streams is None:
                return
            streams.update(eval_envs=eval_streams, eval_streams_after_evaluation=True)
            temporary = path.with_suffix(".tmp")
            temporary.write_bytes(pickle.dumps(streams))
            temporary.replace(path)  # atomic: a kill leaves the old file or the new one

        def wall_s(self) -> float:
            return self.wall_offset + time.perf_counter() - self.start

        def write(self, record: dict[str, Any]) -> None:
            with (self.folder / "progress.jsonl").open("a") as f:
                f.write(json.dumps(record) + "\n")

        def plan_ms(self, length: int) -> float | None:
            """Median planning time of the latest ``length`` planned steps (model-based algorithms; None otherwise)."""
            engine = getattr(self.model, "engine", None)
            times = engine.plan_times if engine is not None else None
            if not times:
                return None
            return 1000.0 * float(np.median(list(times)[-min(len(times), length) :]))

        def cem_iterations(self, length: int) -> float | None:
            """Mean optimizer iterations of the latest ``length`` plans (model-based algorithms; None otherwise)."""
            engine = getattr(self.model, "engine", None)
            iterations = engine.plan_iterations if engine is not None else None
            if not iterations:
                return None
            return float(np.mean(list(iterations)[-min(len(iterations), length) :]))

        def exploitation(self) -> dict[str, float]:
            """Mean predicted and realized return of the plans completed since the previous episode's end (model-based
            algorithms; empty otherwise)."""
            monitor = getattr(self.model, "exploitation", None)
            if monitor is None:
                return {}
            outcomes = monitor.since(self.exploitation_mark)
            self.exploitation_mark = self.num_timesteps
            return monitor.summary(outcomes)

        def _on_step(self) -> bool:
            self.record_evaluations()  # made by EvalCallback at the previous step (it runs after this callback)
            for info in self.locals.get("infos", []):
                if "episode" not in info:
                    continue
                self.episodes += 1
                exploitation = self.exploitation()
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
                        # the model's return of this episode's executed plans and the env's over the same steps
                        **exploitation,
                    )
                )
                if self.num_timesteps - self.last_checkpoint >= checkpoint_freq:
                    self.checkpoint()
                if stop_after_episodes is not None and self.episodes >= stop_after_episodes:
                    os._exit(3)  # a test hook: dies like a killed process, with no cleanup
            self.env_streams_before = env_streams(self.training_env)
            return True

        def checkpoint(self) -> None:
            resume = self.folder / "resume"
            resume.mkdir(exist_ok=True)
            tmp = resume / f"tmp_{self.num_timesteps}"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            self.model.save(tmp / "model.zip")
            self.model.save_replay_buffer(tmp / "replay_buffer.pkl")  # type: ignore[attr-defined]
            eval_env = self.eval_callback.eval_env if self.eval_callback is not None else None
            streams = random_streams(self.model, self.env_streams_before, eval_env)
            if streams is not None:
                with (tmp / RANDOM_STREAMS).open("wb") as file:
                    pickle.dump(streams, file)
            # The callbacks run between SB3's env step and its storing of that step's transition: the checkpoint's
            # buffer lacks it, and the resumed run stores it first (``store_pending_transition``).
            model = self.model
            pending = {name: self.locals[name] for name in ("buffer_actions", "new_obs", "rewards", "dones", "infos")}
            pending.update(
                last_obs=model._last_obs,
                last_original_obs=getattr(model, "_last_original_obs", None),
                executed_noise=getattr(model, "_last_executed_noise", None),
            )
            with (tmp / PENDING_TRANSITION).open("wb") as file:
                pickle.dump(pending, file)
            # SB3 trains on the episode only after this callback: the resumed run does it first.
            train_pending = self.model.num_timesteps > self.model.learning_starts
            state = dict(
                timesteps=self.num_timesteps, episodes=self.episodes, wall_s=self.wall_s(), train_pending=train_pending
            )
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
            self.resume_streams: dict[str, Any] | None = None
            self.pending_transition: dict[str, Any] | None = None
            if checkpoint is not None:
                self.resume_state = json.loads((checkpoint / "state.json").read_text())
                streams_file, pending_file = checkpoint / RANDOM_STREAMS, checkpoint / PENDING_TRANSITION
                #: the random streams at the checkpoint (None for a checkpoint written before they were saved)
                self.resume_streams = pickle.loads(streams_file.read_bytes()) if streams_file.exists() else None
                #: the transition of the checkpoint's step (None for a checkpoint written before it was saved)
                self.pending_transition = pickle.loads(pending_file.read_bytes()) if pending_file.exists() else None
                # An evaluation due at the checkpoint's step is made after it; unless the streams were updated after it,
                # the resumed run makes it again from the saved evaluation streams (the same numbers).
                redo = self.resume_streams is not None and not self.resume_streams.get("eval_streams_after_evaluation")
                cut_back(folder, self.resume_state, redo_evaluation=redo)
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
            if self.resume_state is not None and self.resume_streams is None:
                # A checkpoint without its random streams: fresh episodes, not a replay of the first ones (the seed is
                # also the env's reset seed).
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
            progress = StudyProgress(self)
            if self.pending_transition is not None:
                store_pending_transition(model, self.pending_transition)
            if self.resume_streams is not None:
                # Every stream where the interrupted run had it: the resumed run draws what it would have drawn.
                eval_env = progress.eval_callback.eval_env if progress.eval_callback is not None else None
                restore_random_streams(model, self.resume_streams, eval_env)
            elif self.resume_state is not None:
                # Other random numbers than the run's first steps; the rest of the state came from the checkpoint.
                model.set_random_seed(self.seed + self.resume_state["timesteps"])
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


def zoo_run_main(argv: Sequence[str]) -> None:
    """``python -m benchmarks.study run [--checkpoint-freq N] -- <rl-zoo3 train flags>``"""
    parser = argparse.ArgumentParser(prog=f"{COMMAND} run", description="One resumable rl-zoo3 train run of a study.")
    parser.add_argument("--checkpoint-freq", type=int, default=2000, help="steps between checkpoints (at episode ends)")
    parser.add_argument("--stop-after-episodes", type=int, default=None, help=argparse.SUPPRESS)  # test hook
    args, zoo_argv = parser.parse_known_args(list(argv))
    if zoo_argv and zoo_argv[0] == "--":
        zoo_argv = zoo_argv[1:]
    _zoo_run(zoo_argv, args.checkpoint_freq, args.stop_after_episodes)


# ----------------------------------------------------------------------------------------------------------------------
# One run: train once, evaluate MPC and policy control at checkpoints
# ----------------------------------------------------------------------------------------------------------------------
def checkpoint_run(conf: dict[str, Any], env_id: str, seed: int, run_folder: Path) -> dict[str, Any]:
    """Train ``conf["algo"]`` on ``env_id`` up to its last checkpoint, evaluating at every checkpoint; write and return
    the run's record.

    :param conf: ``algo`` (zoo name), ``checkpoints`` (steps), ``eval_episodes``, ``hyperparams`` (constructor
        arguments), optionally ``env_kwargs`` (for training and evaluation envs alike)
    :param env_id: gymnasium id
    :param seed: seed of the algorithm and its env; evaluation episodes are seeded with ``10_000 + seed``
    :param run_folder: where ``record.json`` is written
    """
    import gymnasium as gym
    import torch as th
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    from sb3_poplin.zoo.registry import ZOO_ALGOS

    th.set_num_threads(1)
    checkpoints = sorted(conf["checkpoints"])
    env_kwargs = conf.get("env_kwargs") or {}
    evals: dict[str, list[list[float]]] = {"mpc": [], "policy": []}

    class Checkpoints(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps in checkpoints:
                model = self.model
                env = make_vec_env(env_id, n_envs=1, seed=10_000 + seed, env_kwargs=env_kwargs)
                for mode in ("mpc", "policy") if model.uses_policy_network else ("mpc",):
                    model.predict_with = mode
                    mean, _ = evaluate_policy(model, env, n_eval_episodes=conf["eval_episodes"])
                    evals[mode].append([self.num_timesteps, float(mean)])
                model.predict_with = "mpc"
            return True

    algo = ZOO_ALGOS[conf["algo"]]
    env = gym.make(env_id, **env_kwargs) if env_kwargs else env_id
    model = algo("MlpPolicy", env, seed=seed, **conf["hyperparams"])
    start = time.perf_counter()
    model.learn(checkpoints[-1], callback=Checkpoints())
    plan_times = list(model.engine.plan_times)
    record = dict(
        algo=conf["algo"],
        env=env_id,
        seed=seed,
        n_timesteps=checkpoints[-1],
        finished=True,
        timesteps=int(model.num_timesteps),
        wall_s=time.perf_counter() - start,
        plan_ms=1000.0 * float(np.median(plan_times)) if plan_times else None,
        fit_s=model.dynamics_train_seconds,
        holdout_mse=model.last_dynamics_info.get("holdout_mse"),
        evals=evals["mpc"],
        **({"policy_evals": evals["policy"]} if evals["policy"] else {}),
    )
    run_folder.mkdir(parents=True, exist_ok=True)
    partial = run_folder / f"{CHECKPOINT_RECORD}.partial"
    partial.write_text(json.dumps(record) + "\n")
    partial.replace(run_folder / CHECKPOINT_RECORD)
    return record


def checkpoint_run_main(argv: Sequence[str]) -> None:
    """``python -m benchmarks.study checkpoint-run --conf-file <yml> --env <id> --seed <n> -f <folder>``"""
    parser = argparse.ArgumentParser(
        prog=f"{COMMAND} checkpoint-run",
        description="One run of a study that trains once and evaluates MPC and policy control at its checkpoints.",
    )
    parser.add_argument("--conf-file", type=Path, required=True, help="algo, checkpoints, eval_episodes, hyperparams")
    parser.add_argument("--env", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("-f", "--folder", type=Path, required=True, help="the entry's folder (<folder>/<algo>/<env>_<k>/)")
    args = parser.parse_args(list(argv))
    conf = yaml.safe_load(args.conf_file.read_text())
    run = Run(conf["algo"], args.env, args.seed, max(conf["checkpoints"]))
    run_folder = run.folder(args.folder)
    if (run_folder / CHECKPOINT_RECORD).exists():
        print(f"{run_folder} is finished; nothing to do")
        return
    record = checkpoint_run(conf, args.env, args.seed, run_folder)
    print(json.dumps(record))


# ----------------------------------------------------------------------------------------------------------------------
# Command lines and scheduling
# ----------------------------------------------------------------------------------------------------------------------
def zoo_command(
    run: Run,
    folder: Path,
    conf: Path,
    eval_freq: int,
    eval_episodes: int,
    checkpoint_freq: int,
    device: str,
    env_kwargs: dict[str, Any] | None = None,
) -> list[str]:
    """The command line of one zoo run (what a job array would execute).

    :param folder: the rl-zoo3 log folder (``-f``) the run's folder is made in
    :param conf: the hyperparameter file (rl-zoo3's ``--conf-file``)
    :param env_kwargs: keyword arguments of the env (rl-zoo3's ``--env-kwargs``), for training and evaluation alike
    """
    return [
        sys.executable,
        "-m",
        "benchmarks.study",
        "run",
        "--checkpoint-freq",
        str(checkpoint_freq),
        "--",
        "--algo",
        run.algo,
        "--env",
        run.env,
        "--seed",
        str(run.seed),
        "-f",
        str(folder),
        "--conf-file",
        str(conf),
        "-n",
        str(run.n_timesteps),
        "--eval-freq",
        str(eval_freq),
        "--eval-episodes",
        str(eval_episodes),
        "--num-threads",
        "1",
        "--device",
        device,
        "--verbose",
        "0",
        *(["--env-kwargs", *(f"{key}:{value!r}" for key, value in env_kwargs.items())] if env_kwargs else []),
    ]


def checkpoint_command(run: Run, folder: Path, conf: Path) -> list[str]:
    """The command line of one checkpoint run."""
    return [
        sys.executable,
        "-m",
        "benchmarks.study",
        "checkpoint-run",
        "--conf-file",
        str(conf),
        "--env",
        run.env,
        "--seed",
        str(run.seed),
        "-f",
        str(folder),
    ]


#: the file a run's folder is locked with while a study process runs it
RUN_LOCK = "run.lock"


def lock_run(run_folder: Path) -> IO[str] | None:
    """Take the lock of a run's folder (an exclusive ``flock`` on :data:`RUN_LOCK`, which holds the locking process's
    pid): the open file, to keep while the run goes on, or None when another process holds it. The operating system
    releases a lock when its holders end, so a killed study leaves none behind. Where ``fcntl`` does not exist
    (Windows) runs are not locked.
    """
    run_folder.mkdir(parents=True, exist_ok=True)
    handle = (run_folder / RUN_LOCK).open("a+")
    if fcntl is None:
        return handle
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def schedule(commands: list[tuple[Run, list[str], Path]], jobs: int) -> None:
    """Run the commands, ``jobs`` at a time, each with its output in its run folder (the third item).

    A run whose folder another study process has locked (:func:`lock_run`: it is running that run now) is skipped with
    a message: two processes writing one run's checkpoints would corrupt them.
    """
    pending = list(commands)
    running: list[tuple[Run, subprocess.Popen, Any, IO[str]]] = []
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    while pending or running:
        while pending and len(running) < jobs:
            run, command, folder = pending.pop(0)
            lock = lock_run(folder)
            if lock is None:
                holder = (folder / RUN_LOCK).read_text().strip() or "?"
                print(
                    f"[{time.strftime('%H:%M:%S')}] skip {run.name}: a study process (pid {holder}) is running it", flush=True
                )
                continue
            log = (folder / "stdout.log").open("a")
            print(f"[{time.strftime('%H:%M:%S')}] start {run.name}", flush=True)
            # The run inherits the lock: it stays held while the run goes on, even if this process is stopped first.
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, pass_fds=(lock.fileno(),))
            running.append((run, process, log, lock))
        if running:
            time.sleep(2)
        for item in list(running):
            run, process, log, lock = item
            if process.poll() is not None:
                log.close()
                lock.close()
                running.remove(item)
                status = "done" if process.returncode == 0 else f"FAILED (exit {process.returncode}, see stdout.log)"
                print(f"[{time.strftime('%H:%M:%S')}] {status} {run.name}", flush=True)


# ----------------------------------------------------------------------------------------------------------------------
# Records
# ----------------------------------------------------------------------------------------------------------------------
def is_finished(run_folder: Path) -> bool:
    """Whether a run of either kind has finished (its folder holds ``finished.json`` or ``record.json``)."""
    return (run_folder / "finished.json").exists() or (run_folder / CHECKPOINT_RECORD).exists()


def read_run(run: Run, folder: Path) -> dict[str, Any] | None:
    """What one run has written so far (None if it never started).

    :param folder: the folder the run's folder is in (``-f`` of its command)
    """
    run_folder = run.folder(folder)
    replans_file = run_folder / REPLANS
    replans = [json.loads(line) for line in replans_file.read_text().splitlines() if line] if replans_file.exists() else []
    checkpoint_record = run_folder / CHECKPOINT_RECORD
    if checkpoint_record.exists():
        return {**json.loads(checkpoint_record.read_text()), **({"replans": replans} if replans else {})}
    progress = run_folder / "progress.jsonl"
    if not progress.exists():
        return None
    records = [json.loads(line) for line in progress.read_text().splitlines() if line]
    episodes = [r for r in records if r["kind"] == "episode"]
    evals = [r for r in records if r["kind"] == "eval"]
    plan = [r["plan_ms"] for r in episodes if r.get("plan_ms") is not None]
    iterations = [r["cem_iterations"] for r in episodes if r.get("cem_iterations") is not None]
    finished = run_folder / "finished.json"
    return dict(
        algo=run.algo,
        env=run.env,
        seed=run.seed,
        # what a finished run ran, even when its entry has since been made longer (the table times it apart)
        n_timesteps=json.loads(finished.read_text())["timesteps"] if finished.exists() else run.n_timesteps,
        finished=finished.exists(),
        timesteps=max((r["timesteps"] for r in records), default=0),
        wall_s=max((r["wall_s"] for r in records), default=0.0),
        plan_ms=float(np.median(plan)) if plan else None,
        cem_iterations=float(np.mean(iterations)) if iterations else None,
        evals=[(r["timesteps"], r["mean"]) for r in evals],
        episodes=[(r["timesteps"], r["ret"]) for r in episodes],
        # per planned training episode: [step, the model's mean return of its executed plans, the env's over the same
        # steps] (runs recorded since it was added)
        **(
            {"exploitation": [(r["timesteps"], r["predicted_return"], r["realized_return"]) for r in exploited]}
            if (exploited := [r for r in episodes if r.get("predicted_return") is not None])
            else {}
        ),
        # cumulative seconds of model fitting and of distillation at the last episode (runs recorded since they were added)
        fit_s=episodes[-1].get("fit_s") if episodes else None,
        distill_s=episodes[-1].get("distill_s") if episodes else None,
        **({"replans": replans} if replans else {}),
    )


def seeds_in(folder: Path, algo: str, env: str) -> list[int]:
    """The seeds whose run folders exist under ``folder`` (``<algo>/<env>_<seed + 1>/``, either kind)."""
    prefix = f"{env.replace('/', '-')}_"
    parent = folder / algo
    if not parent.is_dir():
        return []
    suffixes = [p.name[len(prefix) :] for p in parent.iterdir() if p.is_dir() and p.name.startswith(prefix)]
    return sorted(int(s) - 1 for s in suffixes if s.isdigit() and int(s) > 0)


def compact(value: Any) -> Any:
    """``value`` with every float to 6 significant digits (what a record needs; the tables show far fewer)."""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, (list, tuple)):
        return [compact(v) for v in value]
    if isinstance(value, dict):
        return {k: compact(v) for k, v in value.items()}
    return value


def read_results(results_file: Path) -> list[dict[str, Any]]:
    """The records of a results file (none if it does not exist)."""
    if not results_file.exists():
        return []
    return [json.loads(line) for line in results_file.read_text().splitlines() if line]


def merge_results(
    results_file: Path,
    fresh: list[dict[str, Any]],
    key: tuple[str, ...] = ("entry", "algo", "env", "seed"),
    order: Callable[[dict[str, Any]], Any] | None = None,
) -> list[dict[str, Any]]:
    """The committed results, updated with what the run folders hold now (a run folder lost with a machine keeps its last
    committed record), written back one compact JSON line per run.

    :param results_file: JSON lines, one record per run
    :param fresh: records read from the run folders now
    :param key: the fields that name a run
    :param order: sort key of the records in the file (default: by ``key``)
    """
    by_key: dict[tuple, dict[str, Any]] = {tuple(r.get(k) for k in key): r for r in read_results(results_file)}
    for record in fresh:
        name = tuple(record.get(k) for k in key)
        old = by_key.get(name)
        if old is None or record["timesteps"] >= old["timesteps"]:
            by_key[name] = record
    merged = sorted(by_key.values(), key=order or (lambda r: tuple(str(r.get(k)) for k in key)))
    if not merged:
        return []  # no file for a study that has no runs yet
    results_file.parent.mkdir(parents=True, exist_ok=True)
    results_file.write_text("".join(json.dumps(compact(r), separators=(",", ":")) + "\n" for r in merged))
    return [compact(r) for r in merged]


def eval_at(record: dict[str, Any], step: int, key: str = "evals") -> float | None:
    """The evaluation return of a run at ``step`` (None if it has not got there).

    :param key: ``evals`` (MPC control, or the zoo run's evaluation) or ``policy_evals`` (the distilled policy alone)
    """
    for timesteps, mean in record.get(key) or []:
        if timesteps == step:
            return float(mean)
    return None
