"""Which algorithms sb3-poplin adds to rl-zoo3 and where their hyperparameter files live.

This module imports no other module of :mod:`sb3_poplin.zoo` (and nothing of rl-zoo3): the registration
(:mod:`sb3_poplin.zoo.registry`) and the experiment manager (:mod:`sb3_poplin.zoo.exp_manager`) both read it, so
neither needs the other's module to know the algorithms.
"""

from __future__ import annotations

from pathlib import Path

from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_poplin.pets import PETS
from sb3_poplin.poplin_a import POPLIN_A
from sb3_poplin.poplin_p import POPLIN_P
from sb3_poplin.rs import RS

#: The zoo names of sb3-poplin's algorithms (``--algo``). Each needs a sampler and a converter in
#: :mod:`sb3_poplin.zoo.hyperparams_opt` and a ``hyperparams/<name>.yml`` in the package.
#: The planning baselines PETS and random shooting run on the same engine and are compared through the same CLI.
ZOO_ALGOS: dict[str, type[BaseAlgorithm]] = {
    "poplin_a": POPLIN_A,
    "poplin_p": POPLIN_P,
    "pets": PETS,
    "rs": RS,
}

#: The folder of the hyperparameter files shipped inside the package (package data, so a wheel has them too).
HYPERPARAMS_DIR = Path(__file__).resolve().parent.parent / "hyperparams"


#: Named sets of hyperparameter files shipped with the package, selected with ``--conf-file <name>``: ``cpu`` holds
#: CPU-sized entries of the MuJoCo locomotion tasks (about an hour per 10,000-step run on one core).
CONFIG_SETS: tuple[str, ...] = ("cpu",)


def hyperparams_file(algo: str, config_set: str | None = None) -> Path:
    """
    A hyperparameter file of one of sb3-poplin's algorithms.

    :param algo: a key of :data:`ZOO_ALGOS`
    :param config_set: None for the default file (the paper's settings), or one of :data:`CONFIG_SETS`
    :return: the path of ``sb3_poplin/hyperparams/[<config_set>/]<algo>.yml``
    """
    if algo not in ZOO_ALGOS:
        raise KeyError(f"{algo!r} is not an sb3-poplin algorithm; those are {sorted(ZOO_ALGOS)}")
    if config_set is None:
        return HYPERPARAMS_DIR / f"{algo}.yml"
    if config_set not in CONFIG_SETS:
        raise KeyError(f"{config_set!r} is not a hyperparameter set of sb3-poplin; those are {list(CONFIG_SETS)}")
    return HYPERPARAMS_DIR / config_set / f"{algo}.yml"
