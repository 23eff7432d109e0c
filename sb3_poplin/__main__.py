"""``python -m sb3_poplin``: train POPLIN on a small task with a CPU-friendly default and show that it learned.

Prints the mean return of the untrained agent, then trains, then prints the return of MPC control (planning with the
learned model) and of policy control (the distilled network alone), and saves the model where ``--save`` says.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import yaml
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_poplin import POPLIN_A, POPLIN_P
from sb3_poplin.common.base import PolicyPlanningAlgorithm
from sb3_poplin.common.mujoco_warnings import route_mujoco_warnings
from sb3_poplin.zoo.algorithms import hyperparams_file

ALGOS: dict[str, type[PolicyPlanningAlgorithm]] = {"poplin_p": POPLIN_P, "poplin_a": POPLIN_A}

#: a small configuration that learns Pendulum-v1 in about a minute on 2 CPU cores (the paper's is 5x larger)
DEFAULT_CONFIG: dict[str, Any] = dict(
    learning_starts=200,
    population_size=100,
    n_elites=10,
    horizon=15,
    ensemble_size=3,
    dynamics_net_arch=[64, 64],
    dynamics_epochs=20,
    dynamics_batch_size=64,
)

#: what the demo takes from the zoo's entry for the env (sb3_poplin/hyperparams/<algo>.yml): the planning objective and
#: variant, e.g. the centred objective and POPLIN-A's replanning on InvertedPendulum-v5; sizes stay DEFAULT_CONFIG's
ZOO_PLANNING_KEYS = ("reward_fn", "planning_variant", "init_sigma")


def demo_config(algo: str, env_id: str) -> dict[str, Any]:
    """The demo's constructor arguments for ``algo`` (a key of :data:`ALGOS`) on ``env_id``."""
    entry = yaml.safe_load(hyperparams_file(algo).read_text()).get(env_id, {})
    return {**DEFAULT_CONFIG, **{key: entry[key] for key in ZOO_PLANNING_KEYS if key in entry}}


def evaluate(model: PolicyPlanningAlgorithm, env_id: str, mode: str, episodes: int, seed: int) -> tuple[float, float]:
    """Mean and std of the return over ``episodes`` episodes with ``model.predict`` in ``mode`` (mpc or policy)."""
    previous = model.predict_with
    model.predict_with = mode
    env = make_vec_env(env_id, n_envs=1, seed=seed)
    mean, std = evaluate_policy(model, env, n_eval_episodes=episodes)  # floats (not asked for the episodes' returns)
    model.predict_with = previous
    return float(np.mean(mean)), float(np.mean(std))


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the demo; returns the measured returns.

    :param argv: command line arguments (default: ``sys.argv``)
    """
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--algo", choices=sorted(ALGOS), default="poplin_p")
    parser.add_argument("--env", default="Pendulum-v1")
    parser.add_argument("--steps", type=int, default=1400, help="real env steps to train for")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads of planning and training (default: chosen per model call)"
    )
    parser.add_argument("--save", default=None, help="where to save the trained model (default: not saved)")
    args = parser.parse_args(argv)

    route_mujoco_warnings()  # no MUJOCO_LOG.TXT where the demo runs
    algo = ALGOS[args.algo]
    config = demo_config(args.algo, args.env)
    model = algo("MlpPolicy", args.env, seed=args.seed, device=args.device, verbose=0, n_threads=args.threads, **config)
    print(f"settings from the zoo's {args.algo}.yml entry: { ({k: config[k] for k in ZOO_PLANNING_KEYS if k in config}) }")
    eval_seed = args.seed + 1000
    untrained, _ = evaluate(model, args.env, "policy", args.eval_episodes, eval_seed)
    print(f"{algo.__name__} on {args.env}: untrained policy return {untrained:.1f} over {args.eval_episodes} episodes")

    start = time.perf_counter()
    model.learn(args.steps)
    elapsed = time.perf_counter() - start
    episodes = [float(info["r"]) for info in model.ep_info_buffer or []]
    print(f"trained for {args.steps} steps in {elapsed:.0f} s; training episode returns: {np.round(episodes).tolist()}")

    mpc_mean, mpc_std = evaluate(model, args.env, "mpc", args.eval_episodes, eval_seed)
    policy_mean, policy_std = evaluate(model, args.env, "policy", args.eval_episodes, eval_seed)
    print(f"after training: MPC return {mpc_mean:.1f} +/- {mpc_std:.1f}, policy return {policy_mean:.1f} +/- {policy_std:.1f}")
    if args.save:
        model.save(args.save)
        print(f"saved to {args.save}; reload with {algo.__name__}.load({args.save!r})")
    else:
        print("(the model was not saved: pass --save PATH to keep it)")
    return {"untrained": untrained, "mpc": mpc_mean, "policy": policy_mean, "train_seconds": elapsed}


if __name__ == "__main__":
    main()
