from sb3_poplin.common.policies import PlannerOnlyPolicy as MlpPolicy
from sb3_poplin.rs.rs import RS

__all__ = ["RS", "MlpPolicy"]
