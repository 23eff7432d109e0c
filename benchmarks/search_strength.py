"""
How well each search does on one trained model, with nothing else changing: the return the model predicts for the plan
each planner would execute, at real states of a run, for PETS (CEM over action sequences) and POPLIN-P Sep (CEM over
policy-parameter noise, around a fresh policy as in its first planned trial), each with CEM, iCEM and MPPI at the same
number of candidates, at the CPU budget and the paper's; at the CPU budget also MPPI's settings beside its defaults.

A learning run mixes the search with the data it collects; here the model, the states and the budget are the same for
every planner, so the predicted returns compare the searches alone. It answers why POPLIN-P's first planned trials on
PETS' Cheetah score below its random one: does its search find worse plans on the same model than PETS' does?

    python -m benchmarks.search_strength --model <a PETS run's model.zip> --buffer <its replay_buffer.pkl> --label ...
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch as th

import sb3_poplin.envs  # noqa: F401  (registers the sb3_poplin/ ids)
from benchmarks.machine import cpu_model, load_average, write_labelled
from sb3_poplin import PETS
from sb3_poplin.common.cem import CEMOptimizer
from sb3_poplin.common.icem import ICEMOptimizer, first_population_for
from sb3_poplin.common.mppi import MPPIOptimizer
from sb3_poplin.common.planners import ActionSequencePlanner, Planner, PolicyParameterPlanner
from sb3_poplin.common.policies import PolicyNetwork
from sb3_poplin.common.rollout import ModelRollout

COMMAND = "python -m benchmarks.search_strength"
#: (name, population, elites, iterations, horizon)
BUDGETS = (("CPU budget", 100, 10, 3, 15), ("the paper's budget", 500, 50, 5, 30))
#: iCEM's noise exponent here: the pets-cheetah study's iCEM entries' (light colouring)
ICEM_BETA = 0.25
#: MPPI's (gamma, noise filter) beside its defaults, tried at the CPU budget for PETS and POPLIN-P Sep (ours)
MPPI_SETTINGS = ((1.0, 0.7), (1.0, 1.0), (3.0, 0.7), (3.0, 1.0), (10.0, 0.5), (10.0, 0.7))
#: the POPLIN-P policies searched around: (name, policy network options, whitened on the states)
POLICIES = (
    ("POPLIN-P Sep, ours (tanh, PyTorch init, whitened)", dict(output="tanh", init="torch"), True),
    ("POPLIN-P Sep, the authors' (clip, normc, unwhitened)", dict(output="clip", init="normc"), False),
)


def planners(model: PETS, budget: tuple[str, int, int, int, int], states: th.Tensor) -> dict[str, Planner]:
    """PETS' planner and POPLIN-P Sep's around each fresh policy, on ``model``'s ensemble at ``budget``."""
    _, population, elites, iterations, horizon = budget
    base = model.model_rollout
    rollout = ModelRollout(
        model.dynamics,
        base.reward_fn,
        base.termination_fn,
        horizon=horizon,
        action_low=base.action_low,
        action_high=base.action_high,
        processing=model.processing,
    )
    # iCEM scores as many candidates per step as CEM: a larger first population, shrinking over the iterations.
    first = first_population_for(population * iterations, elites, iterations)

    def icem() -> ICEMOptimizer:
        return ICEMOptimizer(first, elites, iterations, beta=ICEM_BETA)

    def mppi(**settings: float) -> MPPIOptimizer:
        return MPPIOptimizer(population, elites, iterations, **settings)  # default: its default gamma and noise filter

    out: dict[str, Planner] = {
        "PETS": ActionSequencePlanner(rollout, CEMOptimizer(population, elites, iterations), model.act_dim, 0.5),
        "PETS, iCEM": ActionSequencePlanner(rollout, icem(), model.act_dim, 0.5),
        "PETS, MPPI": ActionSequencePlanner(rollout, mppi(), model.act_dim, 0.5),
    }
    for name, options, whitened in POLICIES:
        th.manual_seed(0)
        policy = PolicyNetwork(model.obs_dim, model.act_dim, [32], **options)
        if whitened:
            policy.fit_obs_normalizer(states)
        cem = CEMOptimizer(population, elites, iterations)
        out[name] = PolicyParameterPlanner(rollout, cem, model.act_dim, 0.1**0.5, policy, "sep")
        out[f"{name}, iCEM"] = PolicyParameterPlanner(rollout, icem(), model.act_dim, 0.1**0.5, policy, "sep")
        out[f"{name}, MPPI"] = PolicyParameterPlanner(rollout, mppi(), model.act_dim, 0.1**0.5, policy, "sep")
        if budget == BUDGETS[0] and whitened:
            for gamma, keep in MPPI_SETTINGS:
                label = f"{name}, MPPI gamma {gamma:g}, filter {keep:g}"
                out[label] = PolicyParameterPlanner(
                    rollout, mppi(gamma=gamma, keep=keep), model.act_dim, 0.1**0.5, policy, "sep"
                )
    if budget == BUDGETS[0]:
        for gamma, keep in MPPI_SETTINGS:
            out[f"PETS, MPPI gamma {gamma:g}, filter {keep:g}"] = ActionSequencePlanner(
                rollout, mppi(gamma=gamma, keep=keep), model.act_dim, 0.5
            )
    return out


