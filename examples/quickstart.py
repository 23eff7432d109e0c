"""
POPLIN-P on Pendulum-v1 in a few thousand steps: the mean return before and after training, planning with the learned
model (MPC) and with the distilled policy network alone.

    python examples/quickstart.py --steps 3000
    PYTHONPATH=. python examples/quickstart.py   # from a source checkout, without installing

About three minutes on one CPU core with the defaults.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from sb3_poplin import POPLIN_P


def mean_returns(model: POPLIN_P, env: gym.Env, episodes: int) -> dict[str, tuple[float, float]]:
    """Mean and std of the episode return with MPC and with the policy network alone.

    :param model: the agent
    :param env: the evaluation env
    :param episodes: episodes per mode
    :return: mode -> (mean, std)
    """
    results = {}
    for mode in ("mpc", "policy"):
        model.predict_with = mode  # what model.predict (and so evaluate_policy) uses
        mean, std = evaluate_policy(model, env, n_eval_episodes=episodes)
        results[mode] = (float(mean), float(std))
    model.predict_with = "mpc"
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000, help="training steps")
    parser.add_argument("--episodes", type=int, default=3, help="evaluation episodes per mode")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    env = gym.make("Pendulum-v1")
    eval_env = Monitor(gym.make("Pendulum-v1"))
    eval_env.reset(seed=args.seed + 1000)
    # The zoo's CPU-sized Pendulum setting (sb3_poplin/hyperparams/poplin_p.yml); the reward function of Pendulum-v1
    # is known to sb3-poplin, so nothing else is needed.
    model = POPLIN_P(
        "MlpPolicy",
        env,
        population_size=100,
        n_elites=10,
        cem_iterations=5,
        horizon=20,
        init_sigma=0.03,
        planning_variant="sep",
        ensemble_size=3,
        dynamics_net_arch=[64, 64],
        dynamics_epochs=20,
        dynamics_batch_size=64,
        learning_starts=200,
        buffer_size=args.steps,
        seed=args.seed,
    )

    before = mean_returns(model, eval_env, args.episodes)
    start = time.perf_counter()
    model.learn(args.steps)
    train_seconds = time.perf_counter() - start
    after = mean_returns(model, eval_env, args.episodes)

    print(f"POPLIN-P on Pendulum-v1, {args.steps} steps of training ({train_seconds:.0f} s)")
    print(f"{'mean return':<14}{'MPC':>20}{'policy':>20}")
    for label, results in (("before", before), ("after", after)):
        cells = "".join(f"{f'{mean:.0f} +/- {std:.0f}':>20}" for mean, std in (results["mpc"], results["policy"]))
        print(f"{label:<14}{cells}")


if __name__ == "__main__":
    main()
