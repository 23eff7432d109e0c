from sb3_poplin.poplin_a.policies import MlpPolicy
from sb3_poplin.poplin_a.poplin_a import POPLIN_A

__all__ = ["POPLIN_A", "MlpPolicy"]
