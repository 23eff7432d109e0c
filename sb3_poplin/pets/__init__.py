from sb3_poplin.pets.pets import PETS
from sb3_poplin.pets.policies import MlpPolicy

__all__ = ["PETS", "MlpPolicy"]
