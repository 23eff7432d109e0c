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

DOC_HEADER = """# Reward and termination functions: accuracy

The MPC planner scores imagined trajectories with `sb3_poplin.rewards.get_task_fns(env_id, **task_kwargs)`,
batched torch versions of each env's reward `r(obs, action, next_obs)` and termination `done(obs, action, next_obs)`.
`task_kwargs_from_env(env)` reads every constructor setting that changes them (weights, healthy ranges,
`terminate_when_unhealthy`, observation flags, `dt`) and `reward_mode(env_id, **task_kwargs)` says whether the reward is
reproduced exactly or only approximated.

## Exact and approximate

* **exact**: equal to the env's reward up to float rounding.
* **approximate**: some term depends on a quantity that is not in the observation, so it is estimated. The termination
  is exact in every case below (it only needs observed quantities).

Why some rewards are approximate:

* **Forward velocity of the v5 locomotion envs.** The reward uses `(x_after - x_before) / dt`, but the default
  observation excludes the x (and y) position (`exclude_current_positions_from_observation=True`). The velocity in the
  observation is only the instantaneous one at the end of the step, so the approximate mode uses the trapezoidal
  estimate `(v(obs) + v(next_obs)) / 2` (it correlates better with the displacement than `v(next_obs)` alone: 0.96 vs
  0.92 on HalfCheetah, 0.998 vs 0.96 on Swimmer). Make the env with
  `exclude_current_positions_from_observation=False` to observe x: the reward becomes exact,
  `(next_obs[0] - obs[0]) / dt`, for HalfCheetah, Hopper, Walker2d and Swimmer. The algorithms then keep the
  observed position out of the dynamics model's and the policy's inputs (`dynamics_ignore_positions=True`, the
  default): the physics do not depend on it, and it leaves the range of the training data as the agent runs.
* **Ant and Humanoid are never exact.** Their reward uses MuJoCo body positions (`data.body(...).xpos`, `data.xipos`),
  which after `mj_step` hold the kinematics of the integrator's last RK4 stage rather than of the final state that is
  observed. With x observed the error is small (see the table) but not float rounding. Humanoid rewards the velocity
  of the centre of mass, which is not observed; it is recovered from `cinert` (and `cvel`) when they are observed,
  otherwise the root's velocity stands in for it.
* **Contact cost (Ant, Humanoid).** It needs the external contact forces `cfrc_ext`, observed by default in v5
  (`include_cfrc_ext_in_observation=True`; Ant-v4 called this `use_contact_forces`). Without them the contact cost is
  taken as zero, which is a poor guess for Humanoid: its contact cost reaches its cap of 10 when it hits the ground.
* **InvertedDoublePendulum** rewards the tip position from MuJoCo's site kinematics (same RK4-stage caveat) and
  penalises unclipped pole velocities while the observation clips them to +-10: the error is ~1e-4.
* **Hopper** health also checks `|qvel| < 100`, but the observation clips qvel to +-10: a velocity beyond 100 would go
  unseen (it does not happen with the default range in practice).

Other details the functions follow: Pendulum's cost is on the pre-step state with the torque clipped to
`max_torque`; MountainCarContinuous clips the force but charges `0.1 * a^2` on the unclipped action; v5 Reacher and
Pusher compute the reward after the step, from positions that are in the observation (the fingertip-target vector
for Reacher, the three body positions for Pusher); the healthy reward is paid only while healthy, also with
`terminate_when_unhealthy=False`. All functions take the action in env units, work on any leading batch shape, dtype
and device, and return a large negative value instead of NaN when huge finite inputs overflow.

The paper's variants registered by `sb3_poplin.envs` are exact by construction: `sb3_poplin/PETSHalfCheetah-v0`
(PETS' Cheetah: the step's forward velocity is the first observation entry) and `sb3_poplin/FixedSwimmer-v0`
(POPLIN appendix A.2.1: the rewarded velocity is the head tip's, appended to the observation).
"""


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
        document = (
            f"{DOC_HEADER}\n## Measured\n\n"
            f"{args.steps:,} transitions per row with uniformly random actions (seed {args.seed}), "
            f"episodes reset on termination or time limit; errors are against the env's own reward ({versions}).\n\n"
            f"{table}\n\nReproduce (from the repository root):\n\n```bash\n{COMMAND}\n```\n"
        )
        output = Path(args.output)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(document)
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
