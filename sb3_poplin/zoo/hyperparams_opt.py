"""
Optuna search spaces of POPLIN-A and POPLIN-P for rl-zoo3's ``--optimize``.

Like rl-zoo3's samplers, each sampler suggests raw parameters and a converter turns them into constructor arguments;
the converter alone is what ``--trial-id`` uses to rebuild a trial's hyperparameters from the study. The choices are
module-level tuples so a search can be narrowed (or widened) without touching the functions.

Two sizes of the planning and model choices (:data:`SEARCH_SPACES`): ``cpu`` (the default) keeps every trial
affordable on a few CPU cores (at most 200 candidates x horizon 20 x 5 CEM iterations = 20,000 imagined transitions
per step, through members of at most 3 x 128); ``paper`` reaches the paper's configuration and beyond (up to 1,000 x 30
x 8 = 240,000 transitions per step through members of up to 4 x 256: one 600-step trial took 25 min on 2 cores). Choose
with the environment variable ``SB3_POPLIN_SEARCH_SPACE=paper`` (read when this module is imported) or
:func:`use_search_space`.

Everything not sampled (ensemble size, training schedule, ``n_timesteps``, ``predict_with``, ...) comes from the
hyperparameter file and ``--hyperparams``. Evaluations use the zoo's ``--eval-episodes``; MPC evaluation plans at every
step, so keep it small.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import optuna

from sb3_poplin.common.distillation import DISTILLATIONS

#: name -> the planning and model choices of that size (keys: the module-level names they set)
SEARCH_SPACES: dict[str, dict[str, tuple[int, ...]]] = {
    "cpu": {
        "POPULATION_SIZES": (50, 100, 200),
        "HORIZONS": (10, 15, 20),
        "CEM_ITERATIONS": (2, 3, 5),
        "DYNAMICS_WIDTHS": (32, 64, 128),
        "DYNAMICS_DEPTHS": (2, 3),
    },
    "paper": {
        "POPULATION_SIZES": (100, 200, 400, 500, 1000),
        "HORIZONS": (10, 15, 20, 25, 30),
        "CEM_ITERATIONS": (2, 3, 5, 8),
        "DYNAMICS_WIDTHS": (64, 128, 200, 256),
        "DYNAMICS_DEPTHS": (2, 3, 4),
    },
}
#: the environment variable that chooses the search space at import
SEARCH_SPACE_VARIABLE = "SB3_POPLIN_SEARCH_SPACE"

#: CEM candidates per step
POPULATION_SIZES: tuple[int, ...] = SEARCH_SPACES["cpu"]["POPULATION_SIZES"]
#: planning horizons
HORIZONS: tuple[int, ...] = SEARCH_SPACES["cpu"]["HORIZONS"]
#: CEM iterations per real step
CEM_ITERATIONS: tuple[int, ...] = SEARCH_SPACES["cpu"]["CEM_ITERATIONS"]
#: hidden width and depth of each ensemble member
DYNAMICS_WIDTHS: tuple[int, ...] = SEARCH_SPACES["cpu"]["DYNAMICS_WIDTHS"]
DYNAMICS_DEPTHS: tuple[int, ...] = SEARCH_SPACES["cpu"]["DYNAMICS_DEPTHS"]


def use_search_space(name: str) -> None:
    """Set the planning and model choices (``POPULATION_SIZES``, ``HORIZONS``, ``CEM_ITERATIONS``,
    ``DYNAMICS_WIDTHS``, ``DYNAMICS_DEPTHS``) to those of ``SEARCH_SPACES[name]``.

    :param name: ``cpu`` or ``paper``
    """
    global POPULATION_SIZES, HORIZONS, CEM_ITERATIONS, DYNAMICS_WIDTHS, DYNAMICS_DEPTHS
    if name not in SEARCH_SPACES:
        raise ValueError(f"unknown search space {name!r}; choose one of {sorted(SEARCH_SPACES)} ({SEARCH_SPACE_VARIABLE})")
    space = SEARCH_SPACES[name]
    POPULATION_SIZES, HORIZONS, CEM_ITERATIONS = space["POPULATION_SIZES"], space["HORIZONS"], space["CEM_ITERATIONS"]
    DYNAMICS_WIDTHS, DYNAMICS_DEPTHS = space["DYNAMICS_WIDTHS"], space["DYNAMICS_DEPTHS"]


use_search_space(os.environ.get(SEARCH_SPACE_VARIABLE, "cpu"))

#: share of the population kept as elites (n_elites = that share of the population, at least 2)
ELITE_FRACTIONS: tuple[float, ...] = (0.05, 0.1, 0.2)

#: POPLIN-A: (low, high) of the log-uniform initial std of the action noise (the paper's std 0.5 is inside)
POPLIN_A_INIT_SIGMA: tuple[float, float] = (0.05, 1.0)
#: POPLIN-A: width of the two hidden layers of the policy network
POPLIN_A_POLICY_WIDTHS: tuple[int, ...] = (32, 64, 128)
POPLIN_A_VARIANTS: tuple[str, ...] = ("init", "replan")

#: POPLIN-P: (low, high) of the log-uniform initial std of the parameter noise (BC's 0.03 and AVG's 0.1 are inside)
POPLIN_P_INIT_SIGMA: tuple[float, float] = (0.005, 0.3)
#: POPLIN-P: width of the one hidden layer; kept small because CEM searches over every parameter of the network
POPLIN_P_POLICY_WIDTHS: tuple[int, ...] = (16, 32, 64)
POPLIN_P_VARIANTS: tuple[str, ...] = ("sep", "uni")
#: POPLIN-P's distillation schemes to search over: every registered one
POPLIN_P_DISTILLATIONS: tuple[str, ...] = tuple(name for name, cls in DISTILLATIONS.items() if "POPLIN_P" in cls.algorithms)
#: PETS: (low, high) of the log-uniform initial std of the action sequences in [-1, 1] (PETS' own 0.5 is inside)
PETS_INIT_SIGMA: tuple[float, float] = (0.1, 1.0)


def _sample_planning(trial: optuna.Trial) -> dict[str, Any]:
    """The parameters POPLIN-A and POPLIN-P share: CEM, horizon and ensemble."""
    return {
        "population_size": trial.suggest_categorical("population_size", POPULATION_SIZES),
        "elite_fraction": trial.suggest_categorical("elite_fraction", ELITE_FRACTIONS),
        "horizon": trial.suggest_categorical("horizon", HORIZONS),
        "cem_iterations": trial.suggest_categorical("cem_iterations", CEM_ITERATIONS),
        "dynamics_width": trial.suggest_categorical("dynamics_width", DYNAMICS_WIDTHS),
        "dynamics_depth": trial.suggest_categorical("dynamics_depth", DYNAMICS_DEPTHS),
    }


def _convert_planning(params: dict[str, Any]) -> dict[str, Any]:
    population = int(params["population_size"])
    return {
        "population_size": population,
        # At least 2 elites so CEM can estimate a standard deviation; never more than the population.
        "n_elites": min(population, max(2, round(float(params["elite_fraction"]) * population))),
        "horizon": int(params["horizon"]),
        "cem_iterations": int(params["cem_iterations"]),
        "dynamics_net_arch": [int(params["dynamics_width"])] * int(params["dynamics_depth"]),
    }


def _converted(
    trial: optuna.Trial, converter: Callable[[dict[str, Any]], dict[str, Any]], params: dict[str, Any]
) -> dict[str, Any]:
    """Constructor arguments from raw parameters, recording the derived elite count on the trial."""
    hyperparams = converter(params)
    trial.set_user_attr("n_elites", hyperparams["n_elites"])
    return hyperparams


def convert_poplin_a_params(params: dict[str, Any]) -> dict[str, Any]:
    """
    Constructor arguments of POPLIN_A from the raw parameters of a trial.

    :param params: ``trial.params`` of a trial sampled by :func:`sample_poplin_a_params`
    :return: keyword arguments of :class:`~sb3_poplin.POPLIN_A` (plain YAML types)
    """
    width = int(params["policy_width"])
    return {
        **_convert_planning(params),
        "init_sigma": float(params["init_sigma"]),
        "planning_variant": str(params["planning_variant"]),
        "policy_kwargs": {"net_arch": [width, width]},
    }


def convert_poplin_p_params(params: dict[str, Any]) -> dict[str, Any]:
    """
    Constructor arguments of POPLIN_P from the raw parameters of a trial.

    :param params: ``trial.params`` of a trial sampled by :func:`sample_poplin_p_params`
    :return: keyword arguments of :class:`~sb3_poplin.POPLIN_P` (plain YAML types)
    """
    return {
        **_convert_planning(params),
        "init_sigma": float(params["init_sigma"]),
        "planning_variant": str(params["planning_variant"]),
        "distillation": str(params["distillation"]),
        "policy_kwargs": {"net_arch": [int(params["policy_width"])]},
    }


def sample_poplin_a_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    Sampler for POPLIN-A (rl-zoo3's sampler signature).

    :param trial: the Optuna trial
    :param n_actions: size of the action space (unused: the noise is per action already)
    :param n_envs: number of training envs (unused)
    :param additional_args: rl-zoo3's extra information (unused)
    :return: constructor arguments that override the hyperparameter file
    """
    params = {
        **_sample_planning(trial),
        "init_sigma": trial.suggest_float("init_sigma", *POPLIN_A_INIT_SIGMA, log=True),
        "policy_width": trial.suggest_categorical("policy_width", POPLIN_A_POLICY_WIDTHS),
        "planning_variant": trial.suggest_categorical("planning_variant", POPLIN_A_VARIANTS),
    }
    return _converted(trial, convert_poplin_a_params, params)


