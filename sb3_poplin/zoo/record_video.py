"""
rl-zoo3's record_video script with sb3-poplin's algorithms:
``python -m sb3_poplin.zoo.record_video --algo poplin_p --env Pendulum-v1 -n 200``.

Same flags as ``python -m rl_zoo3.record_video`` (which needs moviepy, and pygame for the classic-control envs).
"""

from __future__ import annotations

import runpy

from sb3_poplin.zoo._loading import inference_loading
from sb3_poplin.zoo.registry import register


def main() -> None:
    """Register sb3-poplin with rl-zoo3, then run rl-zoo3's record_video script on ``sys.argv``."""
    register()
    import rl_zoo3.utils

    # rl-zoo3's record_video is a script body under ``if __name__ == "__main__"``, so it is run as __main__; it
    # imports create_test_env from rl_zoo3.utils when it starts, which is where the env is intercepted.
    with inference_loading(rl_zoo3.utils):
        runpy.run_module("rl_zoo3.record_video", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
