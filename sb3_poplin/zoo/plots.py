"""
rl-zoo3's plot scripts: ``all_plots`` (evaluation curves from ``evaluations.npz``) and ``plot_train`` (training
episode returns from the Monitor files). They read log folders only, so POPLIN and rl-zoo3's algorithms share them.

rl-zoo3 imports seaborn for its plot style only (``seaborn.set()``); seaborn is in rl-zoo3's ``plots`` extra, not in
its requirements. Without it, these commands use matplotlib's copy of that style instead of failing on the import.
"""

from __future__ import annotations

import importlib.util
import sys
import types
import warnings
from typing import Any


def _seaborn_style_stand_in() -> types.ModuleType:
    """A ``seaborn`` module with only ``set()``, which applies matplotlib's built-in seaborn dark-grid style."""
    module = types.ModuleType("seaborn")

    def set_style(*args: Any, **kwargs: Any) -> None:
        from matplotlib import pyplot as plt

        plt.style.use("seaborn-v0_8-darkgrid")

    def missing(name: str) -> Any:
        raise AttributeError(
            f"seaborn.{name} is not available: seaborn is not installed (pip install seaborn, or sb3-poplin[plots])"
        )

    module.set = set_style  # type: ignore[attr-defined]
    module.__getattr__ = missing  # type: ignore[method-assign]
    return module


def ensure_seaborn() -> None:
    """Install :func:`_seaborn_style_stand_in` as ``seaborn`` when seaborn is not installed (no-op otherwise)."""
    if "seaborn" in sys.modules or importlib.util.find_spec("seaborn") is not None:
        return
    warnings.warn("seaborn is not installed: rl-zoo3's plots use matplotlib's seaborn-v0_8-darkgrid style instead")
    sys.modules["seaborn"] = _seaborn_style_stand_in()


def all_plots() -> None:
    """rl-zoo3's ``all_plots`` on ``sys.argv`` (e.g. ``-a poplin_p sac -e Pendulum-v1 -f logs``)."""
    ensure_seaborn()
    from rl_zoo3.plots.all_plots import all_plots as zoo_all_plots

    zoo_all_plots()


def plot_train() -> None:
    """rl-zoo3's ``plot_train`` on ``sys.argv`` (e.g. ``-a poplin_p -e Pendulum-v1 -f logs``)."""
    ensure_seaborn()
    from rl_zoo3.plots.plot_train import plot_train as zoo_plot_train

    zoo_plot_train()
