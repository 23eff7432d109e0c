"""
rl-zoo3's plot commands for logs of sb3-poplin and rl-zoo3 runs alike, usable on a machine without a display:

* ``all_plots``: rl-zoo3's evaluation curves (``evaluations.npz``), table and ``-o`` results file;
* ``plot_from_file``: rl-zoo3's plots of such a results file (needs seaborn: ``pip install sb3-poplin[plots]``);
* ``plot_train``: the training episode returns (Monitor files), with rl-zoo3's flags, written here so that the
  smoothing window fits short runs: a run with fewer episodes than ``-w`` is smoothed over half of its episodes
  instead of being left out (rl-zoo3 draws empty axes then).

Each takes ``--figures DIR`` besides its rl-zoo3 flags: every figure is written to ``DIR/<figure name>.png``, laid out
so that titles and axis labels are inside the image. Without a display (no ``DISPLAY`` on Linux, or a non-interactive
matplotlib backend) the figures go to ``zoo_plots/`` unless ``--no-display`` was given, and the paths are printed.

rl-zoo3 imports seaborn for its plot style only (``seaborn.set()``) in ``all_plots``; seaborn is in rl-zoo3's
``plots`` extra, not in its requirements. Without it, ``all_plots`` and ``plot_train`` use matplotlib's copy of that
style instead of failing on the import.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
import types
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

#: where figures go when there is no display and no --figures
HEADLESS_FOLDER = Path("zoo_plots")


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

    # a stand-in module for seaborn, built at run time: the checker cannot know its attributes
    module.set = set_style  # type: ignore[attr-defined]
    module.__getattr__ = missing  # type: ignore[method-assign]
    return module


def ensure_seaborn() -> None:
    """Install :func:`_seaborn_style_stand_in` as ``seaborn`` when seaborn is not installed (no-op otherwise)."""
    if "seaborn" in sys.modules or importlib.util.find_spec("seaborn") is not None:
        return
    warnings.warn("seaborn is not installed: rl-zoo3's plots use matplotlib's seaborn-v0_8-darkgrid style instead")
    sys.modules["seaborn"] = _seaborn_style_stand_in()


def has_display() -> bool:
    """Whether figures can be shown: an interactive matplotlib backend and, on Linux, an X or Wayland display."""
    import matplotlib

    backend = matplotlib.get_backend().lower()
    if backend in ("agg", "pdf", "ps", "svg", "cairo", "template") or "inline" in backend:
        return False
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def figure_file_name(label: str) -> str:
    """A file name for a figure called ``label`` (its window title): letters, digits, ``-`` and ``_`` only."""
    return (re.sub(r"[^A-Za-z0-9_-]+", "_", label).strip("_") or "figure") + ".png"


def save_open_figures(folder: Path, dpi: int = 120) -> list[Path]:
    """Write every open matplotlib figure to ``folder/<its name>.png`` with its labels inside the image."""
    from matplotlib import pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in plt.get_fignums():
        figure = plt.figure(number)
        figure.tight_layout()
        path = folder / figure_file_name(str(figure.get_label() or f"figure_{number}"))
        # bbox "tight" grows the image to hold whatever tight_layout could not fit (long titles, big fonts)
        figure.savefig(path, dpi=dpi, bbox_inches="tight")
        paths.append(path)
        print(f"Saved {path}")
    return paths


@contextmanager
def figure_output(figures: Path | None, display: bool) -> Iterator[None]:
    """While a plot command runs, turn its ``plt.show()`` into: save the figures (to ``figures``, or to
    :data:`HEADLESS_FOLDER` when there is no display and ``display`` is asked), then show them if there is a display
    and ``display`` is asked.

    :param figures: folder for the PNG files (None: only when headless)
    :param display: whether the command would show its figures (rl-zoo3's ``--no-display`` not given)
    """
    import matplotlib

    interactive = has_display()
    if not interactive:
        matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    original_show = plt.show
    folder = figures if figures is not None else (HEADLESS_FOLDER if display and not interactive else None)
    saved: list[Path] = []

    def save_then_show(*args: Any, **kwargs: Any) -> None:
        if folder is not None:
            saved.extend(save_open_figures(folder))
        if display and interactive:
            for number in plt.get_fignums():
                plt.figure(number).tight_layout()
            original_show(*args, **kwargs)

    plt.show = save_then_show
    try:
        yield
        if folder is not None and not saved and plt.get_fignums():
            save_open_figures(folder)  # the command skipped plt.show() (rl-zoo3's --no-display)
    finally:
        plt.show = original_show
        plt.close("all")


def _split_figures_option(argv: list[str], command: str) -> tuple[Path | None, list[str]]:
    """Take ``--figures DIR`` out of ``argv`` (the rest goes to rl-zoo3's parser); with ``-h`` say what it does."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--figures", type=Path, default=None)
    known, rest = parser.parse_known_args(argv)
    if "-h" in rest or "--help" in rest:
        print(
            f"sb3-poplin-zoo {command} adds to rl-zoo3's flags below:\n"
            "  --figures DIR   write every figure to DIR/<figure name>.png (without a display: zoo_plots/ by default)\n"
        )
    return known.figures, rest


def _folder_env_names(argv: list[str]) -> list[str]:
    """``argv`` with the env ids after ``-e``/``--env`` written as rl-zoo3 names their run folders (a namespaced id such
    as ``sb3_poplin/PETSHalfCheetah-v0`` has its slash as a dash there), so both spellings find the runs."""
    out, in_envs = [], False
    for arg in argv:
        if arg in ("-e", "--env"):
            in_envs = True
        elif arg.startswith("-"):
            in_envs = False
        elif in_envs:
            arg = arg.replace("/", "-")
        out.append(arg)
    return out


def _run_with_figures(command: str, run: Any, display_flag: str | None = "--no-display") -> None:
    """Run ``run()`` (an rl-zoo3 plot function parsing ``sys.argv``) with the ``--figures`` option handled here."""
    figures, rest = _split_figures_option(sys.argv[1:], command)
    sys.argv = [sys.argv[0], *_folder_env_names(rest)]
    display = display_flag is None or display_flag not in rest
    with figure_output(figures, display):
        run()


def all_plots() -> None:
    """rl-zoo3's ``all_plots`` on ``sys.argv`` (e.g. ``-a poplin_p sac -e Pendulum-v1 -f logs --figures plots``)."""
    ensure_seaborn()
    from rl_zoo3.plots.all_plots import all_plots as zoo_all_plots

    try:
        _run_with_figures("all_plots", zoo_all_plots)
    except np.exceptions.AxisError as error:
        # rl-zoo3 squeezes an algorithm's last evaluations [runs, episodes] and averages over the last axis: one run of
        # one episode leaves no axis.
        raise SystemExit(
            "all_plots: an algorithm has a single run evaluated on a single episode, which rl-zoo3's all_plots cannot "
            "summarise: evaluate with at least 2 episodes (--eval-episodes 2) or run a second seed"
        ) from error


def curve_run_counts(results_file: str) -> dict[str, int]:
    """The fewest runs (seeds) each curve (key) of an ``all_plots -o`` results file has in any env. rl-zoo3 stores the
    final evaluations of a single run as a scalar, which its ``plot_from_file`` cannot summarise.

    :param results_file: the file, with or without its ``.pkl`` suffix (as rl-zoo3's ``-i`` takes it)
    """
    import pickle

    import numpy as np

    path = results_file if results_file.endswith(".pkl") else f"{results_file}.pkl"
    with open(path, "rb") as file:
        results = pickle.load(file)
    counts: dict[str, int] = {}
    for env, curves in results.items():
        if env == "results_table":
            continue
        for key, curve in curves.items():
            runs = 1 if np.ndim(curve["last_evals"]) == 0 else len(curve["last_evals"])
            counts[key] = min(counts.get(key, runs), runs)
    return counts


def plot_from_file() -> None:
    """rl-zoo3's ``plot_from_file`` on ``sys.argv`` (e.g. ``-i results --figures plots``); needs seaborn.

    Curves of a single run (seed) are left out with a note (rl-zoo3's script fails on them); with none left it says so.
    """
    if importlib.util.find_spec("seaborn") is None:
        sys.exit("sb3-poplin-zoo plot_from_file draws with seaborn: pip install seaborn (or sb3-poplin[plots])")
    from rl_zoo3.plots.plot_from_file import plot_from_file as zoo_plot_from_file

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("-i", "--input", default=None)
    parser.add_argument("--skip-keys", nargs="+", default=[])
    parser.add_argument("--keep-keys", nargs="+", default=[])
    known, rest = parser.parse_known_args(sys.argv[1:])
    if known.input is not None:
        counts = curve_run_counts(known.input)
        single = sorted(key for key, runs in counts.items() if runs < 2)
        skip = sorted({*known.skip_keys, *single})
        left = set(counts) - set(skip)
        if known.keep_keys:
            left &= set(known.keep_keys)
        if not left:
            sys.exit("plot_from_file: no curve with at least 2 runs (seeds) is left to plot; train more seeds")
        if single:
            print(f"plot_from_file needs at least 2 runs (seeds) per curve; leaving out {', '.join(single)}")
        rest = ["-i", known.input, *rest, *(["--skip-keys", *skip] if skip else [])]
        rest += ["--keep-keys", *known.keep_keys] if known.keep_keys else []
    sys.argv = [sys.argv[0], *rest]
    _run_with_figures("plot_from_file", zoo_plot_from_file, display_flag=None)


def short_run_window(n_episodes: int, window: int) -> int:
    """The smoothing window of a run: ``window``, or for a run with fewer episodes half of them (at least 1), so that a
    short run still draws a curve of several points instead of none (rl-zoo3) or one (a window of all episodes)."""
    return window if n_episodes >= window else max(1, n_episodes // 2)


def plot_train(argv: list[str] | None = None) -> None:
    """Training episode returns (or lengths, success) of every run of one algorithm, smoothed over a window of episodes:
    rl-zoo3's ``plot_train`` flags plus ``--figures DIR``; a run shorter than the window is smoothed over half its
    episodes (:func:`short_run_window`).

    :param argv: the arguments (default: ``sys.argv[1:]``)
    """
    ensure_seaborn()
    import numpy as np
    import seaborn
    from stable_baselines3.common.monitor import LoadMonitorResultsError, load_results
    from stable_baselines3.common.results_plotter import X_EPISODES, X_TIMESTEPS, X_WALLTIME, ts2xy, window_func

    figures, rest = _split_figures_option(sys.argv[1:] if argv is None else argv, "plot_train")
    parser = argparse.ArgumentParser("Gather results, plot training reward/success")
    parser.add_argument("-a", "--algo", help="Algorithm to include", type=str, required=True)
    parser.add_argument("-e", "--env", help="Environment(s) to include", nargs="+", type=str, required=True)
    parser.add_argument("-f", "--exp-folder", help="Folders to include", type=str, required=True)
    parser.add_argument("--figsize", help="Figure size, width, height in inches.", nargs=2, type=float, default=[6.4, 4.8])
    parser.add_argument("--fontsize", help="Font size", type=int, default=14)
    parser.add_argument("-max", "--max-timesteps", help="Max number of timesteps to display", type=int)
    parser.add_argument("-x", "--x-axis", help="X-axis", choices=["steps", "episodes", "time"], type=str, default="steps")
    parser.add_argument("-y", "--y-axis", help="Y-axis", choices=["success", "reward", "length"], type=str, default="reward")
    parser.add_argument(
        "-w", "--episode-window", help="Rolling window size (shorter runs: half their episodes)", type=int, default=100
    )
    parser.add_argument("--no-display", action="store_true", help="Do not show the figure (save it with --figures)")
    args = parser.parse_args(rest)

    x_axis, x_label = {
        "steps": (X_TIMESTEPS, "Timesteps"),
        "episodes": (X_EPISODES, "Episodes"),
        "time": (X_WALLTIME, "Walltime (in hours)"),
    }[args.x_axis]
    y_column, y_label = {
        "success": ("is_success", "Training Success Rate"),
        "reward": ("r", "Training Episodic Reward"),
        "length": ("l", "Training Episode Length"),
    }[args.y_axis]

    log_path = Path(args.exp_folder) / args.algo
    if not log_path.is_dir():
        sys.exit(f"plot_train: no folder {log_path} (the runs of --algo {args.algo} under -f {args.exp_folder})")
    runs = sorted((entry for entry in log_path.iterdir() if entry.is_dir()), key=lambda entry: entry.stat().st_mtime)
    runs = [run for run in runs if any(env.replace("/", "-") in run.name for env in args.env)]

    with figure_output(figures, display=not args.no_display):
        from matplotlib import pyplot as plt

        seaborn.set()
        plt.figure(y_label, figsize=args.figsize)
        plt.title(y_label, fontsize=args.fontsize)
        plt.xlabel(x_label, fontsize=args.fontsize)
        plt.ylabel(y_label, fontsize=args.fontsize)
        plotted = 0
        for run in runs:
            try:
                data_frame = load_results(str(run))
            except LoadMonitorResultsError:
                continue
            if args.max_timesteps is not None:
                data_frame = data_frame[data_frame.l.cumsum() <= args.max_timesteps]
            if y_column not in data_frame or len(data_frame) == 0:
                print(f"No data available for {run}")
                continue
            x, _ = ts2xy(data_frame, x_axis)
            y = np.asarray(data_frame[y_column], dtype=float)
            window = short_run_window(len(y), args.episode_window)
            if window < args.episode_window:
                print(f"{run.name}: {len(y)} episodes, fewer than the window of {args.episode_window}: smoothed over {window}")
            x, y_mean = window_func(np.asarray(x), y, window, np.mean)
            # a few points are drawn as points too, so a one-point curve is still seen
            plt.plot(x, y_mean, linewidth=2, label=run.name, marker="o" if len(x) < 20 else None)
            plotted += 1
        if plotted == 0:
            print(f"plot_train: no Monitor files of {', '.join(args.env)} under {log_path}")
        else:
            plt.legend()
        plt.show()
