"""
sb3-poplin against mbrl-lib's PETS at equal work, interleaved in one run: ms per planning step and FLOP-efficiency.

Both sides plan for one HalfCheetah-v5-sized state (17-dim observation, 6-dim action) with random ensembles of the same
shape, the same population, elites, horizon, CEM iterations and smoothing, the same particles and propagation, and the
same reward (forward velocity at the end of the step minus 0.1 x the squared action; never terminating). mbrl-lib runs
in its own virtual environment (built here from the package index on first use, see ``MBRL_REQUIREMENTS``), ours in
this interpreter; each side is a long-lived worker process, and the driver asks them for planning steps in alternating
rounds (the order flips every round), so that both see the same machine load. Each timed step is followed, in the same
process, by its *roof*: the same ensemble forward passes (same count and shapes) as bare ``baddbmm`` + SiLU chains
(:class:`benchmarks.roof.Roof`); FLOP-efficiency = roof / time.

Configurations: the POPLIN paper's (population 500, 50 elites, horizon 30, 5 iterations, 5 members of 4x200 SiLU,
expectation propagation) and mbrl-lib's default PETS style (population 350, 35 elites, horizon 15, 5 iterations,
20 particles with TSinf propagation, same ensemble). Ours: PETS, and POPLIN-P sep (policy [32] tanh) drawing its CEM
samples afresh, mirrored (``cem_mirrored``) and from a noise table (``cem_noise_table``).
Run from the repository root (one torch thread per side by default)::

    python -m benchmarks.vs_mbrl_lib                  # builds .venv-mbrl if needed, ~15 min, writes docs/performance.md
    python -m benchmarks.vs_mbrl_lib --quick          # smoke run on a small configuration, prints only
    python -m benchmarks.vs_mbrl_lib --install-only   # just build mbrl-lib's environment

This is a benchmark, not a test: nothing in the test suite or CI runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch as th

from benchmarks.machine import cpu_model, load_average, write_marked

COMMAND = "python -m benchmarks.vs_mbrl_lib"
REPO = Path(__file__).resolve().parent.parent
MBRL_VERSION = "0.2.0"
#: What mbrl-lib's model and planning code imports, installed with its own pins where they work on this Python.
#: mbrl itself is then installed without its dependencies; docs/performance.md says what was relaxed and why.
MBRL_REQUIREMENTS = [
    f"torch=={th.__version__.split('+')[0]}",  # the same torch as ours: a comparison of the code, not of the build
    "gymnasium==0.26.3",  # mbrl-lib's pin, kept
    "hydra-core>=1.1",  # relaxed from ==1.0.3, whose dataclasses fail to import on Python 3.11
    "omegaconf>=2.1",  # relaxed from >=2.0,<2.1, which hydra-core 1.1+ needs
    "numpy>=1.19.1",
    "termcolor>=1.1.0",
    "tqdm>=4.48.2",
]
#: mbrl-lib's requirements that its model and planning code never imports, left out of its environment.
MBRL_LEFT_OUT = ["jupyter", "tensorboard", "sk-video", "pytest", "imageio", "matplotlib"]

OBS_DIM, ACT_DIM, VELOCITY_INDEX, CTRL_COST = 17, 6, 8, 0.1
HIDDEN = [200, 200, 200, 200]
CONFIGS: dict[str, dict[str, Any]] = {
    "paper": dict(population=500, n_elites=50, horizon=30, iterations=5, propagation="expectation", particles=1),
    "mbrl-lib default": dict(population=350, n_elites=35, horizon=15, iterations=5, propagation="fixed_model", particles=20),
    "quick": dict(population=100, n_elites=10, horizon=10, iterations=3, propagation="expectation", particles=1),
}
THEIRS = "mbrl-lib PETS"
OURS = (
    "sb3-poplin PETS",
    "sb3-poplin POPLIN-P sep",
    "sb3-poplin POPLIN-P sep mirrored",
    "sb3-poplin POPLIN-P sep noise table",
)
#: the noise table of the "noise table" planner (``cem_noise_table``): 64 MB of float32, ~700 candidates' noise at the
#: paper configuration
NOISE_TABLE_SIZE = 1 << 24


# ----------------------------------------------------------------------------------------------------------------------
# Our side (a worker process in this interpreter)
# ----------------------------------------------------------------------------------------------------------------------
def build_ours(cfg: dict[str, Any]) -> dict[str, Any]:
    """Our PETS and POPLIN-P sep planners for ``cfg``, each with its step function, timer and roof."""
    from benchmarks.roof import CallTimer, Roof
    from sb3_poplin import PETS, POPLIN_P
    from sb3_poplin.common.engine import EnvBinding, build_engine
    from sb3_poplin.common.options import resolve
    from sb3_poplin.common.policies import PolicyNetwork
    from sb3_poplin.common.processing import DeltaProcessing
    from sb3_poplin.rewards import get_task_fns

    obs_dim, act_dim, members, hidden = cfg["obs_dim"], cfg["act_dim"], cfg["members"], cfg["hidden"]
    velocity, ctrl_cost = cfg["velocity_index"], cfg["ctrl_cost"]
    _, never = get_task_fns("HalfCheetah-v5")  # HalfCheetah's registered termination: never

    def reward_fn(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        # [..]: the same formula as mbrl-lib's side (which sees only the action and the next state)
        return next_obs[..., velocity] - ctrl_cost * action.square().sum(dim=-1)

    binding = EnvBinding(
        obs_dim=obs_dim,
        act_dim=act_dim,
        action_low=-th.ones(act_dim),
        action_high=th.ones(act_dim),
        reward_fn=reward_fn,
        termination_fn=never,
        processing=DeltaProcessing(),
    )
    planners = {}
    for name in OURS:
        th.manual_seed(cfg["seed"])
        pets = name.endswith("PETS")
        settings = dict(
            population_size=cfg["population"],
            n_elites=cfg["n_elites"],
            cem_iterations=cfg["iterations"],
            cem_alpha=0.1,
            cem_mirrored=name.endswith("mirrored"),
            cem_noise_table=NOISE_TABLE_SIZE if name.endswith("noise table") else 0,
            horizon=cfg["horizon"],
            propagation=cfg["propagation"],
            num_particles=cfg["particles"],
            ensemble_size=members,
            dynamics_net_arch=list(hidden),
            init_sigma=0.5 if pets else 0.1,
        )
        policy = None if pets else PolicyNetwork(obs_dim, act_dim, [32])
        if not pets:
            settings["planning_variant"] = "sep"
        algorithm = PETS if pets else POPLIN_P
        engine = build_engine(
            resolve(algorithm.options, settings), binding, "actions" if pets else "policy_parameters", policy
        )
        model, planner = engine.dynamics, engine.planner
        model.fit_input_normalizer(th.randn(4096, obs_dim + act_dim) * 2.0 + 0.5)
        model.eval()
        generator = th.Generator().manual_seed(cfg["seed"])
        obs = th.randn(1, obs_dim, generator=th.Generator().manual_seed(cfg["seed"]))
        state: dict[str, Any] = {"mean": None}

        def step(planner: Any = planner, generator: th.Generator = generator, obs: th.Tensor = obs, state: dict = state):
            out = planner.plan(obs, state["mean"], generator)
            state["mean"] = planner.warm_start_after(out)

        for _ in range(cfg["warmup"]):
            step()
        targets = [(model, "forward_elites", "model"), (model, "forward_elites_mean", "model")]
        if policy is not None:
            targets.append((policy, "forward_batched", "policy"))
        timer = CallTimer(lambda x, *args, **kwargs: x.shape[-2])  # rows per member of each call
        planners[name] = (step, timer, targets, Roof(members, hidden, obs_dim + act_dim, obs_dim, th.device("cpu")))
    return planners


def worker_main(cfg_json: str) -> None:
    from benchmarks.roof import serve

    cfg = json.loads(cfg_json)
    th.set_num_threads(cfg["threads"])
    serve(build_ours(cfg))


# ----------------------------------------------------------------------------------------------------------------------
# mbrl-lib's environment
# ----------------------------------------------------------------------------------------------------------------------
def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_mbrl_venv(venv: Path) -> dict[str, str]:
    """Create mbrl-lib's virtual environment if it is missing or broken; return the versions that matter there."""
    python = venv_python(venv)
    probe = "import json, mbrl, torch, numpy, hydra, omegaconf, gymnasium as g; print(json.dumps({m.__name__: m.__version__ for m in (mbrl, torch, numpy, hydra, omegaconf, g)}))"  # noqa: E501
    if python.exists():
        done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
        if done.returncode == 0:
            return json.loads(done.stdout.strip().splitlines()[-1])
    print(f"building mbrl-lib's environment in {venv} (a few minutes)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, *MBRL_REQUIREMENTS], check=True)
    subprocess.run([*pip, "--no-deps", f"mbrl=={MBRL_VERSION}"], check=True)
    done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------------------------------------------------
class Worker:
    """A side's worker process, asked for timed planning steps one JSON line at a time."""

    def __init__(self, argv: list[str]) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO, env=env)
        self.planners = self._read()["ready"]

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"worker {self.proc.args[:3]} exited with {self.proc.wait()}")
            if line.startswith("{"):
                return json.loads(line)

    def measure(self, planner: str, reps: int) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"planner": planner, "reps": reps}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def roof(self, calls: list[int], reps: int) -> list[float]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"roof": calls, "reps": reps}) + "\n")
        self.proc.stdin.flush()
        return self._read()["roof_s"]

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.write(json.dumps({"quit": True}) + "\n")
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def compare(config: str, venv: Path, rounds: int, reps: int, threads: int) -> list[dict[str, Any]]:
    """Interleaved rounds of every planner of both sides at one configuration; per planner: medians and paired ratios."""
    cfg = dict(
        CONFIGS[config],
        obs_dim=OBS_DIM,
        act_dim=ACT_DIM,
        members=5,
        hidden=HIDDEN,
        velocity_index=VELOCITY_INDEX,
        ctrl_cost=CTRL_COST,
        threads=threads,
        seed=0,
        warmup=2,
    )
    theirs = Worker([str(venv_python(venv)), "-m", "benchmarks.mbrl_lib_side", json.dumps(cfg)])
    ours = Worker([sys.executable, "-m", "benchmarks.vs_mbrl_lib", "--worker", json.dumps(cfg)])
    order = [(theirs, THEIRS)] + [(ours, name) for name in OURS]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for _, name in order}
    # Rows per member of each model call of one step (expectation: all members on every row; sampled propagation:
    # the particles split evenly over the members): the roof that both processes time as a control.
    rows = cfg["population"] * cfg["particles"] // (1 if cfg["propagation"] == "expectation" else cfg["members"])
    calls = [rows] * (cfg["horizon"] * cfg["iterations"])
    control: dict[str, list[float]] = {"theirs": [], "ours": []}
    try:
        for r in range(rounds):
            # Flip the order every round, so that neither side always runs right after the other.
            for worker, name in order if r % 2 == 0 else order[::-1]:
                runs[name].append(worker.measure(name, reps))
            # Control: the same bare work in both processes should take the same time.
            for worker, side in [(theirs, "theirs"), (ours, "ours")][:: 1 if r % 2 else -1]:
                control[side] += worker.roof(calls, 1)
            line = "  ".join(f"{name} {1e3 * median(runs[name][-1]['step_s']):.0f} ms" for _, name in order)
            print(f"  {config} round {r + 1}/{rounds}: {line}", flush=True)
    finally:
        theirs.close()
        ours.close()
    results = []
    control_ratio = median([t / o for t, o in zip(control["theirs"], control["ours"])])
    print(f"  {config}: the same roof in mbrl-lib's process / in ours: {control_ratio:.2f}", flush=True)
    base = [median(run["step_s"]) for run in runs[THEIRS]]
    for _, name in order:
        steps = [s for run in runs[name] for s in run["step_s"]]
        models = [s for run in runs[name] for s in run["model_s"]]
        roofs = [s for run in runs[name] for s in run["roof_s"]]
        # Ratio of mbrl-lib's step to this one, paired within each round (same machine load).
        ratios = [b / median(run["step_s"]) for b, run in zip(base, runs[name])]
        results.append(
            {
                "config": config,
                "planner": name,
                "step_ms": 1e3 * median(steps),
                "model_ms": 1e3 * median(models),
                "roof_ms": 1e3 * median(roofs),
                "model_eff": median([r / m for r, m in zip(roofs, models)]),
                "step_eff": median([r / s for r, s in zip(roofs, steps)]),
                "gflops_roof": runs[name][0]["flops"] / median(roofs) / 1e9,
                "ratio": median(ratios),
                "ratio_min": min(ratios),
                "ratio_max": max(ratios),
                "steps": len(steps),
                "control": control_ratio,
            }
        )
    return results


