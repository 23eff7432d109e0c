"""
rl-zoo3 integration of sb3-poplin.

rl-zoo3 builds its ``--algo`` choices before it imports ``--gym-packages``, so a plugin cannot register itself from
there; these entry points register sb3-poplin, then run rl-zoo3's own scripts with rl-zoo3's flags::

    python -m sb3_poplin.zoo.train --algo poplin_p --env Pendulum-v1
    python -m sb3_poplin.zoo.enjoy --algo poplin_p --env Pendulum-v1 -f logs
    python -m sb3_poplin.zoo.record_video --algo poplin_p --env Pendulum-v1 -f logs -n 200
    sb3-poplin-zoo train|enjoy|record_video|all_plots|plot_train ...

In your own code, call :func:`register` before using rl-zoo3's ``ALGOS`` or ``ExperimentManager``.
"""

from sb3_poplin.zoo.registry import HYPERPARAMS_DIR, ZOO_ALGOS, hyperparams_file, register

__all__ = ["HYPERPARAMS_DIR", "ZOO_ALGOS", "hyperparams_file", "register"]
