"""
MPC versus the distilled policy of a trained POPLIN model: the same agent controls the env by planning with its
learned model at every step (MPC) or with its policy network alone, which is what distillation buys (no model
rollouts at run time).

    # a model trained through the zoo (it plans on raw observations, so a run with normalize: True works too)
    python examples/mpc_vs_policy.py --model logs/poplin_p/Pendulum-v1_1/Pendulum-v1.zip --algo poplin_p
    # or train one here first
    python examples/mpc_vs_policy.py --algo poplin_a --steps 3000
    # (from a source checkout without installing, prefix the commands with PYTHONPATH=.)
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
import yaml
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from sb3_poplin import POPLIN_A, POPLIN_P
from sb3_poplin.zoo import hyperparams_file

ALGOS = {"poplin_a": POPLIN_A, "poplin_p": POPLIN_P}


def zoo_settings(algo: str, env_id: str) -> dict:
    """The algorithm's entry for ``env_id`` in the packaged rl-zoo3 file (sb3_poplin/hyperparams/<algo>.yml), without the
    keys that are the zoo's own or that this script sets."""
    entry = yaml.safe_load(hyperparams_file(algo).read_text())[env_id]
    return {k: v for k, v in entry.items() if k not in {"n_timesteps", "policy", "buffer_size", "predict_with"}}


def control(model: POPLIN_A | POPLIN_P, env: gym.Env, mode: str, episodes: int) -> tuple[float, float, float]:
    """Episode returns and the time per step of one control mode.

    :param model: the agent
    :param env: a Monitor-wrapped env
    :param mode: ``mpc`` or ``policy``
    :param episodes: episodes to run
    :return: mean return, its std, milliseconds per step
    """
    model.predict_with = mode
    start = time.perf_counter()
    returns, lengths = evaluate_policy(model, env, n_eval_episodes=episodes, return_episode_rewards=True)
    milliseconds = 1000.0 * (time.perf_counter() - start) / max(1, int(np.sum(lengths)))
    return float(np.mean(returns)), float(np.std(returns)), milliseconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algo", choices=sorted(ALGOS), default="poplin_p")
    parser.add_argument("--model", help="a saved model (.zip); without it one is trained on --env for --steps")
    parser.add_argument("--env", default="Pendulum-v1", help="env id (training here is set up for Pendulum-v1)")
    parser.add_argument("--steps", type=int, default=3000, help="training steps when no --model is given")
    parser.add_argument("--episodes", type=int, default=5, help="episodes per mode")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    algo = ALGOS[args.algo]
    if args.model:
        model = algo.load(args.model, env=gym.make(args.env))
    else:
        model = algo("MlpPolicy", args.env, buffer_size=args.steps, seed=args.seed, **zoo_settings(args.algo, args.env))
        model.learn(args.steps)
    env = Monitor(gym.make(args.env))
    env.reset(seed=args.seed + 1000)

    print(f"{algo.__name__} on {args.env}, {args.episodes} episodes per mode")
    print(f"{'control':<10}{'mean return':>22}{'ms per step':>14}")
    for mode in ("mpc", "policy"):
        mean, std, milliseconds = control(model, env, mode, args.episodes)
        print(f"{mode:<10}{f'{mean:.1f} +/- {std:.1f}':>22}{milliseconds:>14.2f}")


if __name__ == "__main__":
    main()
