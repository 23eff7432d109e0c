"""MuJoCo's warnings as Python warnings, instead of lines appended to ``MUJOCO_LOG.TXT`` in the working directory.

MuJoCo writes every warning (e.g. gymnasium's HalfCheetah model uses a deprecated compiler attribute) to a log file in
the current directory unless a warning handler is installed. The demo, the zoo's entry points and the tests install
:func:`route_mujoco_warnings`, so running them leaves no file behind; the library itself leaves the process-wide
handler to the application.
"""

from __future__ import annotations

import warnings


class MuJoCoWarning(RuntimeWarning):
    """A warning raised by MuJoCo's C library."""


def _warn(message: str) -> None:
    warnings.warn(f"MuJoCo: {message}", MuJoCoWarning, stacklevel=2)


def route_mujoco_warnings() -> None:
    """Install a MuJoCo warning handler that issues :class:`MuJoCoWarning` (each message shown once per place, as
    Python does); a no-op when MuJoCo is not installed."""
    try:
        import mujoco
    except ImportError:
        return
    mujoco.set_mju_user_warning(_warn)
