"""
POPLIN-P against SAC through the rl-zoo3 entry point: same env, seeds, steps and evaluation schedule, one log folder,
and rl-zoo3's all_plots curves (mean evaluation return +/- standard error over seeds) drawn to a PNG.

    python examples/zoo_comparison.py --env Pendulum-v1 --steps 3000 --seeds 0 1   # figure: logs/zoo_comparison/
    python examples/zoo_comparison.py --output docs/zoo_comparison.png              # how the docs' figure was made

Each run is ``python -m sb3_poplin.zoo.train --algo <algo> --env <env> --seed <seed> -n <steps> ...`` with the
hyperparameters of the zoo's files (sb3_poplin/hyperparams/poplin_p.yml, rl-zoo3's sac.yml); its output goes to
``<logs>/<algo>_seed<seed>.log``. The curves come from ``sb3-poplin-zoo all_plots ... -o`` (its pickled results).
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent


def child_env() -> dict[str, str]:
    """The environment of the runs: one torch thread each, and this checkout importable if it is not installed."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    if (REPO_ROOT / "sb3_poplin").is_dir():
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def train(algo: str, seed: int, args: argparse.Namespace) -> tuple[str, int, float, int]:
    """One zoo training run; returns (algo, seed, wall seconds, exit code)."""
    command = [sys.executable, "-m", "sb3_poplin.zoo.train", "--algo", algo, "--env", args.env, "--seed", str(seed)]
    command += ["-n", str(args.steps), "--eval-freq", str(args.eval_freq), "--eval-episodes", str(args.eval_episodes)]
    # -uuid: parallel runs of one algo would otherwise race for the same run id (folder name)
    command += ["-f", str(args.logs), "--num-threads", "1", "-uuid"]
    start = time.perf_counter()
    with open(args.logs / f"{algo}_seed{seed}.log", "w") as log:
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=child_env(), check=False).returncode
    return algo, seed, time.perf_counter() - start, code


def plot(args: argparse.Namespace) -> None:
    """all_plots on the log folder, then its curves to ``args.output``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    results_file = args.logs / "all_plots"
    command = [sys.executable, "-m", "sb3_poplin.zoo.cli", "all_plots", "-a", *args.algos, "-e", args.env]
    command += ["-f", str(args.logs), "-l", "zoo", "--no-display", "--no-million", "-o", str(results_file)]
    subprocess.run(command, env=child_env(), check=True)  # also prints rl-zoo3's markdown table of final returns
    with open(f"{results_file}.pkl", "rb") as file:
        curves = pickle.load(file)[args.env]

    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    for name, curve in sorted(curves.items()):
        timesteps, mean, error = curve["timesteps"], curve["mean"], curve["std_error"]
        label = f"{name.rsplit('-', 1)[0]} ({curve['mean_per_eval'].shape[1]} seeds)"
        axes.plot(timesteps, mean, linewidth=2, label=label)
        axes.fill_between(timesteps, mean - error, mean + error, alpha=0.3)
    axes.set_title(f"{args.env} through rl-zoo3 ({args.steps} steps)")
    axes.set_xlabel("Timesteps")
    axes.set_ylabel(f"Mean return ({args.eval_episodes} episodes)")
    axes.grid(alpha=0.3)
    axes.legend(title="mean +/- standard error over seeds")
    figure.tight_layout()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.output, dpi=120)
    print(f"Saved {args.output}")
    for name, curve in sorted(curves.items()):
        print(f"{name}: final evaluation per seed {np.round(curve['last_evals'], 1).tolist()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="Pendulum-v1")
    parser.add_argument("--algos", nargs="+", default=["poplin_p", "sac"], help="zoo algorithm names")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--eval-freq", type=int, default=500)
    parser.add_argument("--eval-episodes", type=int, default=5)
    # On a small machine parallel runs slow each other down more than they gain (memory bandwidth, shared cores).
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (each uses one thread)")
    parser.add_argument("--logs", type=Path, default=Path("logs/zoo_comparison"))
    # Not docs/zoo_comparison.png by default: running from a checkout must not overwrite the committed figure.
    parser.add_argument("--output", type=Path, default=None, help="the figure (default: <logs>/zoo_comparison.png)")
    parser.add_argument("--plot-only", action="store_true", help="skip training, plot what is in --logs")
    args = parser.parse_args()
    if args.output is None:
        args.output = args.logs / "zoo_comparison.png"

    args.logs.mkdir(parents=True, exist_ok=True)
    if not args.plot_only:
        # the slow runs (POPLIN, which plans at every step) first, so parallel jobs finish close together
        runs = [(algo, seed) for algo in args.algos for seed in args.seeds]
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for algo, seed, seconds, code in pool.map(lambda run: train(*run, args), runs):
                status = "ok" if code == 0 else f"FAILED (exit {code}, see {args.logs / f'{algo}_seed{seed}.log'})"
                print(f"{algo:<10} seed {seed}: {seconds:7.1f} s  {status}", flush=True)
    plot(args)


if __name__ == "__main__":
    main()
