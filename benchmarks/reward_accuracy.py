"""
Measure how well the torch reward/termination functions of sb3_poplin.rewards reproduce the envs' own.

For every env and reward mode, collects real transitions with uniformly random actions, evaluates the functions on
them in one batch and reports the max abs error and correlation against the env's reward, and the fraction of steps
whose termination agrees with ``terminated``. Prints the table and writes docs/rewards.md.

Run from the repository root::

    python -m benchmarks.reward_accuracy
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th

import sb3_poplin.envs  # noqa: F401  (registers the sb3_poplin/ ids)
from sb3_poplin.rewards import get_task_fns, known_env_ids, reward_mode, task_kwargs_from_env

COMMAND = "python -m benchmarks.reward_accuracy"
KEEP_POS = {"exclude_current_positions_from_observation": False}

# (env id, gym.make kwargs): the default configuration of every known id, plus the settings that change the mode.
CONFIGS: list[tuple[str, dict[str, Any]]] = [
    ("Pendulum-v1", {}),
    ("MountainCarContinuous-v0", {}),
    ("InvertedPendulum-v5", {}),
    ("InvertedDoublePendulum-v5", {}),
    ("Reacher-v5", {}),
    ("Pusher-v5", {}),
    ("HalfCheetah-v5", {}),
    ("HalfCheetah-v5", KEEP_POS),
    ("Swimmer-v5", {}),
    ("Swimmer-v5", KEEP_POS),
    ("Hopper-v5", {}),
    ("Hopper-v5", KEEP_POS),
    ("Walker2d-v5", {}),
    ("Walker2d-v5", KEEP_POS),
    ("Ant-v5", {}),
    ("Ant-v5", KEEP_POS),
    ("Ant-v5", {"include_cfrc_ext_in_observation": False}),
    ("Humanoid-v5", {}),
    ("Humanoid-v5", KEEP_POS),
    ("Humanoid-v5", {"include_cvel_in_observation": False}),
    ("Humanoid-v5", {"include_cfrc_ext_in_observation": False}),
    ("sb3_poplin/PETSHalfCheetah-v0", {}),
    ("sb3_poplin/FixedSwimmer-v0", {}),
]

#: the heading of the section this benchmark writes in its page; what comes before it is the page's own prose
MEASURED = "## Measured"


def collect(env_id: str, make_kwargs: dict[str, Any], steps: int, seed: int) -> tuple[dict[str, Any], list[np.ndarray]]:
    """
    Roll out ``steps`` transitions with uniformly random actions, resetting at the end of each episode.

    :param env_id: gymnasium id.
    :param make_kwargs: kwargs for ``gym.make``.
    :param steps: number of transitions.
    :param seed: seed of the env and the action sampler.
    :return: the task kwargs read from the env, and arrays obs, action, next_obs, reward, terminated.
    """
    env = gym.make(env_id, **make_kwargs)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    rows = []
    for _ in range(steps):
        action = env.action_space.sample()
        next_obs, reward, terminated, truncated, _ = env.step(action)
        rows.append((obs, action, next_obs, float(reward), bool(terminated)))
        obs = next_obs
        if terminated or truncated:
            obs, _ = env.reset()
    task_kwargs = task_kwargs_from_env(env)
    env.close()
    return task_kwargs, [np.array(column) for column in zip(*rows)]


def measure(env_id: str, make_kwargs: dict[str, Any], steps: int, seed: int) -> dict[str, Any]:
    """
    :return: one row of the table for this env configuration.
    """
    task_kwargs, (obs, action, next_obs, reward, terminated) = collect(env_id, make_kwargs, steps, seed)
    reward_fn, termination_fn = get_task_fns(env_id, **task_kwargs)
    inputs = [th.as_tensor(x, dtype=th.float64) for x in (obs, action, next_obs)]
    predicted = reward_fn(*inputs).numpy()
    predicted_done = termination_fn(*inputs).numpy()
    constant = np.std(predicted) == 0 or np.std(reward) == 0
    return {
        "env": env_id,
        "settings": ", ".join(f"{k}={v}" for k, v in make_kwargs.items()) or "default",
        "mode": reward_mode(env_id, **task_kwargs),
        "max_abs_error": float(np.max(np.abs(predicted - reward))),
        "reward_std": float(np.std(reward)),
        "corr": math.nan if constant else float(np.corrcoef(predicted, reward)[0, 1]),
        "term_agreement": float(np.mean(predicted_done == terminated)),
        "terminations": int(terminated.sum()),
    }


def markdown_table(rows: list[dict[str, Any]]) -> str:
    header = ["env", "settings", "reward mode", "max abs error", "env reward std", "correlation", "termination agreement"]
    lines = ["| " + " | ".join([*header, "terminations"]) + " |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        corr = "n/a" if math.isnan(r["corr"]) else f"{r['corr']:.6f}"
        lines.append(
            f"| {r['env']} | {r['settings']} | {r['mode']} | {r['max_abs_error']:.2e} | {r['reward_std']:.3f} | {corr} "
            f"| {r['term_agreement']:.4f} | {r['terminations']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000, help="transitions per env configuration")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="docs/rewards.md", help="markdown file to write ('' to skip)")
    args = parser.parse_args()

    missing = set(known_env_ids()) - {env_id for env_id, _ in CONFIGS}
    assert not missing, f"add these ids to CONFIGS: {sorted(missing)}"

    start = time.perf_counter()
    rows = [measure(env_id, make_kwargs, args.steps, args.seed) for env_id, make_kwargs in CONFIGS]
    table = markdown_table(rows)
    print(table)
    print(f"({time.perf_counter() - start:.1f} s)")

    if args.output:
        versions = (
            f"gymnasium {gym.__version__}, torch {th.__version__}, "
            f"mujoco {__import__('mujoco').__version__}, Python {platform.python_version()}"
        )
        output = Path(args.output)
        # Only the measured section is this benchmark's: the prose above it (docs/rewards.md's guide) is kept.
        page = output.read_text() if output.exists() else ""
        prose = page.split(MEASURED)[0].rstrip() + "\n\n" if MEASURED in page else page
        document = (
            f"{prose}{MEASURED}\n\n"
            f"{args.steps:,} transitions per row with uniformly random actions (seed {args.seed}), "
            f"episodes reset on termination or time limit; errors are against the env's own reward ({versions}).\n\n"
            f"{table}\n\nReproduce (from the repository root):\n\n```bash\n{COMMAND}\n```\n"
        )
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(document)
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
