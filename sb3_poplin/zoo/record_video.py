"""
rl-zoo3's record_video script with sb3-poplin's algorithms:
``python -m sb3_poplin.zoo.record_video --algo poplin_p --env Pendulum-v1 -n 200``.

Same flags as ``python -m rl_zoo3.record_video`` (which needs moviepy, and pygame for the classic-control envs), plus
``--num-threads N`` as in train and enjoy.
"""

from __future__ import annotations

import runpy
import sys

from sb3_poplin.common.mujoco_warnings import route_mujoco_warnings
from sb3_poplin.zoo._loading import inference_loading
from sb3_poplin.zoo._threads import take_num_threads
from sb3_poplin.zoo.registry import register


def main() -> None:
    """Register sb3-poplin with rl-zoo3, then run rl-zoo3's record_video script on ``sys.argv``."""
    register()
    route_mujoco_warnings()  # no MUJOCO_LOG.TXT in the working directory
    import rl_zoo3.utils

    _, rest = take_num_threads(sys.argv[1:])
    sys.argv = [sys.argv[0], *rest]
    # rl-zoo3's record_video is a script body under ``if __name__ == "__main__"``, so it is run as __main__; it
    # imports create_test_env from rl_zoo3.utils when it starts, which is where the env is intercepted.
    with inference_loading(rl_zoo3.utils):
        runpy.run_module("rl_zoo3.record_video", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
