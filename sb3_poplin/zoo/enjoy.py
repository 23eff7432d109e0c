"""
rl-zoo3's enjoy script with sb3-poplin's algorithms: ``python -m sb3_poplin.zoo.enjoy --algo poplin_p --env Pendulum-v1``.

Same flags as ``python -m rl_zoo3.enjoy``. The agent acts as its ``predict_with`` says (MPC by default, or the
distilled policy); the CEM warm start is carried from step to step through the recurrent-state argument that enjoy
already threads.
"""

from __future__ import annotations

from sb3_poplin.common.mujoco_warnings import route_mujoco_warnings
from sb3_poplin.zoo._loading import inference_loading
from sb3_poplin.zoo.registry import register


def main() -> None:
    """Register sb3-poplin with rl-zoo3, then run rl-zoo3's ``enjoy()`` on ``sys.argv``."""
    register()
    route_mujoco_warnings()  # no MUJOCO_LOG.TXT in the working directory
    import rl_zoo3.enjoy

    with inference_loading(rl_zoo3.enjoy):
        rl_zoo3.enjoy.enjoy()


if __name__ == "__main__":
    main()
