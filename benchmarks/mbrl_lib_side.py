"""mbrl-lib's side of :mod:`benchmarks.vs_mbrl_lib`: its PETS agent, built through its public API, timed on request.

Runs in mbrl-lib's own virtual environment (started by the driver with that environment's interpreter), so it imports
nothing from ``sb3_poplin``: only torch, numpy, omegaconf, mbrl-lib and :mod:`benchmarks.roof`. Usage (by the driver)::

    .venv-mbrl/bin/python -m benchmarks.mbrl_lib_side '{"population": 500, ...}'

What is built, as in mbrl-lib's PETS recipe: a ``GaussianMLP`` ensemble (``num_layers`` hidden layers of ``hid_size``
SiLU units; all members elite) inside a ``OneDTransitionRewardModel`` (delta targets, input normaliser, reward from a
function), a ``ModelEnv`` with the benchmark's reward and a never-terminating termination function, and a
``TrajectoryOptimizerAgent`` with its ``CEMOptimizer`` (truncated-normal sampling, smoothing ``alpha``, mean of the last
elites executed, last solution shifted to warm-start the next step) made by ``create_trajectory_optim_agent_for_model``.
A planning step is ``agent.act(obs)``.
"""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import numpy as np
import torch as th

from benchmarks.roof import CallTimer, Roof, serve


def build(cfg: dict) -> dict:
    import mbrl.models
    import mbrl.planning
    import omegaconf
    from gymnasium import spaces

    obs_dim, act_dim = cfg["obs_dim"], cfg["act_dim"]
    members, hidden = cfg["members"], cfg["hidden"]
    th.manual_seed(cfg["seed"])
    propagation = {"expectation": "expectation", "fixed_model": "fixed_model"}[cfg["propagation"]]
    ensemble = mbrl.models.GaussianMLP(
        in_size=obs_dim + act_dim,
        out_size=obs_dim,
        device="cpu",
        num_layers=len(hidden),
        ensemble_size=members,
        hid_size=hidden[0],
        propagation_method=propagation,
        activation_fn_cfg={"_target_": "torch.nn.SiLU"},
    )
    dynamics = mbrl.models.OneDTransitionRewardModel(ensemble, target_is_delta=True, normalize=True, learned_rewards=False)
    # The same synthetic whitening statistics as our side (what a fit would leave behind).
    dynamics.input_normalizer.update_stats(th.randn(4096, obs_dim + act_dim) * 2.0 + 0.5)
    velocity = cfg["velocity_index"]

    def reward_fn(action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        # [B, 1]: forward velocity at the end of the step minus the control cost (the benchmark's reward, both sides)
        return next_obs[:, velocity : velocity + 1] - cfg["ctrl_cost"] * action.square().sum(dim=1, keepdim=True)

    def termination_fn(action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        return th.zeros(next_obs.shape[0], 1, dtype=th.bool)

    env = SimpleNamespace(
        observation_space=spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32),
        action_space=spaces.Box(-1.0, 1.0, (act_dim,), np.float32),
    )
    generator = th.Generator().manual_seed(cfg["seed"])
    model_env = mbrl.models.ModelEnv(env, dynamics, termination_fn, reward_fn, generator=generator)
    agent_cfg = omegaconf.OmegaConf.create(
        {
            "_target_": "mbrl.planning.TrajectoryOptimizerAgent",
            # hydra-core >= 1.1 instantiates nested configs by default; the agent fills in the optimizer's bounds
            # itself and instantiates it later, as with the hydra 1.0 that mbrl-lib pins.
            "_recursive_": False,
            "action_lb": "???",
            "action_ub": "???",
            "planning_horizon": cfg["horizon"],
            "replan_freq": 1,
            "verbose": False,
            "optimizer_cfg": {
                "_target_": "mbrl.planning.CEMOptimizer",
                "num_iterations": cfg["iterations"],
                "elite_ratio": cfg["n_elites"] / cfg["population"],
                "population_size": cfg["population"],
                "alpha": 0.1,
                "device": "cpu",
                "lower_bound": "???",
                "upper_bound": "???",
                "return_mean_elites": True,
                "clipped_normal": False,
            },
        }
    )
    agent = mbrl.planning.create_trajectory_optim_agent_for_model(model_env, agent_cfg, num_particles=cfg["particles"])
    obs = np.random.default_rng(cfg["seed"]).standard_normal(obs_dim).astype(np.float32)

    def step() -> None:
        agent.act(obs)

    for _ in range(cfg["warmup"]):
        step()

    def rows_of(x: th.Tensor, *args: object, **kwargs: object) -> int:
        # Expectation: every member on all B rows; fixed model: B / members rows each.
        return x.shape[0] if propagation == "expectation" else x.shape[0] // members

    timer = CallTimer(rows_of)
    roof = Roof(members, hidden, obs_dim + act_dim, obs_dim, th.device("cpu"))
    return {"mbrl-lib PETS": (step, timer, [(ensemble, "forward", "model")], roof)}


def main() -> None:
    cfg = json.loads(sys.argv[1])
    th.set_num_threads(cfg["threads"])
    serve(build(cfg))


if __name__ == "__main__":
    main()
