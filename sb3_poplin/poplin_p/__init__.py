from sb3_poplin.poplin_p.policies import MlpPolicy
from sb3_poplin.poplin_p.poplin_p import POPLIN_P

__all__ = ["POPLIN_P", "MlpPolicy"]
