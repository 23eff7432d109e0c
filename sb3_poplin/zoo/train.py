"""
rl-zoo3's train script with sb3-poplin's algorithms: ``python -m sb3_poplin.zoo.train --algo poplin_p --env Pendulum-v1``.

Same flags as ``python -m rl_zoo3.train``; rl-zoo3's own algorithms (sac, td3, ppo, ...) work as before.
"""

from __future__ import annotations

from sb3_poplin.common.mujoco_warnings import route_mujoco_warnings
from sb3_poplin.zoo.registry import register


def main() -> None:
    """Register sb3-poplin with rl-zoo3, then run rl-zoo3's ``train()`` on ``sys.argv``."""
    register()
    route_mujoco_warnings()  # no MUJOCO_LOG.TXT in the working directory
    from rl_zoo3.train import train

    train()


if __name__ == "__main__":
    main()
