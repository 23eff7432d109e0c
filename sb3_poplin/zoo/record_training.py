"""
rl-zoo3's record_training script with sb3-poplin's algorithms: a video of every checkpoint, the final and the best
model of a run, joined into ``training.mp4`` (``-g``: also a gif)::

    python -m sb3_poplin.zoo.record_training --algo poplin_p --env Pendulum-v1 -f logs -n 200

Same flags as ``python -m rl_zoo3.record_training``, plus ``--num-threads N``. rl-zoo3's script records each model by
starting ``python -m rl_zoo3.record_video``, which cannot know sb3-poplin's algorithms; here each is recorded by
``python -m sb3_poplin.zoo.record_video`` (with the same interpreter) instead. It labels and joins the videos with the
``ffmpeg`` program; when none is on the PATH, the one that moviepy installs (imageio-ffmpeg) is used.
"""

from __future__ import annotations

import os
import runpy
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sb3_poplin.common.mujoco_warnings import route_mujoco_warnings
from sb3_poplin.zoo._threads import take_num_threads
from sb3_poplin.zoo.registry import register

ZOO_RECORD_VIDEO = ["python", "-m", "rl_zoo3.record_video"]


@contextmanager
def ffmpeg_on_path() -> Iterator[None]:
    """Make ``ffmpeg`` callable by name (rl-zoo3 runs it through ``os.system``): imageio-ffmpeg's binary, linked from a
    temporary folder put first on the PATH, when the PATH has none."""
    if shutil.which("ffmpeg") is not None:
        yield
        return
    try:
        import imageio_ffmpeg
    except ImportError:
        yield  # rl-zoo3's own error (the videos are not joined) tells the user what is missing
        return
    previous = os.environ.get("PATH", "")
    with tempfile.TemporaryDirectory() as folder:
        os.symlink(imageio_ffmpeg.get_ffmpeg_exe(), os.path.join(folder, "ffmpeg"))
        os.environ["PATH"] = os.pathsep.join([folder, previous])
        try:
            yield
        finally:
            os.environ["PATH"] = previous


@contextmanager
def record_video_with_poplin(num_threads: int) -> Iterator[None]:
    """While rl-zoo3's record_training runs, start ``sb3_poplin.zoo.record_video`` where it starts rl-zoo3's."""
    original_call = subprocess.call

    def call(command: Any, *args: Any, **kwargs: Any) -> int:
        if isinstance(command, list) and command[:3] == ZOO_RECORD_VIDEO:
            command = [sys.executable, "-m", "sb3_poplin.zoo.record_video", *command[3:]]
            if num_threads > 0:
                command += ["--num-threads", str(num_threads)]
        return original_call(command, *args, **kwargs)

    # patched for the duration of rl-zoo3's call, and put back below (a function of another signature)
    subprocess.call = call  # type: ignore[assignment]
    try:
        yield
    finally:
        subprocess.call = original_call


def main() -> None:
    """Register sb3-poplin with rl-zoo3, then run rl-zoo3's record_training script on ``sys.argv``."""
    register()
    route_mujoco_warnings()  # no MUJOCO_LOG.TXT in the working directory
    num_threads, rest = take_num_threads(sys.argv[1:])
    sys.argv = [sys.argv[0], *rest]
    with ffmpeg_on_path(), record_video_with_poplin(num_threads):
        runpy.run_module("rl_zoo3.record_training", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