def measure(model_path: Path, buffer_path: Path, n_states: int) -> dict[str, dict[str, tuple[float, float, float]]]:
    """Per budget and planner: the mean predicted return of the executed plan over the states, its std, and the mean
    predicted return of the best elite."""
    model = PETS.load(model_path, device="cpu")
    model.load_replay_buffer(buffer_path)
    data = model.replay_buffer.all_transitions()
    rng = np.random.default_rng(0)
    rows = np.sort(rng.choice(len(data["observations"]), size=n_states, replace=False))
    states = th.as_tensor(data["observations"][rows], dtype=th.float32)
    results: dict[str, dict[str, tuple[float, float, float]]] = {}
    for budget in BUDGETS:
        results[budget[0]] = {}
        for name, planner in planners(model, budget, states).items():
            predicted, best = [], []
            for index, state in enumerate(states):
                out = planner.plan(state.view(1, -1), None, th.Generator().manual_seed(index))
                predicted.append(float(planner.score(state.view(1, -1), out.mean)[0]))
                best.append(float(out.elite_returns[0, 0]))
            results[budget[0]][name] = (float(np.mean(predicted)), float(np.std(predicted)), float(np.mean(best)))
            print(f"  {budget[0]:20s} {name:55s} executed {np.mean(predicted):8.1f}  best elite {np.mean(best):8.1f}")
    return results


def section(label: str, results: dict[str, dict[str, tuple[float, float, float]]], minutes: float, load: str) -> str:
    lines = [
        f"### Search strength: {label}",
        "",
        f"*{cpu_model()}, torch {th.__version__}, one thread; load {load} at start, {load_average()} at end; "
        f"{minutes:.0f} min. Command: `{COMMAND} --label ...` on that run's checkpoint.*",
        "",
        "The model's predicted return over the horizon of the plan each planner would execute (CEM: the final mean; "
        f"iCEM: its best candidate, the first population sized to score as many candidates, beta {ICEM_BETA}; MPPI: its "
        "weighted mean, with its default gamma 10 and white noise unless the row says otherwise), mean "
        "± std over real states of the run, and of the best elite of the last iteration; POPLIN-P Sep searches around a "
        "fresh policy (its situation in the first planned trial) with std 0.316. Compare within a budget (the horizons "
        "differ).",
        "",
        "| budget | planner | executed plan | best elite |",
        "|---|---|---|---|",
    ]
    for budget, by_planner in results.items():
        for name, (mean, std, best) in by_planner.items():
            lines.append(f"| {budget} | {name} | {mean:.1f} ± {std:.1f} | {best:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="a PETS model zip (a study run's checkpoint)")
    parser.add_argument("--buffer", type=Path, required=True, help="its replay buffer (the states are drawn from it)")
    parser.add_argument("--label", required=True, help="what the model is, for the section's title")
    parser.add_argument("--states", type=int, default=30)
    parser.add_argument("--output", type=Path, default=Path("docs/performance.md"))
    args = parser.parse_args()
    th.set_num_threads(1)
    start, load = time.perf_counter(), load_average()
    results = measure(args.model, args.buffer, args.states)
    block = section(args.label, results, (time.perf_counter() - start) / 60, load)
    print(block)
    write_labelled(args.output, "search-strength:", args.label, block, "## Search strength on a fixed model")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
