"""The ``--num-threads`` flag of the zoo's record scripts, which rl-zoo3 gives to train and enjoy only."""

from __future__ import annotations

import argparse

import torch as th

HELP = "Number of threads for PyTorch (-1 to use default; sb3-poplin's algorithms then choose per model call)"


def take_num_threads(argv: list[str]) -> tuple[int, list[str]]:
    """Take ``--num-threads N`` out of ``argv``, apply it (``torch.set_num_threads``) when N > 0, and return N and the
    rest of the arguments (for rl-zoo3's parser, which does not know the flag)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--num-threads", type=int, default=-1)
    known, rest = parser.parse_known_args(argv)
    if "-h" in rest or "--help" in rest:
        print(f"sb3-poplin-zoo adds to rl-zoo3's flags below:\n  --num-threads N   {HELP}\n")
    if known.num_threads > 0:
        th.set_num_threads(known.num_threads)
    return known.num_threads, rest
