"""Loading sb3-poplin agents inside rl-zoo3's enjoy and record_video."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from sb3_poplin.zoo.algorithms import ZOO_ALGOS


def _inference_loader(algo_class: type[BaseAlgorithm], created_envs: list[VecEnv]) -> type[BaseAlgorithm]:
    """A stand-in for ``algo_class`` in ``ALGOS`` whose ``load`` gives the model the script's env and a 1-slot buffer.

    The env matters: the model plans on raw observations and undoes VecNormalize itself, which it can only do when
    it holds the VecNormalize (rl-zoo3's enjoy loads without an env). The 1-slot buffer is what rl-zoo3 does for its
    off-policy algorithms (a hard-coded list in enjoy/record_video that a plugin cannot extend): nothing is stored
    while enjoying, so the replay buffer of the saved size need not be allocated.
    """

    # a subclass of a class chosen at run time (the checker cannot type a dynamic base)
    class InferenceLoader(algo_class):  # type: ignore[valid-type, misc]
        @classmethod
        def load(cls, path: Any, env: Any = None, **kwargs: Any) -> BaseAlgorithm:
            if env is None and created_envs:
                env = created_envs[-1]
            kwargs.setdefault("buffer_size", 1)
            # The real class loads, so the model is a genuine POPLIN_A/POPLIN_P (and its class-name check passes).
            return algo_class.load(path, env=env, **kwargs)

    InferenceLoader.__qualname__ = InferenceLoader.__name__ = f"{algo_class.__name__}InferenceLoader"
    return InferenceLoader


@contextmanager
def inference_loading(module: ModuleType, attribute: str = "create_test_env") -> Iterator[None]:
    """
    While rl-zoo3's enjoy/record_video run: remember the env they build with ``module.<attribute>`` and load
    sb3-poplin's agents onto it (see :func:`_inference_loader`). Everything is restored on exit.

    :param module: the module whose global ``create_test_env`` the script calls
    :param attribute: the name of that function there
    """
    from rl_zoo3.utils import ALGOS

    created_envs: list[VecEnv] = []
    original_create = getattr(module, attribute)

    def create_and_remember(*args: Any, **kwargs: Any) -> VecEnv:
        env = original_create(*args, **kwargs)
        created_envs.append(env)
        return env

    saved = {name: ALGOS[name] for name in ZOO_ALGOS if name in ALGOS}
    setattr(module, attribute, create_and_remember)
    for name in saved:
        ALGOS[name] = _inference_loader(saved[name], created_envs)
    try:
        yield
    finally:
        setattr(module, attribute, original_create)
        ALGOS.update(saved)
