"""The registration of sb3-poplin's algorithms with rl-zoo3 (which algorithms: :mod:`sb3_poplin.zoo.algorithms`)."""

from __future__ import annotations

import warnings
from typing import Any

from sb3_poplin.zoo.algorithms import CONFIG_SETS, HYPERPARAMS_DIR, ZOO_ALGOS, hyperparams_file

# The algorithms and their files are defined in sb3_poplin.zoo.algorithms; they stay importable from here.
__all__ = ["CONFIG_SETS", "HYPERPARAMS_DIR", "ZOO_ALGOS", "hyperparams_file", "register"]


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
    from sb3_poplin.zoo.exp_manager import PoplinExperimentManager  # imports rl-zoo3 (and Optuna): only when registering

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
        # rl-zoo3 has no hook for a plugin's manager: its module attribute is replaced (a class assigned to a class name)
        rl_zoo3.train.ExperimentManager = PoplinExperimentManager  # type: ignore[misc]


def _set_once(table: dict[str, Any], key: str, value: Any, table_name: str) -> None:
    """Put ``value`` under ``key``, refusing to overwrite something else registered under that name."""
    existing = table.get(key)
    if existing is not None and existing is not value:
        raise ValueError(f"{table_name}[{key!r}] is already {existing!r}; sb3-poplin will not replace it with {value!r}")
    table[key] = value
