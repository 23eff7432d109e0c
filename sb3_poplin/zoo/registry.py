"""Which algorithms sb3-poplin adds to rl-zoo3, where their hyperparameter files live, and the registration itself."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

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


def register() -> None:
    """
    Make sb3-poplin's algorithms known to rl-zoo3, in this process (idempotent).

    * adds them to ``rl_zoo3.utils.ALGOS`` (the ``--algo`` choices of train/enjoy/record_video, which rl-zoo3 builds
      before it imports ``--gym-packages``, hence this function),
    * adds their Optuna samplers and converters to ``rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER`` / ``_CONVERTER``,
    * makes ``rl_zoo3.train`` build :class:`~sb3_poplin.zoo.exp_manager.PoplinExperimentManager`, which reads the
      hyperparameters shipped with sb3-poplin when no ``--conf-file`` is given,
    * imports :mod:`sb3_poplin.envs` so the paper's envs are registered with gymnasium.

    rl-zoo3's own algorithms stay as they are.
    """
    import rl_zoo3.train
    from rl_zoo3 import hyperparams_opt as zoo_hpo
    from rl_zoo3 import utils as zoo_utils

    import sb3_poplin.envs  # noqa: F401  (registers sb3_poplin/PETSHalfCheetah-v0 and sb3_poplin/FixedSwimmer-v0)
    from sb3_poplin.zoo import hyperparams_opt
    from sb3_poplin.zoo.exp_manager import PoplinExperimentManager

    for name, algo_class in ZOO_ALGOS.items():
        _set_once(zoo_utils.ALGOS, name, algo_class, "rl_zoo3.utils.ALGOS")
        _set_once(zoo_hpo.HYPERPARAMS_SAMPLER, name, hyperparams_opt.SAMPLERS[name], "HYPERPARAMS_SAMPLER")
        _set_once(zoo_hpo.HYPERPARAMS_CONVERTER, name, hyperparams_opt.CONVERTERS[name], "HYPERPARAMS_CONVERTER")

    # train() looks the class up in its module globals at call time, so replacing the name there is enough.
    current = rl_zoo3.train.ExperimentManager
    if current is not PoplinExperimentManager:
        if current is not PoplinExperimentManager.__mro__[1]:
            warnings.warn(
                f"rl_zoo3.train.ExperimentManager was already replaced by {current!r}; sb3-poplin replaces it again, "
                "so that other patch is lost for this process."
            )
        rl_zoo3.train.ExperimentManager = PoplinExperimentManager  # type: ignore[misc]


def _set_once(table: dict[str, Any], key: str, value: Any, table_name: str) -> None:
    """Put ``value`` under ``key``, refusing to overwrite something else registered under that name."""
    existing = table.get(key)
    if existing is not None and existing is not value:
        raise ValueError(f"{table_name}[{key!r}] is already {existing!r}; sb3-poplin will not replace it with {value!r}")
    table[key] = value
