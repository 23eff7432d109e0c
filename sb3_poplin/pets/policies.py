"""Policies of PETS: the planning baselines' placeholder network (the name zips saved by PETS and RS refer to)."""

from sb3_poplin.common.policies import PlannerOnlyPolicy as MlpPolicy

__all__ = ["MlpPolicy"]
