"""
What planning in bfloat16 changes in what a trained model does: MPC episodes of the same model planned in float32 and in
bfloat16 (``planning_dtype``), from the same env seeds, with the same deterministic planning.

For each episode seed the float32 episode is played, and at each of its steps the bfloat16 planner plans on the same
observation and warm start: the share of steps whose action differs by more than 0.05 (in [-1, 1] units, any dimension)
is how often rounding changes a decision. CEM's own sampling changes decisions too: the same share for the float32
planner drawing other candidates (the model loaded with another seed, which seeds its deterministic planning) is the
scale to read it against. Then the bfloat16 episode is played on its own: the paired difference of the returns
(bfloat16 less float32) with its 95% interval (t distribution over the seeds) is what rounding changes in the outcome.
The section is written to docs/performance.md (one per model label)::

    python -m benchmarks.bfloat16_quality --algo pets --model logs/.../model.zip --label "PETS, 6k steps" --episodes 20
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from scipy import stats

import sb3_poplin.envs  # noqa: F401  (registers the sb3_poplin/ ids)
from benchmarks.machine import cpu_model, load_average, write_labelled
from sb3_poplin import PETS, POPLIN_A, POPLIN_P, RS

COMMAND = "python -m benchmarks.bfloat16_quality"
ALGOS = {"poplin_p": POPLIN_P, "poplin_a": POPLIN_A, "pets": PETS, "rs": RS}
#: an action dimension further apart than this (in [-1, 1] units) counts as a changed decision
ACTION_TOLERANCE = 0.05
#: the env seeds of the episodes are this plus the episode's index (apart from the seeds of training runs)
SEED_BASE = 50_000


def play(model: Any, env: gym.Env, seed: int, others: Sequence[Any] = ()) -> tuple[float, int, list[int]]:
    """One MPC episode of ``model`` (deterministic planning, warm-started); each of ``others`` also plans on every state
    of the episode, and the steps where its action is more than :data:`ACTION_TOLERANCE` apart are counted.

    :return: the episode's return, its steps and, per other model, the steps with a changed action
    """
    obs, _ = env.reset(seed=seed)
    state, start, total, steps, changed = None, np.array([True]), 0.0, 0, [0] * len(others)
    scale = (env.action_space.high - env.action_space.low) / 2.0  # to [-1, 1] units, as the planner sees actions
    done = False
    while not done:
        action, next_state = model.predict(obs, state=state, episode_start=start, deterministic=True)
        for index, other in enumerate(others):
            other_action, _ = other.predict(obs, state=state, episode_start=start, deterministic=True)
            changed[index] += int(np.max(np.abs(action - other_action) / scale) > ACTION_TOLERANCE)
        obs, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        steps += 1
        state, start = next_state, np.array([False])
        done = terminated or truncated
    return total, steps, changed


def measure(
    algo: str, path: Path, env_id: str | None, episodes: int, report: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Play the episodes; the returns of both dtypes, their paired difference and the share of changed actions.

    :param report: called with the results so far after every episode pair from the second on (a long check stopped
        early still leaves its measured part)
    """
    exact = ALGOS[algo].load(path, device="cpu", planning_dtype="float32")
    rounded = ALGOS[algo].load(path, device="cpu", planning_dtype="bfloat16")
    # the same float32 planner drawing other candidates: its deterministic plans are seeded from the model's seed
    resampled = ALGOS[algo].load(path, device="cpu", planning_dtype="float32", seed=(exact.seed or 0) + 1)
    env = gym.make(env_id or exact.task_env_id)
    float32, bfloat16, steps, changed, resampled_changed = [], [], 0, 0, 0
    for index in range(episodes):
        seed = SEED_BASE + index
        ret, n, (diff, resampled_diff) = play(exact, env, seed, others=(rounded, resampled))
        float32.append(ret)
        steps += n
        changed += diff
        resampled_changed += resampled_diff
        bfloat16.append(play(rounded, env, seed)[0])
        print(
            f"  episode {index + 1}/{episodes}: float32 {ret:8.1f}  bfloat16 {bfloat16[-1]:8.1f}  "
            f"changed {diff}/{n} (other samples: {resampled_diff}/{n})",
            flush=True,
        )
        if report is not None and index >= 1:
            report(summarize(float32, bfloat16, changed, resampled_changed, steps))
    return summarize(float32, bfloat16, changed, resampled_changed, steps)


def summarize(float32: list[float], bfloat16: list[float], changed: int, resampled: int, steps: int) -> dict[str, Any]:
    """The returns of both dtypes, their paired difference with its 95% interval, and the shares of changed actions."""
    difference = np.array(bfloat16) - np.array(float32)
    half = float(stats.t.ppf(0.975, len(difference) - 1) * difference.std(ddof=1) / np.sqrt(len(difference)))
    return dict(
        float32=float32,
        bfloat16=bfloat16,
        difference=float(difference.mean()),
        interval=(float(difference.mean()) - half, float(difference.mean()) + half),
        changed_share=changed / steps,
        resampled_share=resampled / steps,
        steps=steps,
    )


def section(label: str, result: dict[str, Any], command: str, minutes: float, load_start: str) -> str:
    f32, b16 = np.array(result["float32"]), np.array(result["bfloat16"])
    low, high = result["interval"]
    return (
        f"### bfloat16 against float32: {label}\n\n"
        f"*{cpu_model()}, torch {th.__version__}, one thread; load average {load_start} at start, {load_average()} at "
        f"end; {minutes:.0f} min. Command: `{command}`*\n\n"
        f"{len(f32)} MPC episodes per dtype from the same seeds, deterministic planning (the model's saved planning "
        'budget), the same model loaded with `planning_dtype="float32"` and `"bfloat16"`.\n\n'
        "| | float32 | bfloat16 | bfloat16 - float32 (95% interval) | steps whose action moved > 0.05: bfloat16 | "
        "the same, float32 with other candidates |\n"
        "|---|---|---|---|---|---|\n"
        f"| return | {f32.mean():.1f} ± {f32.std():.1f} | {b16.mean():.1f} ± {b16.std():.1f} | "
        f"{result['difference']:+.1f} ({low:+.1f} to {high:+.1f}) | {100 * result['changed_share']:.1f}% of "
        f"{result['steps']:,} | {100 * result['resampled_share']:.1f}% |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algo", required=True, choices=sorted(ALGOS))
    parser.add_argument("--model", type=Path, required=True, help="a zip saved by model.save (e.g. a study run's)")
    parser.add_argument("--label", required=True, help="what the model is, for the section's title")
    parser.add_argument("--env", default=None, help="the env id (default: the one the model was trained on)")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--output", type=Path, default=Path("docs/performance.md"))
    args = parser.parse_args()
    th.set_num_threads(1)
    start, load_start = time.perf_counter(), load_average()
    command = f"{COMMAND} --algo {args.algo} --model <{args.label}> --episodes {args.episodes}"

    def write(result: dict[str, Any]) -> None:
        block = section(args.label, result, command, (time.perf_counter() - start) / 60, load_start)
        write_labelled(args.output, "bfloat16-quality:", args.label, block, "## bfloat16: what it changes")

    result = measure(args.algo, args.model, args.env, args.episodes, report=write)
    write(result)
    print(section(args.label, result, command, (time.perf_counter() - start) / 60, load_start))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
