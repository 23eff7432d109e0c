"""rl-zoo3's ExperimentManager, pointed at the hyperparameter files shipped with sb3-poplin."""

from __future__ import annotations

import inspect
from typing import Any

from rl_zoo3.exp_manager import ExperimentManager

from sb3_poplin.zoo.algorithms import CONFIG_SETS, ZOO_ALGOS, hyperparams_file

_SIGNATURE = inspect.signature(ExperimentManager.__init__)


class PoplinExperimentManager(ExperimentManager):
    """
    :class:`rl_zoo3.exp_manager.ExperimentManager` that reads ``sb3_poplin/hyperparams/<algo>.yml`` for sb3-poplin's
    algorithms when no ``config`` (``--conf-file``) is given, and ``sb3_poplin/hyperparams/cpu/<algo>.yml`` with
    ``--conf-file cpu``.

    rl-zoo3 looks for ``hyperparams/<algo>.yml`` next to its own package, where a plugin cannot (and should not) put
    files; everything else is rl-zoo3's. Other algorithms (sac, ppo, ...) keep rl-zoo3's files.

    :param args: positional arguments of ``ExperimentManager`` (``args, algo, env_id, log_folder, ...``)
    :param kwargs: keyword arguments of ``ExperimentManager``
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Bind against rl-zoo3's signature so ``algo`` and ``config`` are found however the caller passed them.
        bound = _SIGNATURE.bind(self, *args, **kwargs)
        algo, config = bound.arguments.get("algo"), bound.arguments.get("config")
        if algo in ZOO_ALGOS and config is None:
            bound.arguments["config"] = str(hyperparams_file(algo))
        elif algo in ZOO_ALGOS and config in CONFIG_SETS:
            # ``--conf-file cpu``: a set of files shipped with the package, by name (no such file in the working folder)
            bound.arguments["config"] = str(hyperparams_file(algo, config))
        super().__init__(*bound.args[1:], **bound.kwargs)

    def _preprocess_hyperparams(self, hyperparams: dict[str, Any]) -> Any:
        # rl-zoo3 takes an entry's ``env_kwargs`` for the training env, but its evaluation env keeps the command line's
        # (none): an entry that changes the observation (``exclude_current_positions_from_observation: false``) would be
        # evaluated on another observation space. Without --eval-env-kwargs, evaluate on the env it trains on.
        processed = super()._preprocess_hyperparams(hyperparams)
        if self._eval_env_kwargs_args is None:
            self.eval_env_kwargs = self.env_kwargs
        return processed
