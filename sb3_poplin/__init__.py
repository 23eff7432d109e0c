"""sb3-poplin: POPLIN (model-based planning with policy networks) as Stable-Baselines3 algorithms."""

from sb3_poplin import envs  # noqa: F401  (registers sb3_poplin/PETSHalfCheetah-v0 and sb3_poplin/FixedSwimmer-v0)
from sb3_poplin.export import export_policy
from sb3_poplin.pets import PETS
from sb3_poplin.poplin_a import POPLIN_A
from sb3_poplin.poplin_p import POPLIN_P
from sb3_poplin.rs import RS
from sb3_poplin.version import __version__

__all__ = ["PETS", "POPLIN_A", "POPLIN_P", "RS", "__version__", "export_policy"]
