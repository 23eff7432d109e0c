from sb3_poplin.pets.policies import MlpPolicy
from sb3_poplin.rs.rs import RS

__all__ = ["RS", "MlpPolicy"]
