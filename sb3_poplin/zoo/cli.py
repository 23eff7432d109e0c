"""The ``sb3-poplin-zoo`` command: ``sb3-poplin-zoo train|enjoy|record_video|all_plots|plot_train [flags]``."""

from __future__ import annotations

import sys
from typing import Callable

from sb3_poplin.zoo import enjoy, plots, record_video, train

COMMANDS: dict[str, Callable[[], None]] = {
    "train": train.main,
    "enjoy": enjoy.main,
    "record_video": record_video.main,
    "all_plots": plots.all_plots,
    "plot_train": plots.plot_train,
}


def main(argv: list[str] | None = None) -> None:
    """
    Run one of rl-zoo3's scripts, with sb3-poplin registered, on the remaining arguments.

    :param argv: the arguments after the program name (default: ``sys.argv[1:]``)
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    program = "sb3-poplin-zoo"
    usage = f"usage: {program} {{{','.join(COMMANDS)}}} [flags of that rl-zoo3 script]"
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        sys.exit(0 if argv else 2)
    if argv[0] not in COMMANDS:
        print(usage, file=sys.stderr)
        sys.exit(f"{program}: unknown command {argv[0]!r}; choose one of {', '.join(COMMANDS)}")
    # The scripts parse sys.argv; naming the command in argv[0] gives their usage lines a meaningful program name.
    sys.argv = [f"{program} {argv[0]}", *argv[1:]]
    COMMANDS[argv[0]]()


if __name__ == "__main__":
    main()
