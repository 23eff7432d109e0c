"""MuJoCo's warnings become Python warnings instead of a MUJOCO_LOG.TXT file where the program runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
#: gymnasium's HalfCheetah model uses a compiler attribute MuJoCo warns about when it compiles the model
MAKE_HALF_CHEETAH = """
import warnings
import gymnasium as gym
from sb3_poplin.common.mujoco_warnings import MuJoCoWarning, route_mujoco_warnings
if {route}:
    route_mujoco_warnings()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    gym.make("HalfCheetah-v5").close()
print(sum(issubclass(w.category, MuJoCoWarning) for w in caught))
"""


def make_half_cheetah(folder: Path, route: bool) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-c", MAKE_HALF_CHEETAH.format(route=route)]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, check=True).stdout.strip()


def test_routed_warnings_leave_no_log_file(tmp_path: Path) -> None:
    unrouted, routed = tmp_path / "unrouted", tmp_path / "routed"
    unrouted.mkdir()
    routed.mkdir()
    # without the handler MuJoCo writes its log file into the working directory (what the demo and tests left behind)
    assert make_half_cheetah(unrouted, route=False) == "0"
    assert (unrouted / "MUJOCO_LOG.TXT").is_file()
    assert int(make_half_cheetah(routed, route=True)) >= 1
    assert list(routed.iterdir()) == []
