"""
The registry of reward and termination functions: one :class:`Task` per env id, and the public functions that look
them up (:func:`get_task_fns`, :func:`reward_mode`, :func:`position_indices`, :func:`get_processing`) or read an env's
settings (:func:`task_kwargs_from_env`).

The family modules (:mod:`~sb3_poplin.rewards.classic`, :mod:`~sb3_poplin.rewards.manipulation`,
:mod:`~sb3_poplin.rewards.locomotion`, :mod:`~sb3_poplin.rewards.paper_envs`) call :func:`register_task` when imported;
:mod:`sb3_poplin.rewards` imports them all, so importing any module of the package registers every env.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

import gymnasium as gym

from sb3_poplin.common.processing import DeltaProcessing, DynamicsProcessing
from sb3_poplin.common.type_aliases import RewardFn, TerminationFn

#: :func:`reward_mode` of a reward reproduced up to float rounding
EXACT = "exact"
#: :func:`reward_mode` of a reward with a term estimated because it is not in the observation
APPROXIMATE = "approximate"


@dataclass(frozen=True)
class Task:
    """
    How to build the reward/termination of one env id.

    :param defaults: every task kwarg the builder understands, with the env's default value.
    :param readers: for each task kwarg, a function that reads its value from ``env.unwrapped``.
    :param build: ``build(**kwargs) -> (reward_fn, termination_fn)``, called with ``defaults`` updated by the user's kwargs.
    :param obs_dim: ``obs_dim(**kwargs) -> int``, the observation size the functions expect (checked against the env by
        :func:`task_kwargs_from_env` to catch observation wrappers and custom models).
    :param mode: ``mode(**kwargs) -> "exact" | "approximate"``.
    :param positions: ``positions(**kwargs) -> tuple[int, ...]``, the observation indices that hold the body's absolute
        position along directions the dynamics do not depend on (see :func:`position_indices`).
    :param processing: what a dynamics model of this env reads and predicts, where the env's authors chose it (None:
        the raw observation and its change; see :func:`get_processing`).
    """

    defaults: dict[str, Any]
    readers: dict[str, Callable[[Any], Any]]
    build: Callable[..., tuple[RewardFn, TerminationFn]]
    obs_dim: Callable[..., int]
    mode: Callable[..., str] = field(default=lambda **_: EXACT)
    positions: Callable[..., tuple[int, ...]] = field(default=lambda **_: ())
    processing: DynamicsProcessing | None = None


_TASKS: dict[str, Task] = {}
# "module.Class" of ``env.unwrapped`` -> env id, to recognise envs created without ``gym.make`` (no spec) or registered
# under another id. The module names the version (hopper_v4 and hopper_v5 both define HopperEnv).
_CLASS_TO_ID: dict[str, str] = {}


def register_task(env_id: str, task: Task, env_class: str) -> None:
    """
    Make an env's reward and termination known to :func:`get_task_fns` (a second call for the same id replaces it).

    :param env_id: gymnasium id
    :param task: how to build its functions
    :param env_class: ``"module.Class"`` of its unwrapped env, to recognise it without a spec
    """
    _TASKS[env_id] = task
    _CLASS_TO_ID[env_class] = env_id


def read_attribute(name: str, cast: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """
    Reader of a private attribute of the unwrapped env, cast to a plain Python type for json/zip serialisation.

    :param name: attribute of ``env.unwrapped``, e.g. ``"_ctrl_cost_weight"``
    :param cast: to a plain Python type, e.g. ``float``
    :return: ``read(unwrapped_env) -> value``, for :attr:`Task.readers`
    """

    def read(env: Any) -> Any:
        return cast(getattr(env, name))

    return read


def known_env_ids() -> list[str]:
    """
    :return: the env ids for which :func:`get_task_fns` has reward and termination functions (sorted).
    """
    return sorted(_TASKS)


def _unknown_id_message(env_id: str) -> str:
    return (
        f"No reward/termination functions are known for env id {env_id!r}. Known ids: {', '.join(known_env_ids())}. "
        "For another env, give the reward explicitly: reward_fn=<callable(obs, action, next_obs) -> reward>, "
        "reward_fn='package.module:function' (an importable function), or reward_fn='learned' to learn the reward "
        "with the dynamics model."
    )


def _task(env_id: str) -> Task:
    try:
        return _TASKS[env_id]
    except KeyError:
        raise ValueError(_unknown_id_message(env_id)) from None


def _full_kwargs(env_id: str, task_kwargs: dict[str, Any]) -> dict[str, Any]:
    task = _task(env_id)
    unknown = sorted(set(task_kwargs) - set(task.defaults))
    if unknown:
        # A typo would otherwise silently fall back to the default and plan with the wrong reward.
        raise ValueError(f"Unknown task kwargs {unknown} for {env_id!r}; accepted: {sorted(task.defaults)}")
    return {**task.defaults, **task_kwargs}


def get_task_fns(env_id: str, **task_kwargs: Any) -> tuple[RewardFn, TerminationFn]:
    """
    Reward and termination functions of an env.

    :param env_id: gymnasium id, e.g. ``"HalfCheetah-v5"`` (see :func:`known_env_ids`).
    :param task_kwargs: env constructor settings that change the reward or termination, as returned by
        :func:`task_kwargs_from_env`; missing ones take the env's default.
    :return: ``(reward_fn, termination_fn)``, both ``f(obs, action, next_obs)`` on batched torch tensors.
    :raises ValueError: for an unknown env id or an unknown kwarg.
    """
    return _task(env_id).build(**_full_kwargs(env_id, task_kwargs))


def reward_mode(env_id: str, **task_kwargs: Any) -> str:
    """
    Whether the reward function of :func:`get_task_fns` is exact for these settings.

    :param env_id: gymnasium id.
    :param task_kwargs: the same kwargs as for :func:`get_task_fns`.
    :return: ``"exact"`` if the reward is reproduced up to float rounding, ``"approximate"`` if some term is estimated
        because it is not in the observation.
    """
    return _task(env_id).mode(**_full_kwargs(env_id, task_kwargs))


def position_indices(env_id: str, **task_kwargs: Any) -> tuple[int, ...]:
    """
    Observation indices that hold the body's absolute position along directions the dynamics do not depend on.

    A locomotion env made with ``exclude_current_positions_from_observation=False`` observes the root's x (and y where
    the body moves in the plane); its physics are the same wherever the body stands, so a dynamics model should not
    read them: they drift out of the range of the training data as the agent runs. The reward reads them (the exact
    forward velocity), the model still predicts their change. Heights (Hopper's z, obs[1] there) are not among them:
    the dynamics and the termination depend on them.

    :param env_id: gymnasium id.
    :param task_kwargs: the same kwargs as for :func:`get_task_fns`.
    :return: sorted indices; empty when the env does not observe such positions (the v5 default).
    """
    return tuple(_task(env_id).positions(**_full_kwargs(env_id, task_kwargs)))


def get_processing(env_id: str | None, obs_dim: int) -> DynamicsProcessing:
    """
    What a dynamics model of an env reads and predicts: the processing its authors chose, else the raw observation and
    its change (:class:`~sb3_poplin.common.processing.DeltaProcessing`).

    :param env_id: gymnasium id (None or an unknown id: the default)
    :param obs_dim: the size of the observations the model will see; a registered processing applies only to the
        registered env's own observation (a wrapper that changes it gets the default)
    :return: the processing
    """
    task = _TASKS.get(env_id) if env_id is not None else None
    if task is None or task.processing is None or task.obs_dim(**task.defaults) != obs_dim:
        return DeltaProcessing()
    return task.processing


def _env_id_of(env: gym.Env) -> str:
    unwrapped = env.unwrapped
    for spec in (getattr(env, "spec", None), getattr(unwrapped, "spec", None)):
        if spec is not None and spec.id in _TASKS:
            return spec.id
    env_class = f"{type(unwrapped).__module__}.{type(unwrapped).__qualname__}"
    if env_class in _CLASS_TO_ID:
        return _CLASS_TO_ID[env_class]
    spec = getattr(unwrapped, "spec", None)
    raise ValueError(_unknown_id_message(spec.id if spec is not None else env_class))


def task_kwargs_from_env(env: gym.Env) -> dict[str, Any]:
    """
    Read, from a (possibly wrapped) gymnasium env, every constructor setting that changes its reward/termination.

    The values are plain Python types (float, int, bool, list) so they can be saved in a zip/json and passed back to
    :func:`get_task_fns`. The env is identified by its spec id (or, for an env built without ``gym.make``, by the class
    of ``env.unwrapped``). Wrappers that change observations or actions are not accounted for.

    :param env: the env, wrapped or not.
    :return: kwargs for :func:`get_task_fns` and :func:`reward_mode`.
    :raises ValueError: if the env is not one of :func:`known_env_ids`.
    """
    env_id = _env_id_of(env)
    task = _TASKS[env_id]
    unwrapped = env.unwrapped
    kwargs = {name: read(unwrapped) for name, read in task.readers.items()}
    shape = getattr(env.observation_space, "shape", None)
    expected = task.obs_dim(**{**task.defaults, **kwargs})
    if shape != (expected,):
        # The functions index into the observation: a wrapper that changes it (frame stacking, a custom model...) would
        # make them silently wrong.
        raise ValueError(
            f"The observation space of this {env_id!r} env has shape {shape}, but the reward/termination functions "
            f"expect ({expected},) for the settings {kwargs}. Observation wrappers and custom models are not supported; "
            "pass reward_fn explicitly."
        )
    return kwargs


def resolve_callable(spec: str | Callable) -> Callable:
    """
    Turn a callable or an importable ``"package.module:function"`` string into a callable.

    :param spec: a callable (returned unchanged) or ``"package.module:attribute"`` (dots after the colon reach nested
        attributes, e.g. ``"pkg.mod:Class.method"``).
    :return: the callable.
    :raises ValueError: if the string is malformed or does not name a callable.
    """
    if callable(spec):
        return spec
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise ValueError(f"Expected a callable or a 'package.module:function' string, got {spec!r}")
    module_name, attr_path = spec.split(":")
    if not module_name or not attr_path:
        raise ValueError(f"Expected a callable or a 'package.module:function' string, got {spec!r}")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"Cannot import module {module_name!r} of {spec!r}: {e}") from e
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"{spec!r}: {part!r} not found") from None
    if not callable(obj):
        raise ValueError(f"{spec!r} is not callable")
    return obj
