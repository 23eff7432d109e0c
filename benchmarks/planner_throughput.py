"""
Planning at the speed of the hardware: throughput of every planner against a bare-matmul roof, measured in one process.

For PETS (ActionSequencePlanner), POPLIN-A init/replan and POPLIN-P uni/sep, at the paper's configuration (population
500, 50 elites, horizon 30, 5 CEM iterations, 5 members of 4x200 SiLU, expectation propagation) and at a small one
(population 100, horizon 15, 3 members of 2x64), on a HalfCheetah-v5-sized model (17-dim obs, 6-dim action) and a
Pendulum-v1-sized one (3, 1), it measures:

* wall time per planning step (median over repetitions) and model transitions per second;
* the roof: the same ensemble forward passes as the planner made (same count, same shapes) done as bare chains of
  ``th.baddbmm`` and the activation, timed interleaved with the planner so both see the same machine load;
  FLOP-efficiency = roof time / time the planner spent inside the model;
* where the step goes: inside the model, in the policy network (for POPLIN-P: the perturbed policies of all candidates),
  and everything else (CEM sampling and sorting, rewards, bookkeeping);
* planning in bfloat16 (``planning_dtype``) against float32 at the paper configuration, with a bfloat16 roof beside the
  float32 one, and the bfloat16 planner's scaling from one thread to two;
* the optimizers (CEM, iCEM, MPPI) side by side at the study's CPU budget, for PETS and POPLIN-P sep;
* the distilled policy's ``predict`` latency against SAC's on HalfCheetah-v5;
* dynamics training time per iteration as the data grows, and the replay buffer's memory at 200k steps;
* peak resident memory of planning and allocation growth over many planning steps.

Planners are built as the algorithms build theirs (``sb3_poplin.common.engine.build_engine``), with random (untrained)
networks: throughput does not depend on what the networks learned. Run from the repository root::

    python -m benchmarks.planner_throughput              # full run (about 15-30 min on 2 cores), writes docs/performance.md
    python -m benchmarks.planner_throughput --quick      # smoke run (about a minute), prints only
    python -m benchmarks.planner_throughput --device cuda --cuda-graph   # GPU: eager and graph-captured plans
    python -m benchmarks.planner_throughput --against main~5   # this tree against an earlier revision, alternating
    python -m benchmarks.planner_throughput --skip planners optimizers predict training memory   # bfloat16 only
    python -m benchmarks.planner_throughput --skip planners bfloat16 predict training memory     # the optimizers only
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import math
import os
import platform
import resource
import statistics
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces

from benchmarks.machine import cpu_model, load_average, write_marked
from benchmarks.roof import Roof
from sb3_poplin import PETS, POPLIN_A, POPLIN_P
from sb3_poplin.common.buffers import PlanningReplayBuffer
from sb3_poplin.common.dynamics import ProbabilisticEnsemble, make_adam
from sb3_poplin.common.engine import EnvBinding, build_engine
from sb3_poplin.common.options import resolve
from sb3_poplin.common.planners import Planner
from sb3_poplin.common.policies import PolicyNetwork
from sb3_poplin.common.precision import native_bfloat16
from sb3_poplin.common.processing import DeltaProcessing
from sb3_poplin.rewards import get_task_fns

COMMAND = "python -m benchmarks.planner_throughput"


@dataclass(frozen=True)
class Config:
    """A planning configuration.

    :param name: label
    :param population: CEM candidates per iteration
    :param n_elites: CEM elites
    :param horizon: planning horizon
    :param iterations: CEM iterations
    :param members: ensemble members (all elites)
    :param hidden: hidden widths of each member
    """

    name: str
    population: int
    n_elites: int
    horizon: int
    iterations: int
    members: int
    hidden: tuple[int, ...]

    @property
    def transitions(self) -> int:
        """Imagined transitions per planning step (expectation: one particle per candidate)."""
        return self.population * self.horizon * self.iterations


PAPER = Config("paper", 500, 50, 30, 5, 5, (200, 200, 200, 200))
SMALL = Config("small", 100, 10, 15, 5, 3, (64, 64))
# env id -> (obs dim, act dim, action bound)
ENVS: dict[str, tuple[int, int, float]] = {"HalfCheetah-v5": (17, 6, 1.0), "Pendulum-v1": (3, 1, 2.0)}
PLANNERS = ("PETS", "POPLIN-A init", "POPLIN-A replan", "POPLIN-P uni", "POPLIN-P sep")
# Policy networks of the algorithms' MlpPolicy defaults; initial noise std of each planner.
POLICY_ARCH = {"A": [64, 64], "P": [32]}
SIGMA = {"PETS": 0.5, "A": 0.5, "P": 0.1}
#: each planner family's algorithm (whose options' defaults it plans with) and registered planner
ALGORITHMS: dict[str, tuple[type, str]] = {
    "PETS": (PETS, "actions"),
    "A": (POPLIN_A, "policy_actions"),
    "P": (POPLIN_P, "policy_parameters"),
}


# ----------------------------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------------------------
def synchronize(device: th.device) -> None:
    if device.type == "cuda":
        th.cuda.synchronize(device)


def rss_mb() -> float:
    """Current resident set size of this process in MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def build_planner(
    kind: str,
    cfg: Config,
    env_id: str,
    device: th.device,
    cuda_graph: bool = False,
    dtype: th.dtype = th.float32,
    options: dict[str, Any] | None = None,
) -> Planner:
    """A planner of ``kind``, built as the algorithms build theirs (:func:`~sb3_poplin.common.engine.build_engine`), on a
    random ensemble whose whitening is fitted on synthetic data of the env's size, planning its matrix products in
    ``dtype``.

    :param options: the algorithm's options to set beyond ``cfg``'s (e.g. ``optimizer="icem"``); they override it
    """
    obs_dim, act_dim, bound = ENVS[env_id]
    th.manual_seed(0)
    family = "PETS" if kind == "PETS" else kind.split(" ")[0][-1]  # "POPLIN-A init" -> "A"
    algorithm, planner_name = ALGORITHMS[family]
    settings: dict[str, Any] = dict(
        population_size=cfg.population,
        n_elites=cfg.n_elites,
        cem_iterations=cfg.iterations,
        horizon=cfg.horizon,
        ensemble_size=cfg.members,
        dynamics_net_arch=list(cfg.hidden),
        init_sigma=SIGMA[family],
        cuda_graph=cuda_graph,
    )
    settings.update(options or {})
    policy = None
    if family != "PETS":
        settings["planning_variant"] = kind.split(" ")[1]
        policy = PolicyNetwork(obs_dim, act_dim, POLICY_ARCH[family]).to(device)
    reward_fn, termination_fn = get_task_fns(env_id)
    binding = EnvBinding(
        obs_dim=obs_dim,
        act_dim=act_dim,
        action_low=th.full((act_dim,), -bound),
        action_high=th.full((act_dim,), bound),
        reward_fn=reward_fn,
        termination_fn=termination_fn,
        processing=DeltaProcessing(),
        device=device,
    )
    engine = build_engine(resolve(algorithm.options, settings), binding, planner_name, policy)
    engine.dynamics.fit_input_normalizer(th.randn(4096, obs_dim + act_dim, device=device) * 2.0 + 0.5)
    engine.dynamics.eval()
    # set here, not through ``planning_dtype``: a benchmark may time bfloat16 where the CPU has no native support
    engine.dynamics.planning_dtype = dtype
    engine.planner.compute_dtype = dtype
    return engine.planner


