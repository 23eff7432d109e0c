"""
The ``sb3-poplin-zoo`` command (also ``python -m sb3_poplin.zoo``): rl-zoo3's scripts with sb3-poplin's algorithms.

``sb3-poplin-zoo <script> [flags of that rl-zoo3 script]``, for every rl-zoo3 script that runs without a network.
rl-zoo3's own ``python -m rl_zoo3.train --algo poplin_p`` cannot work: rl-zoo3 builds its ``--algo`` choices before it
imports any plugin (``--gym-packages`` included), so only a command that registers sb3-poplin first knows them.
"""

from __future__ import annotations

import sys
from typing import Callable

from sb3_poplin.zoo import enjoy, plots, record_training, record_video, train

PROGRAM = "sb3-poplin-zoo"

#: script -> (entry point, what it does)
COMMANDS: dict[str, tuple[Callable[[], None], str]] = {
    "train": (train.main, "train (and --optimize with Optuna); logs/<algo>/<env>_<id>/"),
    "enjoy": (enjoy.main, "run a trained agent (MPC or its distilled policy, as its predict_with says)"),
    "record_video": (record_video.main, "record an agent's episodes to mp4"),
    "record_training": (record_training.main, "one video of every checkpoint, the final and the best model of a run"),
    "all_plots": (plots.all_plots, "evaluation curves of runs of several algorithms; --figures DIR saves PNGs"),
    "plot_train": (plots.plot_train, "training episode returns of one algorithm's runs; --figures DIR saves PNGs"),
    "plot_from_file": (plots.plot_from_file, "plots of an all_plots -o results file; --figures DIR saves PNGs"),
}

#: rl-zoo3 scripts that are not offered, and why
NOT_COVERED = (
    "push_to_hub and load_from_hub upload to and download from the Hugging Face Hub (network, an account and "
    "huggingface_sb3); migrate_to_hub is a script of rl-zoo3's repository, not of its package. Trained POPLIN runs are "
    "ordinary zoo log folders, so those tools work on them where they can run."
)


def usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [f"usage: {PROGRAM} <script> [flags of that rl-zoo3 script]   ({PROGRAM} <script> -h lists them)", ""]
    lines += [f"  {name:<{width}}  {description}" for name, (_, description) in COMMANDS.items()]
    lines += [
        "",
        f"The same as rl-zoo3's `python -m rl_zoo3.<script>`, which cannot know sb3-poplin's algorithms (poplin_a, "
        f"poplin_p, pets, rs): e.g. {PROGRAM} train --algo poplin_p --env Pendulum-v1.",
        f"Not covered: {NOT_COVERED}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """
    Run one of rl-zoo3's scripts, with sb3-poplin registered, on the remaining arguments.

    :param argv: the arguments after the program name (default: ``sys.argv[1:]``)
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        sys.exit(0 if argv else 2)
    if argv[0] not in COMMANDS:
        print(usage(), file=sys.stderr)
        sys.exit(f"{PROGRAM}: unknown script {argv[0]!r}; choose one of {', '.join(COMMANDS)}")
    # The scripts parse sys.argv; naming the command in argv[0] gives their usage lines a meaningful program name.
    sys.argv = [f"{PROGRAM} {argv[0]}", *argv[1:]]
    COMMANDS[argv[0]][0]()


if __name__ == "__main__":
    main()
