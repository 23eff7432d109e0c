"""
rl-zoo3 integration of sb3-poplin.

rl-zoo3 builds its ``--algo`` choices before it imports ``--gym-packages``, so a plugin cannot register itself from
there (``python -m rl_zoo3.train --algo poplin_p`` cannot work); these entry points register sb3-poplin, then run
rl-zoo3's own scripts with rl-zoo3's flags::

    sb3-poplin-zoo train --algo poplin_p --env Pendulum-v1        # or python -m sb3_poplin.zoo train ...
    sb3-poplin-zoo enjoy|record_video|record_training --algo poplin_p --env Pendulum-v1 -f logs
    sb3-poplin-zoo all_plots|plot_train|plot_from_file ... --figures plots
    python -m sb3_poplin.zoo.train|enjoy|record_video|record_training ...   # the same, as modules

In your own code, call :func:`register` before using rl-zoo3's ``ALGOS`` or ``ExperimentManager``.
"""

from sb3_poplin.zoo.algorithms import HYPERPARAMS_DIR, ZOO_ALGOS, hyperparams_file
from sb3_poplin.zoo.registry import register

__all__ = ["HYPERPARAMS_DIR", "ZOO_ALGOS", "hyperparams_file", "register"]