def sample_poplin_p_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    Sampler for POPLIN-P (rl-zoo3's sampler signature).

    :param trial: the Optuna trial
    :param n_actions: size of the action space (unused)
    :param n_envs: number of training envs (unused)
    :param additional_args: rl-zoo3's extra information (unused)
    :return: constructor arguments that override the hyperparameter file
    """
    params = {
        **_sample_planning(trial),
        "init_sigma": trial.suggest_float("init_sigma", *POPLIN_P_INIT_SIGMA, log=True),
        "policy_width": trial.suggest_categorical("policy_width", POPLIN_P_POLICY_WIDTHS),
        "planning_variant": trial.suggest_categorical("planning_variant", POPLIN_P_VARIANTS),
        "distillation": trial.suggest_categorical("distillation", POPLIN_P_DISTILLATIONS),
    }
    return _converted(trial, convert_poplin_p_params, params)


def convert_pets_params(params: dict[str, Any]) -> dict[str, Any]:
    """
    Constructor arguments of PETS from the raw parameters of a trial.

    :param params: ``trial.params`` of a trial sampled by :func:`sample_pets_params`
    :return: keyword arguments of :class:`~sb3_poplin.PETS` (plain YAML types)
    """
    return {**_convert_planning(params), "init_sigma": float(params["init_sigma"])}


def convert_rs_params(params: dict[str, Any]) -> dict[str, Any]:
    """
    Constructor arguments of RS (random shooting: one round, so no iterations nor sigma to search).

    :param params: ``trial.params`` of a trial sampled by :func:`sample_rs_params`
    :return: keyword arguments of :class:`~sb3_poplin.RS` (plain YAML types)
    """
    # Random shooting executes the best sequence; two elites are kept only for the planner's diagnostics.
    return {**_convert_planning({**params, "cem_iterations": 1, "elite_fraction": 0.0}), "n_elites": 2}


def sample_pets_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    Sampler for PETS (rl-zoo3's sampler signature).

    :param trial: the Optuna trial
    :param n_actions: size of the action space (unused)
    :param n_envs: number of training envs (unused)
    :param additional_args: rl-zoo3's extra information (unused)
    :return: constructor arguments that override the hyperparameter file
    """
    params = {**_sample_planning(trial), "init_sigma": trial.suggest_float("init_sigma", *PETS_INIT_SIGMA, log=True)}
    return _converted(trial, convert_pets_params, params)


def sample_rs_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    Sampler for random shooting (rl-zoo3's sampler signature): population, horizon and ensemble only.

    :param trial: the Optuna trial
    :param n_actions: size of the action space (unused)
    :param n_envs: number of training envs (unused)
    :param additional_args: rl-zoo3's extra information (unused)
    :return: constructor arguments that override the hyperparameter file
    """
    params = {
        "population_size": trial.suggest_categorical("population_size", POPULATION_SIZES),
        "horizon": trial.suggest_categorical("horizon", HORIZONS),
        "dynamics_width": trial.suggest_categorical("dynamics_width", DYNAMICS_WIDTHS),
        "dynamics_depth": trial.suggest_categorical("dynamics_depth", DYNAMICS_DEPTHS),
    }
    return _converted(trial, convert_rs_params, params)


#: zoo name -> sampler, registered into ``rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER``
SAMPLERS: dict[str, Callable[..., dict[str, Any]]] = {
    "poplin_a": sample_poplin_a_params,
    "poplin_p": sample_poplin_p_params,
    "pets": sample_pets_params,
    "rs": sample_rs_params,
}
#: zoo name -> converter, registered into ``rl_zoo3.hyperparams_opt.HYPERPARAMS_CONVERTER``
CONVERTERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "poplin_a": convert_poplin_a_params,
    "poplin_p": convert_poplin_p_params,
    "pets": convert_pets_params,
    "rs": convert_rs_params,
}