def table(results: list[dict[str, Any]]) -> str:
    rows = [
        "| config | planner | ms / step | model ms | roof ms | FLOP-eff. of the model (roof / model) "
        "| FLOP-eff. of the step (roof / step) | mbrl-lib PETS / this (median, min-max over rounds) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ratio = f"**{r['ratio']:.2f}x** ({r['ratio_min']:.2f}-{r['ratio_max']:.2f})"
        if r["planner"] == THEIRS:
            ratio = "1 (reference)"
        rows.append(
            f"| {r['config']} | {r['planner']} | {r['step_ms']:.0f} | {r['model_ms']:.0f} | {r['roof_ms']:.0f} "
            f"| {r['model_eff']:.0%} | {r['step_eff']:.0%} | {ratio} |"
        )
    return "\n".join(rows)


def write_section(path: Path, body: str, config: str) -> None:
    """Replace (or add, after the benchmark's other sections) its own section for ``config`` in ``path``."""
    write_marked(path, f"vs-mbrl-lib:{config.replace(' ', '-')}", body, group="vs-mbrl-lib:")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # our side's worker process
    parser.add_argument("--venv", default=".venv-mbrl", help="mbrl-lib's virtual environment (built if missing)")
    parser.add_argument("--configs", nargs="*", default=["paper", "mbrl-lib default"], choices=sorted(CONFIGS))
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds per configuration")
    parser.add_argument("--reps", type=int, default=2, help="planning steps per planner and round")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each side")
    parser.add_argument("--quick", action="store_true", help="smoke run: small configuration, 2 rounds, prints only")
    parser.add_argument("--install-only", action="store_true", help="build mbrl-lib's environment and stop")
    parser.add_argument("--output", default=None, help="markdown report (default docs/performance.md; none with --quick)")
    args = parser.parse_args()
    if args.worker is not None:
        worker_main(args.worker)
        return

    venv = (REPO / args.venv).resolve() if not Path(args.venv).is_absolute() else Path(args.venv)
    versions = ensure_mbrl_venv(venv)
    print("mbrl-lib's environment: " + ", ".join(f"{k} {v}" for k, v in versions.items()), flush=True)
    if args.install_only:
        return
    configs, rounds, reps = (["quick"], 2, 1) if args.quick else (args.configs, args.rounds, args.reps)
    output = args.output if args.output is not None else (None if args.quick else "docs/performance.md")
    for config in configs:
        load_start, started = load_average(), time.perf_counter()
        results = compare(config, venv, rounds, reps, args.threads)
        print(table(results), flush=True)
        if not output:
            continue

        c = CONFIGS[config]
        body = (
            f"### sb3-poplin vs mbrl-lib PETS: {config} configuration (measured)\n\n"
            f"*{cpu_model()}, {args.threads} torch thread(s) per side, torch {th.__version__} on both sides, Python "
            f"{platform.python_version()}; mbrl-lib's environment: "
            + ", ".join(f"{k} {v}" for k, v in versions.items())
            + f"; load average (1/5/15 min) {load_start} at start, {load_average()} at end; "
            f"{(time.perf_counter() - started) / 60:.1f} min, {rounds} interleaved rounds of {reps} step(s) per planner. "
            f"Command: `{' '.join([COMMAND, *sys.argv[1:]])}`*\n\n"
            f"Population {c['population']}, {c['n_elites']} elites, horizon {c['horizon']}, {c['iterations']} CEM "
            f"iterations, {c['particles']} particle(s) per candidate, {c['propagation']} propagation; 5 members of 4x200 "
            "SiLU (all elite); HalfCheetah-v5 sizes (obs 17, action 6).\n\n"
            + table(results)
            + f"\n\nControl: the same bare roof took {results[0]['control']:.2f}x as long in mbrl-lib's process as in ours "
            "(median over rounds; 1 = the two processes get the same machine)."
        )
        write_section(REPO / output, body, config)
        print(f"wrote {output}")


if __name__ == "__main__":
    main()
