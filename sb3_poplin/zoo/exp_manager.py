"""rl-zoo3's ExperimentManager, pointed at the hyperparameter files shipped with sb3-poplin."""

from __future__ import annotations

import inspect
from typing import Any

from rl_zoo3.exp_manager import ExperimentManager

from sb3_poplin.zoo.registry import ZOO_ALGOS, hyperparams_file

_SIGNATURE = inspect.signature(ExperimentManager.__init__)


class PoplinExperimentManager(ExperimentManager):
    """
    :class:`rl_zoo3.exp_manager.ExperimentManager` that reads ``sb3_poplin/hyperparams/<algo>.yml`` for sb3-poplin's
    algorithms when no ``config`` (``--conf-file``) is given.

    rl-zoo3 looks for ``hyperparams/<algo>.yml`` next to its own package, where a plugin cannot (and should not) put
    files; everything else is rl-zoo3's. Other algorithms (sac, ppo, ...) keep rl-zoo3's files.

    :param args: positional arguments of ``ExperimentManager`` (``args, algo, env_id, log_folder, ...``)
    :param kwargs: keyword arguments of ``ExperimentManager``
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Bind against rl-zoo3's signature so ``algo`` and ``config`` are found however the caller passed them.
        bound = _SIGNATURE.bind(self, *args, **kwargs)
        if bound.arguments.get("algo") in ZOO_ALGOS and bound.arguments.get("config") is None:
            bound.arguments["config"] = str(hyperparams_file(bound.arguments["algo"]))
        super().__init__(*bound.args[1:], **bound.kwargs)