class Probe:
    """Times the model and policy calls of one planner (wrapping their entry points) and records the model's shapes.

    :param planner: the planner to watch
    :param device: where it runs (CUDA calls are synchronised around each timed call)
    """

    def __init__(self, planner: Planner, device: th.device) -> None:
        self.model = planner.rollout.dynamics
        self.policy = getattr(planner, "policy_net", None)
        self.device = device
        self.model_s = self.policy_s = 0.0
        self.calls: list[int] = []  # rows of each ensemble forward pass
        self._depth = 0

    def reset(self) -> None:
        self.model_s = self.policy_s = 0.0
        self.calls = []

    def _wrap(self, fn: Callable[..., Any], kind: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if self._depth:  # a nested call (e.g. one entry point using the other) is already being timed
                return fn(*args, **kwargs)
            self._depth += 1
            synchronize(self.device)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                synchronize(self.device)
                elapsed = time.perf_counter() - start
                self._depth -= 1
                if kind == "model":
                    self.model_s += elapsed
                    self.calls.append(args[0].shape[-2])
                else:
                    self.policy_s += elapsed

        return timed

    @contextmanager
    def installed(self) -> Iterator[Probe]:
        """Shadow the entry points with timed versions (instance attributes) for the duration of the block."""
        targets = [(self.model, "forward_elites", "model"), (self.model, "forward_elites_mean", "model")]
        if self.policy is not None:
            targets += [(self.policy, "forward", "policy"), (self.policy, "forward_batched", "policy")]
        installed = []
        for obj, name, kind in targets:
            if hasattr(obj, name):
                object.__setattr__(obj, name, self._wrap(getattr(obj, name), kind))
                installed.append((obj, name))
        try:
            yield self
        finally:
            for obj, name in installed:
                object.__delattr__(obj, name)


# ----------------------------------------------------------------------------------------------------------------------
# 1. Planner throughput
# ----------------------------------------------------------------------------------------------------------------------
@dataclass
class PlannerResult:
    env_id: str
    config: str
    planner: str
    step_ms: float
    transitions_per_s: float
    model_ms: float
    roof_ms: float
    efficiency: float
    outside_share: float
    policy_share: float
    roof_gflops: float
    graph_step_ms: float | None = None
    reps: int = 0
    notes: list[str] = field(default_factory=list)


def bench_planner(
    kind: str, cfg: Config, env_id: str, device: th.device, reps: int, warmup: int, cuda_graph: bool
) -> PlannerResult:
    obs_dim, act_dim, _ = ENVS[env_id]
    planner = build_planner(kind, cfg, env_id, device)
    roof = Roof(cfg.members, cfg.hidden, obs_dim + act_dim, obs_dim, device)
    probe = Probe(planner, device)
    generator = th.Generator(device=device).manual_seed(0)
    obs = th.randn(1, obs_dim, device=device)
    mean: th.Tensor | None = None

    def plan() -> None:
        nonlocal mean
        out = planner.plan(obs, mean, generator)
        mean = planner.warm_start_after(out)

    for _ in range(warmup):
        plan()
    with probe.installed():
        plan()
    calls = list(probe.calls)
    roof.run(calls)  # warm the roof's inputs

    walls, totals, models, policies, roofs = [], [], [], [], []
    for _ in range(reps):
        # Plain wall time (no probes), then the same step instrumented, then the roof: interleaved, so that a change
        # of machine load between repetitions affects the three alike.
        if device.type == "cuda":
            synchronize(device)
            start = time.perf_counter()
            plan()
            synchronize(device)
            walls.append(time.perf_counter() - start)
        probe.reset()
        with probe.installed():
            start = time.perf_counter()
            plan()
            synchronize(device)
            totals.append(time.perf_counter() - start)
        models.append(probe.model_s)
        policies.append(probe.policy_s)
        synchronize(device)
        start = time.perf_counter()
        roof.run(calls)
        synchronize(device)
        roofs.append(time.perf_counter() - start)
    # On CPU the probes cost two clock reads per call, so the instrumented step is the wall time; on CUDA they
    # synchronise, so the wall time comes from the plain steps.
    step = median(walls) if walls else median(totals)
    result = PlannerResult(
        env_id=env_id,
        config=cfg.name,
        planner=kind,
        step_ms=1e3 * step,
        transitions_per_s=cfg.transitions / step,
        model_ms=1e3 * median(models),
        roof_ms=1e3 * median(roofs),
        efficiency=median([r / m for r, m in zip(roofs, models)]),
        outside_share=median([(t - m) / t for t, m in zip(totals, models)]),
        policy_share=median([p / t for t, p in zip(totals, policies)]),
        roof_gflops=roof.flops(calls) / median(roofs) / 1e9,
        reps=reps,
    )
    if cuda_graph and device.type == "cuda":
        graphed = build_planner(kind, cfg, env_id, device, cuda_graph=True)
        graph_gen = th.Generator(device=device).manual_seed(0)
        graph_mean: th.Tensor | None = None
        times = []
        for i in range(warmup + reps):
            synchronize(device)
            start = time.perf_counter()
            out = graphed.plan(obs, graph_mean, graph_gen)
            synchronize(device)
            if i >= warmup:
                times.append(time.perf_counter() - start)
            graph_mean = graphed.warm_start_after(out)
        result.graph_step_ms = 1e3 * median(times)
        if graphed._captured is None:
            result.notes.append("graph capture failed: eager")
    return result


# ----------------------------------------------------------------------------------------------------------------------
# 1b. Planning in bfloat16
# ----------------------------------------------------------------------------------------------------------------------
#: the planners of the dtype comparison (the paper's POPLIN-P variant, POPLIN-A's and PETS)
DTYPE_PLANNERS = ("PETS", "POPLIN-A init", "POPLIN-P sep")


@dataclass
class DtypeResult:
    planner: str
    float32_ms: float
    bfloat16_ms: float
    speedup: float
    roof_float32_ms: float
    roof_bfloat16_ms: float
    two_threads_speedup: float | None = None


def bench_dtypes(device: th.device, rounds: int, two_threads: bool) -> list[DtypeResult]:
    """Planning steps in float32 and bfloat16 at the paper config (HalfCheetah-v5 sizes), with both roofs, interleaved.

    Each round times one warm-started step of each dtype and each roof's replay of the same model calls, in turn; the
    speedup is the median of the rounds' ratios. With ``two_threads``, the bfloat16 planner also plans with two torch
    threads, interleaved with one, and its scaling is the median ratio (the machine's other processes idle, ideally).
    """
    results = []
    for kind in DTYPE_PLANNERS:
        result = bench_dtype(kind, device, rounds, two_threads)
        results.append(result)
        print(
            f"  {kind:14s} float32 {result.float32_ms:7.0f} ms  bfloat16 {result.bfloat16_ms:7.0f} ms  "
            f"x{result.speedup:.2f}  roofs {result.roof_float32_ms:.0f} / {result.roof_bfloat16_ms:.0f} ms"
            + (f"  2 threads x{result.two_threads_speedup:.2f}" if result.two_threads_speedup is not None else ""),
            flush=True,
        )
    return results


class _WarmStartedPlans:
    """Planners side by side, each planning warm-started steps from its own generator on one observation.

    :param planners: the planners, by the key :meth:`step` takes
    :param obs_dim: the size of the observation they plan from
    """

    def __init__(self, planners: dict[Any, Planner], obs_dim: int, device: th.device) -> None:
        self.device = device
        self.planners = planners
        self.obs = th.randn(1, obs_dim, device=device)
        self.means: dict[Any, th.Tensor | None] = dict.fromkeys(planners)
        self.generators = {key: th.Generator(device=device).manual_seed(0) for key in planners}

    def step(self, key: Any) -> float:
        """Plan one step with the planner ``key``; its wall time (s)."""
        synchronize(self.device)
        start = time.perf_counter()
        out = self.planners[key].plan(self.obs, self.means[key], self.generators[key])
        synchronize(self.device)
        self.means[key] = self.planners[key].warm_start_after(out)
        return time.perf_counter() - start


def bench_dtype(kind: str, device: th.device, rounds: int, two_threads: bool) -> DtypeResult:
    """One planner of :func:`bench_dtypes`."""
    obs_dim, act_dim, _ = ENVS["HalfCheetah-v5"]
    dtypes = (th.float32, th.bfloat16)
    planners = {dtype: build_planner(kind, PAPER, "HalfCheetah-v5", device, dtype=dtype) for dtype in dtypes}
    plans = _WarmStartedPlans(planners, obs_dim, device)
    roofs = {dtype: Roof(PAPER.members, PAPER.hidden, obs_dim + act_dim, obs_dim, device, dtype) for dtype in plans.planners}
    probe = Probe(plans.planners[th.float32], device)
    for dtype in plans.planners:
        plans.step(dtype)  # warm-up
    with probe.installed():
        plans.step(th.float32)
    calls = list(probe.calls)
    for roof in roofs.values():
        roof.run(calls)
    times: dict[str, list[float]] = {"float32": [], "bfloat16": [], "roof float32": [], "roof bfloat16": []}
    for _ in range(rounds):
        for dtype, name in ((th.float32, "float32"), (th.bfloat16, "bfloat16")):
            times[name].append(plans.step(dtype))
            synchronize(device)
            start = time.perf_counter()
            roofs[dtype].run(calls)
            synchronize(device)
            times[f"roof {name}"].append(time.perf_counter() - start)
    scaling = None
    if two_threads and device.type == "cpu":
        threads = th.get_num_threads()
        one, two = [], []
        for _ in range(rounds):
            th.set_num_threads(1)
            one.append(plans.step(th.bfloat16))
            th.set_num_threads(2)
            two.append(plans.step(th.bfloat16))
        th.set_num_threads(threads)
        scaling = median([a / b for a, b in zip(one, two)])
    return DtypeResult(
        planner=kind,
        float32_ms=1e3 * median(times["float32"]),
        bfloat16_ms=1e3 * median(times["bfloat16"]),
        speedup=median([a / b for a, b in zip(times["float32"], times["bfloat16"])]),
        roof_float32_ms=1e3 * median(times["roof float32"]),
        roof_bfloat16_ms=1e3 * median(times["roof bfloat16"]),
        two_threads_speedup=scaling,
    )


def dtype_table(results: list[DtypeResult]) -> str:
    two = any(r.two_threads_speedup is not None for r in results)
    lines = [
        "| planner | float32 ms/step | bfloat16 ms/step | speedup | float32 roof ms | bfloat16 roof ms | roof speedup |"
        + (" bfloat16, 2 threads / 1 |" if two else ""),
        "|---|---|---|---|---|---|---|" + ("---|" if two else ""),
    ]
    for r in results:
        lines.append(
            f"| {r.planner} | {r.float32_ms:.0f} | {r.bfloat16_ms:.0f} | {r.speedup:.2f}x | {r.roof_float32_ms:.0f} | "
            f"{r.roof_bfloat16_ms:.0f} | {r.roof_float32_ms / r.roof_bfloat16_ms:.2f}x |"
            + (f" {r.two_threads_speedup:.2f}x |" if r.two_threads_speedup is not None else (" |" if two else ""))
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------------------
# 1c. The optimizers side by side
# ----------------------------------------------------------------------------------------------------------------------
#: the CPU budget of the study's entries (pets-cheetah's ``cpu`` base), on HalfCheetah-v5 sizes
CPU_BUDGET = Config("cpu budget", 100, 10, 15, 3, 5, (200, 200, 200, 200))
#: each optimizer as the study's entries set it: iCEM's first population of 123 shrinks so that its 3 iterations score
#: CEM's 3 x 100 candidates (299); MPPI with its defaults
OPTIMIZERS: dict[str, dict[str, Any]] = {
    "cem": {},
    "icem": dict(optimizer="icem", population_size=123, icem_noise_beta=0.25),
    "mppi": dict(optimizer="mppi"),
}
OPTIMIZER_PLANNERS = ("PETS", "POPLIN-P sep")


@dataclass
class OptimizerResult:
    planner: str
    optimizer: str
    candidates: float  # rolled out per planning step (model rows per call, summed over the calls of one step / horizon)
    step_ms: float
    model_share: float  # of the step, inside the ensemble's forward passes
    ratio: float  # step time over CEM's, median of the rounds' ratios


def bench_optimizers(device: th.device, rounds: int) -> list[OptimizerResult]:
    """Warm-started planning steps of each optimizer at the study's CPU budget, one step of each in turn per round (so a
    change of machine load affects them alike), for PETS and POPLIN-P sep: what a learning curve's "plan ms" cannot
    say when its runs ran on different machines."""
    obs_dim = ENVS["HalfCheetah-v5"][0]
    results = []
    for kind in OPTIMIZER_PLANNERS:
        planners = {
            name: build_planner(kind, CPU_BUDGET, "HalfCheetah-v5", device, options=options)
            for name, options in OPTIMIZERS.items()
        }
        plans = _WarmStartedPlans(planners, obs_dim, device)
        probes = {name: Probe(planner, device) for name, planner in planners.items()}
        candidates: dict[str, float] = {}
        for name, probe in probes.items():  # the warm-up step, which counts the rows the model is called on
            with probe.installed():
                plans.step(name)
            candidates[name] = sum(probe.calls) / CPU_BUDGET.horizon
        steps: dict[str, list[float]] = {name: [] for name in planners}
        models: dict[str, list[float]] = {name: [] for name in planners}
        for _ in range(rounds):
            for name, probe in probes.items():
                probe.reset()
                # On CPU the probe's clock reads are the step's only overhead (see bench_planner)
                with probe.installed():
                    steps[name].append(plans.step(name))
                models[name].append(probe.model_s)
        for name in planners:
            result = OptimizerResult(
                planner=kind,
                optimizer=name,
                candidates=candidates[name],
                step_ms=1e3 * median(steps[name]),
                model_share=median([m / s for m, s in zip(models[name], steps[name])]),
                ratio=median([a / b for a, b in zip(steps[name], steps["cem"])]),
            )
            results.append(result)
            print(
                f"  {kind:14s} {name:5s} {result.candidates:5.0f} candidates  {result.step_ms:7.1f} ms/step  "
                f"model {result.model_share:4.0%}  x{result.ratio:.2f} of CEM",
                flush=True,
            )
    return results


def optimizer_table(results: list[OptimizerResult]) -> str:
    lines = [
        "| planner | optimizer | candidates / step | ms / step | inside the model | time / CEM's |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.planner} | {r.optimizer} | {r.candidates:.0f} | {r.step_ms:.1f} | {r.model_share:.0%} | {r.ratio:.2f}x |"
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------------------
# 2. Distilled-policy latency
# ----------------------------------------------------------------------------------------------------------------------
def bench_predict(calls: int, blocks: int) -> dict[str, float]:
    """Median latency (us) of ``policy.predict`` on one observation: POPLIN-P, POPLIN-A and SAC on HalfCheetah-v5."""
    from stable_baselines3 import SAC

    from sb3_poplin import POPLIN_A, POPLIN_P

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = {
            "POPLIN_P": POPLIN_P("MlpPolicy", "HalfCheetah-v5", buffer_size=1000, device="cpu", seed=0),
            "POPLIN_A": POPLIN_A("MlpPolicy", "HalfCheetah-v5", buffer_size=1000, device="cpu", seed=0),
            "SAC": SAC("MlpPolicy", "HalfCheetah-v5", buffer_size=1000, device="cpu", seed=0),
        }
    obs = models["SAC"].observation_space.sample()
    times: dict[str, list[float]] = {name: [] for name in models}
    for model in models.values():
        for _ in range(50):
            model.policy.predict(obs, deterministic=True)
    # Interleaved blocks: the three see the same machine load.
    for _ in range(blocks):
        for name, model in models.items():
            for _ in range(calls // blocks):
                start = time.perf_counter()
                model.policy.predict(obs, deterministic=True)
                times[name].append(time.perf_counter() - start)
    return {name: 1e6 * median(t) for name, t in times.items()}


# ----------------------------------------------------------------------------------------------------------------------
# 3. Training cost and replay buffer memory
# ----------------------------------------------------------------------------------------------------------------------
@dataclass
class TrainingResult:
    n: int
    update_ms: dict[int, float]  # batch size -> ms per gradient step
    fit_overhead_s: float  # one fit with a single update: split, normaliser, bootstrap, hold-out scoring, best-state
    epoch_overhead_s: float  # per extra epoch: shuffling and one hold-out scoring
    projected_s: dict[str, float]
    measured_s: dict[str, float]


# (label, epochs, batch size, max updates): the author's defaults, a larger batch, and a cap on gradient steps.
TRAIN_SETTINGS = [
    ("5 epochs, batch 32, uncapped (before)", 5, 32, None),
    ("5 epochs, batch 32, max 5000 updates (default)", 5, 32, 5000),
    ("5 epochs, batch 32, max 1000 updates", 5, 32, 1000),
    ("5 epochs, batch 256", 5, 256, None),
    ("batch 256, max 2000 updates", 5, 256, 2000),
]


def synthetic_dynamics_data(n: int, obs_dim: int = 17, act_dim: int = 6) -> tuple[th.Tensor, th.Tensor]:
    gen = th.Generator().manual_seed(n)
    inputs = th.randn(n, obs_dim + act_dim, generator=gen)
    mix = th.randn(obs_dim + act_dim, obs_dim, generator=gen) / math.sqrt(obs_dim + act_dim)
    targets = th.tanh(inputs @ mix) * 0.1 + 0.01 * th.randn(n, obs_dim, generator=gen)
    return inputs, targets


def n_updates(n: int, epochs: int, batch: int, cap: int | None, holdout_ratio: float = 0.1) -> int:
    n_train = n - min(int(n * holdout_ratio), 5000)
    updates = epochs * math.ceil(n_train / batch)
    return min(updates, cap) if cap is not None else updates


def bench_training(sizes: list[int], update_reps: int, measure_limit_s: float) -> list[TrainingResult]:
    results = []
    for n in sizes:
        inputs, targets = synthetic_dynamics_data(n)
        model = ProbabilisticEnsemble(inputs.shape[1], targets.shape[1], n_members=5)
        optimizer = make_adam(model.parameters(), lr=1e-3)  # as the algorithms build it
        update_ms = {}
        for batch in (32, 256):
            times = []
            for i in range(update_reps + 5):
                idx = th.randint(n, (5, batch))
                start = time.perf_counter()
                loss = model.nll_loss(inputs[idx], targets[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if i >= 5:
                    times.append(time.perf_counter() - start)
            update_ms[batch] = 1e3 * median(times)
        start = time.perf_counter()
        model.fit(inputs, targets, optimizer, max_epochs=1, max_updates=1, generator=th.Generator().manual_seed(0))
        fit_overhead = time.perf_counter() - start
        # Per extra epoch: the per-member shuffle and one hold-out scoring.
        n_train = n - min(int(n * 0.1), 5000)
        start = time.perf_counter()
        th.argsort(th.rand(5, n_train), dim=1)
        model.member_mse(inputs[: min(int(n * 0.1), 5000)], targets[: min(int(n * 0.1), 5000)])
        epoch_overhead = time.perf_counter() - start
        projected, measured = {}, {}
        for label, epochs, batch, cap in TRAIN_SETTINGS:
            updates = n_updates(n, epochs, batch, cap)
            epochs_run = epochs if cap is None else min(epochs, math.ceil(cap / math.ceil(n_train / batch)))
            projected[label] = fit_overhead + (epochs_run - 1) * epoch_overhead + updates * update_ms[batch] / 1e3
            if projected[label] <= measure_limit_s:
                model = ProbabilisticEnsemble(inputs.shape[1], targets.shape[1], n_members=5)
                optimizer = make_adam(model.parameters(), lr=1e-3)  # as the algorithms build it
                start = time.perf_counter()
                model.fit(
                    inputs,
                    targets,
                    optimizer,
                    max_epochs=epochs,
                    batch_size=batch,
                    max_updates=cap,
                    patience=epochs,  # no early stop: the cost of the full budget
                    generator=th.Generator().manual_seed(0),
                )
                measured[label] = time.perf_counter() - start
        results.append(TrainingResult(n, update_ms, fit_overhead, epoch_overhead, projected, measured))
        print(
            f"  training {n:>7} transitions: {update_ms[32]:.2f} / {update_ms[256]:.2f} ms per update (batch 32 / 256); "
            + ", ".join(
                f"{k}: {v:.1f} s" + (f" (measured {measured[k]:.1f} s)" if k in measured else "") for k, v in projected.items()
            ),
            flush=True,
        )
    return results


def buffer_memory(steps: int) -> dict[str, float]:
    """MiB of a PlanningReplayBuffer filled with ``steps`` HalfCheetah transitions, per algorithm (the noise it keeps).

    Counted from the arrays' shapes once filled: numpy commits SB3's arrays as they are written and the noise rows are
    allocated as steps arrive, so a new buffer's ``nbytes`` would understate the noise.
    """
    obs_space = spaces.Box(-np.inf, np.inf, (17,), np.float32)
    act_space = spaces.Box(-1.0, 1.0, (6,), np.float32)
    p_params = PolicyNetwork(17, 6, POLICY_ARCH["P"]).n_params
    sizes = {}
    for label, noise_dim, noise_dtype in (
        ("PETS, POPLIN-A, POPLIN-P with BC or GAN distillation (no noise kept, the default)", 0, "float32"),
        (f"POPLIN-P with AVG distillation (noise = all {p_params} policy parameters)", p_params, "float32"),
        (f"POPLIN-P with AVG, noise_dtype='float16' ({p_params} parameters)", p_params, "float16"),
    ):
        buffer = PlanningReplayBuffer(steps, obs_space, act_space, device="cpu", noise_dim=noise_dim, noise_dtype=noise_dtype)
        arrays = [buffer.observations, buffer.next_observations, buffer.actions, buffer.rewards, buffer.dones, buffer.timeouts]
        base = sum(a.nbytes for a in arrays) + buffer.planned.nbytes
        noise = steps * buffer.n_envs * noise_dim * buffer.noises.itemsize
        sizes[label] = (base + noise) / 2**20
        if noise_dim:
            sizes[f"{label}: noise alone"] = noise / 2**20
        del buffer
    return sizes


# ----------------------------------------------------------------------------------------------------------------------
# 4. Memory of planning
# ----------------------------------------------------------------------------------------------------------------------
def trim_heap() -> None:
    """Hand the C allocator's free memory back to the OS (glibc), so that RSS counts live memory, not its cache."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def leak_check(kind: str, cfg: Config, env_id: str, device: th.device, steps: int) -> dict[str, float]:
    """Allocation growth over ``steps`` warm-started planning steps (after a warm-up of a tenth of them).

    The resident size of a process moves up and down with the allocator's caching, so one before/after difference can
    show a few MB either way: the heap is trimmed before each of 11 samples and the least-squares slope is reported,
    with the Python heap (tracemalloc) and, on CUDA, the torch allocator before and after.
    """
    planner = build_planner(kind, cfg, env_id, device)
    obs_dim = ENVS[env_id][0]
    generator = th.Generator(device=device).manual_seed(0)
    obs = th.randn(1, obs_dim, device=device)
    mean = None
    warm = max(steps // 10, 10)
    for _ in range(warm):
        mean = planner.warm_start_after(planner.plan(obs, mean, generator))
    gc.collect()
    tracemalloc.start()
    cuda0 = th.cuda.memory_allocated(device) if device.type == "cuda" else 0
    snap0 = tracemalloc.take_snapshot()
    trim_heap()
    samples: list[tuple[int, float]] = [(0, rss_mb())]
    for step in range(1, steps + 1):
        mean = planner.warm_start_after(planner.plan(obs, mean, generator))
        if step % max(steps // 10, 1) == 0 or step == steps:
            trim_heap()
            samples.append((step, rss_mb()))
    gc.collect()
    snap1 = tracemalloc.take_snapshot()
    cuda1 = th.cuda.memory_allocated(device) if device.type == "cuda" else 0
    tracemalloc.stop()
    python_growth = sum(stat.size_diff for stat in snap1.compare_to(snap0, "filename"))
    x, y = np.array([s for s, _ in samples], dtype=float), np.array([r for _, r in samples])
    slope = float(np.polyfit(x, y, 1)[0]) if len(samples) > 2 else float("nan")
    return {
        "steps": steps,
        "rss_start_mb": float(y[0]),
        "rss_min_mb": float(y.min()),
        "rss_max_mb": float(y.max()),
        "rss_end_mb": float(y[-1]),
        "rss_slope_kb_per_step": slope * 1024,
        "python_growth_kb": python_growth / 1024,
        "cuda_growth_mb": (cuda1 - cuda0) / 2**20,
    }


PEAK_SCRIPT = """
import torch as th
from benchmarks.planner_throughput import PAPER, build_planner, rss_mb, high_water_mb
th.set_num_threads({threads})
planner = build_planner({kind!r}, PAPER, "HalfCheetah-v5", th.device("cpu"))
obs, gen, mean = th.randn(1, 17), th.Generator().manual_seed(0), None
before = rss_mb()
for _ in range(3):
    mean = planner.warm_start_after(planner.plan(obs, mean, gen))
print(before, high_water_mb())
"""


def high_water_mb() -> float:
    """Peak resident size of this process's memory map (``VmHWM``) in MiB. Unlike ``ru_maxrss`` it starts afresh at
    ``exec``: a child's ``ru_maxrss`` includes its parent's resident size at fork."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def planning_peak(kind: str) -> tuple[float, float]:
    """Resident memory of a fresh process before planning and its peak while planning at the paper config (CPU), in
    MiB: a fresh process, so that the peak is planning's and not that of whatever ran before."""
    import subprocess

    code = PEAK_SCRIPT.format(kind=kind, threads=th.get_num_threads())
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path.cwd())
    before, peak = (float(v) for v in out.stdout.split()[-2:])
    return before, peak


# ----------------------------------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------------------------------
TARGETS = {"efficiency": 0.70, "outside": 0.20, "policy": 0.15}


def verdict(r: PlannerResult) -> str:
    if r.config != PAPER.name:
        return ""
    misses = []
    if r.efficiency < TARGETS["efficiency"]:
        misses.append(f"model {r.efficiency:.0%} < 70% of roof")
    if r.outside_share > TARGETS["outside"]:
        misses.append(f"outside {r.outside_share:.0%} > 20%")
    if r.planner.startswith("POPLIN-P") and r.policy_share > TARGETS["policy"]:
        misses.append(f"policy {r.policy_share:.0%} > 15%")
    return "meets targets" if not misses else "SHORT: " + "; ".join(misses)


def planner_table(results: list[PlannerResult], graph: bool) -> str:
    header = (
        "| env | config | planner | ms / step | transitions/s | model ms | roof ms | FLOP-eff. (roof/model) "
        "| outside model | policy fwd | roof GFLOP/s |" + (" graph ms / step |" if graph else "") + " paper targets |"
    )
    sep = "|" + "---|" * (header.count("|") - 1)
    rows = [header, sep]
    for r in results:
        rows.append(
            f"| {r.env_id} | {r.config} | {r.planner} | {r.step_ms:.1f} | {r.transitions_per_s:,.0f} | {r.model_ms:.1f} "
            f"| {r.roof_ms:.1f} | {r.efficiency:.0%} | {r.outside_share:.1%} | {r.policy_share:.1%} | {r.roof_gflops:.0f} |"
            + (f" {r.graph_step_ms:.2f} |" if graph and r.graph_step_ms is not None else (" - |" if graph else ""))
            + f" {verdict(r)} |"
        )
    return "\n".join(rows)


def write_report(path: Path, context: dict[str, Any], sections: dict[str, tuple[str, str]]) -> None:
    """Write each measured section between its own markers in ``path`` (per device, thread count and section), under
    the heading of its device and thread count, so a partial run (``--skip``) updates only what it measured and the
    hand-written text around them is kept.

    :param sections: title -> (conditions of the run that measured it, body)
    """
    tag = f"{context['device']}-threads={context['threads']}"
    heading = f"## Measured: {context['device']}, {context['threads']} torch thread(s)"
    for title, (run, body) in sections.items():
        slug = title.lower().replace(" ", "-")
        write_marked(path, f"{tag}:{slug}", f"### {title}\n\n{run}\n\n{body.strip()}", group=f"{tag}:", heading=heading)


def conditions(context: dict[str, Any], load_start: str, minutes: float) -> str:
    """The line that says where, how and under which machine load a section was measured."""
    return (
        f"*{context['cpu']}, {context['threads']} torch thread(s), torch {context['torch']}, Python "
        f"{platform.python_version()}; load average (1/5/15 min) {load_start} at start, {load_average()} at end; "
        f"{minutes:.1f} min. Command: `{context['command']}`*"
    )


# ----------------------------------------------------------------------------------------------------------------------
# 5. This tree against another revision
# ----------------------------------------------------------------------------------------------------------------------
#: Run in a fresh interpreter with one revision's sb3_poplin first on the path: the median ms of ``model.plan`` (the path
#: the algorithms plan through, warm-started step after step) for each algorithm at one size, as JSON. It uses only the
#: public constructors and ``plan``, which every revision has.
PLAN_TIMER = """
import json, sys, time
import numpy as np, torch as th
th.set_num_threads(1)
import sb3_poplin
from sb3_poplin import PETS, POPLIN_A, POPLIN_P
size, reps = json.loads(sys.argv[1]), int(sys.argv[2])
algos = {"POPLIN-P sep": (POPLIN_P, dict(planning_variant="sep", policy_kwargs=dict(net_arch=[32]))),
         "POPLIN-A init": (POPLIN_A, dict(planning_variant="init")), "PETS": (PETS, {})}
out = {"path": sb3_poplin.__file__}
for name, (algo, own) in algos.items():
    model = algo("MlpPolicy", "HalfCheetah-v5", seed=0, device="cpu", n_threads=1, **size, **own)
    obs = np.random.default_rng(0).normal(size=(1, 17)).astype(np.float32)
    mean, times = None, []
    for i in range(reps + 1):
        start = time.perf_counter()
        plan = model.plan(obs, mean)
        times.append(time.perf_counter() - start)
        mean = model.planner.warm_start_after(plan)
    out[name] = 1e3 * float(np.median(times[1:]))
print(json.dumps(out))
"""
#: the sizes compared: the CPU entries' and the paper's planning (5 members of 4x200 either way)
AGAINST_SIZES = {
    "cpu entry": dict(population_size=100, n_elites=10, cem_iterations=3, horizon=15),
    "paper": dict(population_size=500, n_elites=50, cem_iterations=5, horizon=30),
}


def against(revision: str, rounds: int, reps: int) -> str:
    """Median ms per planning step of this tree and of ``revision``, measured alternately in fresh processes (the order
    swapped every round, so both see the same machine load), and their ratio per algorithm and size.

    :param revision: a git revision of this repository (its ``sb3_poplin`` is extracted to a temporary folder)
    :param rounds: alternations; the ratio is the median of the rounds' ratios
    :param reps: planning steps timed per process and algorithm
    :return: the markdown table
    """
    import json
    import subprocess
    import tempfile

    here = Path(__file__).resolve().parent.parent
    commit = subprocess.run(["git", "rev-parse", "--short", revision], cwd=here, capture_output=True, text=True, check=True)
    with tempfile.TemporaryDirectory() as other:
        archive = subprocess.run(["git", "archive", revision, "sb3_poplin"], cwd=here, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", other], input=archive.stdout, check=True)
        trees = {"this tree": str(here), revision: other}
        times: dict[tuple[str, str], dict[str, list[float]]] = {}
        for size_name, size in AGAINST_SIZES.items():
            for round_index in range(rounds):
                order = list(trees.items()) if round_index % 2 == 0 else list(reversed(trees.items()))
                for tree_name, path in order:
                    env = dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS="1")
                    result = subprocess.run(
                        [sys.executable, "-c", PLAN_TIMER, json.dumps(size), str(reps)],
                        env=env, capture_output=True, text=True, check=True, cwd=path,
                    )  # fmt: skip
                    measured = json.loads(result.stdout.strip().splitlines()[-1])
                    assert measured.pop("path").startswith(path), "the process imported another tree's sb3_poplin"
                    for algo, ms in measured.items():
                        times.setdefault((size_name, algo), {}).setdefault(tree_name, []).append(ms)
                print(f"  {size_name}: round {round_index + 1} of {rounds} done", flush=True)
    short = commit.stdout.strip()
    name = revision if short.startswith(revision) or revision.startswith(short) else f"{revision} ({short})"
    lines = [
        f"| size | algorithm | {name} ms/step | this tree ms/step | ratio (this / {revision}) |",
        "|---|---|---|---|---|",
    ]
    for (size_name, algo), by_tree in times.items():
        ratios = [a / b for a, b in zip(by_tree["this tree"], by_tree[revision])]
        lines.append(
            f"| {size_name} | {algo} | {np.median(by_tree[revision]):.1f} | {np.median(by_tree['this tree']):.1f} | "
            f"{np.median(ratios):.3f} (rounds: {min(ratios):.2f}-{max(ratios):.2f}) |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: small config, few repetitions, no report")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions per planner (default 7 paper / 30 small)")
    parser.add_argument("--cuda-graph", action="store_true", help="also time the CUDA-graph-captured plans (CUDA only)")
    parser.add_argument("--leak-steps", type=int, default=None, help="planning steps of the allocation check (small config)")
    parser.add_argument("--leak-steps-paper", type=int, default=None, help="same at the paper config (POPLIN-P sep)")
    parser.add_argument("--measure-limit", type=float, default=60.0, help="longest projected fit that is also measured (s)")
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["planners", "bfloat16", "optimizers", "predict", "training", "memory"]
    )
    parser.add_argument("--output", default=None, help="markdown report (default: docs/performance.md, none with --quick)")
    parser.add_argument("--against", default=None, help="only compare model.plan of this tree with a git revision's")
    parser.add_argument("--rounds", type=int, default=5, help="with --against: alternations of the two trees")
    args = parser.parse_args()
    if args.against is not None:
        start = (time.perf_counter(), load_average())
        table = against(args.against, args.rounds, args.reps or 10)
        print(table)
        block = (
            f"`{COMMAND} --against {args.against}`: the median time of a planning step through `model.plan` (HalfCheetah-v5,"
            " the 5 x 4x200 ensemble, one thread), this tree against the revision's code, measured alternately in fresh "
            f"processes ({args.rounds} rounds, {args.reps or 10} steps each; load {start[1]} at the start, "
            f"{load_average()} at the end, {(time.perf_counter() - start[0]) / 60:.0f} min).\n\n{table}"
        )
        output = Path(args.output or "docs/performance.md")
        write_marked(output, "against-revision", block, "against-revision", "## This tree against an earlier revision")
        print(f"wrote {output}")
        return

    if args.threads is not None:
        th.set_num_threads(args.threads)
    device = th.device(args.device)
    quick = args.quick
    output = args.output if args.output is not None else (None if quick else "docs/performance.md")
    started = time.perf_counter()
    context: dict[str, Any] = {
        "command": " ".join([COMMAND, *sys.argv[1:]]),
        "cpu": cpu_model() if device.type == "cpu" else f"{th.cuda.get_device_name(device)} (host: {cpu_model()})",
        "threads": th.get_num_threads(),
        "torch": th.__version__,
        "device": str(device),
        "load_start": load_average(),
    }
    print(
        f"{context['cpu']}, {context['threads']} threads, torch {context['torch']}, load {context['load_start']}", flush=True
    )
    sections: dict[str, tuple[str, str]] = {}

    def since(start: tuple[float, str]) -> str:
        return conditions(context, start[1], (time.perf_counter() - start[0]) / 60)

    # 1. Planners -------------------------------------------------------------------------------------------------
    results: list[PlannerResult] = []
    if "planners" not in args.skip:
        start = (time.perf_counter(), load_average())
        configs = [SMALL] if quick else [PAPER, SMALL]
        rss_before = rss_mb()
        for cfg in configs:
            reps = args.reps or (2 if quick else (7 if cfg is PAPER else 30))
            for env_id in ENVS:
                for kind in PLANNERS:
                    r = bench_planner(kind, cfg, env_id, device, reps, warmup=1 if quick else 2, cuda_graph=args.cuda_graph)
                    results.append(r)
                    print(
                        f"  {env_id:15s} {cfg.name:5s} {kind:16s} {r.step_ms:8.1f} ms/step  "
                        f"{r.transitions_per_s:>10,.0f} tr/s  eff {r.efficiency:4.0%}  "
                        f"outside {r.outside_share:5.1%}  policy {r.policy_share:5.1%}  "
                        f"roof {r.roof_gflops:.0f} GFLOP/s"
                        + (f"  graph {r.graph_step_ms:.2f} ms" if r.graph_step_ms else "")
                        + f"  {verdict(r)}",
                        flush=True,
                    )
        peak_planning = peak_rss_mb()
        graph_note = (
            "CUDA-graph column: the whole plan captured once and replayed (`cuda_graph=True`)."
            if args.cuda_graph and device.type == "cuda"
            else "GPU figures (eager and CUDA-graph-captured plans, target <= 10 ms per step at the paper config) are still "
            f"to be measured: run `{COMMAND} --device cuda --cuda-graph` on a GPU."
        )
        sections["Planner throughput"] = (
            since(start),
            (
                "One planning step = the full CEM optimisation for one real step (n_envs = 1), warm-started from the previous "
                "step as in training. *model ms*: time inside the ensemble's forward passes; *roof ms*: the same passes "
                "(same count and shapes, all members on full `[E, N, in]` inputs, mean and log-variance columns) as bare "
                "`th.baddbmm` + SiLU chains, timed interleaved with the planner; *FLOP-eff.* = roof / model (above 100% "
                "when the planner does less work than the bare chain, e.g. its expectation path skips the log-variance "
                "columns and shares the first layer); *outside model*: share of the step spent in CEM sampling and sorting, "
                "policy, rewards and bookkeeping (includes *policy fwd*: the policy network; for POPLIN-P the perturbed "
                "policies of all candidates). Targets (paper config, this CPU): model >= 70% of the roof, outside <= 20%, "
                "POPLIN-P policy <= 15%. Transitions/s counts population x horizon x iterations imagined transitions per "
                f"step. Medians over {results[0].reps if results else 0}+ repetitions.\n\n"
                + planner_table(results, bool(args.cuda_graph and device.type == "cuda"))
                + f"\n\n{graph_note}\n\nPeak resident memory of the process after the planner runs: {peak_planning:.0f} MiB "
                f"(resident before them: {rss_before:.0f} MiB)."
            ),
        )

    # 1b. Planning in bfloat16 -------------------------------------------------------------------------------------
    if "bfloat16" not in args.skip and not quick:
        start = (time.perf_counter(), load_average())
        dtype_results = bench_dtypes(
            device, rounds=args.reps or 5, two_threads=os.cpu_count() is not None and os.cpu_count() >= 2
        )
        native = "natively" if native_bfloat16(device) else "by emulation (no native support: expect no gain)"
        sections["Planning in bfloat16"] = (
            since(start),
            (
                '`planning_dtype="bfloat16"` against float32 at the paper config (population 500, horizon 30, 5 CEM '
                "iterations, 5 members of 4x200 SiLU, HalfCheetah-v5 sizes), one warm-started step of each in turn per "
                f"round ({args.reps or 5} rounds; speedups are medians of the rounds' ratios). This device multiplies "
                f"bfloat16 {native}. The roofs replay the planner's model calls as bare `baddbmm` + SiLU chains in each "
                "dtype: their ratio is what the hardware gives the ensemble, the planners' ratio what planning gets (the "
                "rest of a step, CEM's sampling and the float32 state, rewards and returns, does not speed up). The last "
                "column: the bfloat16 planner on two torch threads against one, interleaved.\n\n" + dtype_table(dtype_results)
            ),
        )

    # 1c. The optimizers ------------------------------------------------------------------------------------------
    if "optimizers" not in args.skip:
        start = (time.perf_counter(), load_average())
        rounds = args.reps or (2 if quick else 15)
        optimizer_results = bench_optimizers(device, rounds)
        sections["Optimizers at the CPU budget"] = (
            since(start),
            (
                "`optimizer=` at the study's CPU budget (CEM: population 100, 10 elites, 3 iterations; horizon 15; 5 members "
                "of 4x200 SiLU; HalfCheetah-v5 sizes), each optimizer as the study's entries set it: iCEM with a first "
                "population of 123 that shrinks to score CEM's candidates, beta 0.25; MPPI with its defaults. One "
                f"warm-started step of each optimizer in turn per round ({rounds} rounds; the ratio is the median of the "
                "rounds' ratios). The learning curves' *plan ms / step* (docs/results.md) come from whichever machine ran "
                "each seed; this is the side-by-side figure.\n\n" + optimizer_table(optimizer_results)
            ),
        )

    # 2. Distilled policy -----------------------------------------------------------------------------------------
    if "predict" not in args.skip:
        start = (time.perf_counter(), load_average())
        latency = bench_predict(calls=400 if quick else 5000, blocks=4 if quick else 10)
        ratio = latency["POPLIN_P"] / latency["SAC"]
        summary = ", ".join(f"{k} {v:.1f} us" for k, v in latency.items())
        print(f"  predict: {summary}  (P / SAC = {ratio:.2f})", flush=True)
        sections["Distilled-policy latency"] = (
            since(start),
            (
                "`model.policy.predict(obs, deterministic=True)` on one HalfCheetah-v5 observation (CPU), median over "
                "interleaved calls. Target: POPLIN-P within 1.5x of SAC.\n\n| policy | us / predict |\n|---|---|\n"
                + "\n".join(f"| {k} | {v:.1f} |" for k, v in latency.items())
                + f"\n\nPOPLIN-P / SAC = {ratio:.2f}."
            ),
        )

    # 3. Training cost ---------------------------------------------------------------------------------------------
    if "training" not in args.skip:
        start = (time.perf_counter(), load_average())
        sizes = [2_000, 5_000] if quick else [10_000, 50_000, 200_000]
        limit = 5.0 if quick else args.measure_limit
        training = bench_training(sizes, update_reps=20 if quick else 100, measure_limit_s=limit)
        memory = buffer_memory(200_000)
        head = (
            "| transitions | ms / update (batch 32) | ms / update (batch 256) | "
            + " | ".join(f"{label} (s)" for label, *_ in TRAIN_SETTINGS)
            + " |"
        )
        rows = [head, "|" + "---|" * (head.count("|") - 1)]
        for t in training:
            cells = []
            for label, *_ in TRAIN_SETTINGS:
                cell = f"{t.projected_s[label]:.1f}"
                if label in t.measured_s:
                    cell += f" (measured {t.measured_s[label]:.1f})"
                cells.append(cell)
            rows.append(f"| {t.n:,} | {t.update_ms[32]:.2f} | {t.update_ms[256]:.2f} | " + " | ".join(cells) + " |")
        mem_rows = "\n".join(f"| {k} | {v:,.0f} |" for k, v in memory.items())
        sections["Training cost"] = (
            since(start),
            (
                "Time of one `ProbabilisticEnsemble.fit` (5 members of 4x200, HalfCheetah-sized synthetic data, no early "
                "stop) per training iteration, as the data grows. Projected = fit overhead + epochs x (shuffle + hold-out "
                "scoring) + updates x measured time per update; measured where it was affordable.\n\n"
                + "\n".join(rows)
                + "\n\nReplay buffer (`PlanningReplayBuffer`) at 200,000 steps of HalfCheetah-v5, float32 unless said, "
                "once filled (numpy allocates lazily):\n\n| buffer | MiB |\n|---|---|\n" + mem_rows
            ),
        )

    # 4. Memory ---------------------------------------------------------------------------------------------------
    if "memory" not in args.skip:
        start = (time.perf_counter(), load_average())
        steps = args.leak_steps or (30 if quick else 1000)
        rows = [
            "| config | planner | steps | RSS at start (MiB) | RSS min / max (MiB) | RSS slope (KiB / step) "
            "| Python heap growth (KiB) |" + (" CUDA allocated growth (MiB) |" if device.type == "cuda" else ""),
        ]
        rows.append("|" + "---|" * (rows[0].count("|") - 1))
        checks = [(SMALL, kind, steps) for kind in PLANNERS]
        paper_steps = args.leak_steps_paper if args.leak_steps_paper is not None else (0 if quick else 300)
        if paper_steps:
            checks.append((PAPER, "POPLIN-P sep", paper_steps))
        for cfg, kind, n in checks:
            leak = leak_check(kind, cfg, "HalfCheetah-v5", device, n)
            print(f"  memory {cfg.name} {kind}: " + ", ".join(f"{k} {v:.2f}" for k, v in leak.items()), flush=True)
            rows.append(
                f"| {cfg.name} | {kind} | {n} | {leak['rss_start_mb']:.0f} | {leak['rss_min_mb']:.0f} / "
                f"{leak['rss_max_mb']:.0f} | {leak['rss_slope_kb_per_step']:+.2f} | {leak['python_growth_kb']:+.1f} |"
                + (f" {leak['cuda_growth_mb']:+.2f} |" if device.type == "cuda" else "")
            )
        peak_rows = ["| planner | RSS before planning (MiB) | peak while planning (MiB) | planning working set (MiB) |"]
        peak_rows.append("|---|---|---|---|")
        if device.type == "cpu" and not quick:
            for kind in PLANNERS:
                before, peak = planning_peak(kind)
                print(f"  peak {kind}: {before:.0f} -> {peak:.0f} MiB", flush=True)
                peak_rows.append(f"| {kind} | {before:.0f} | {peak:.0f} | {peak - before:.0f} |")
        sections["Memory of planning"] = (
            since(start),
            "Allocation growth over many warm-started planning steps (HalfCheetah-v5 sizes), after a warm-up of a tenth "
            "as many steps. The resident size moves with the allocator's caching, so the C heap is trimmed "
            "(`malloc_trim`) before each of 11 samples: their range and least-squares slope are reported, with the "
            "growth of the Python heap (tracemalloc)."
            + "\n\n"
            + "\n".join(rows)
            + (
                "\n\nPeak resident memory of planning at the paper config (HalfCheetah-v5 sizes), each planner in a "
                "fresh process, 3 planning steps:\n\n" + "\n".join(peak_rows)
                if len(peak_rows) > 2
                else ""
            ),
        )

    print(f"done in {(time.perf_counter() - started) / 60:.1f} min, load {load_average()}", flush=True)
    if output:
        write_report(Path(output), context, sections)
        print(f"wrote {output}")


if __name__ == "__main__":
    main()
