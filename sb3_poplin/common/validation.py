"""Checks of constructor arguments and of what the envs return: a bad value fails at once, with a message that says what
to do."""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

#: arguments of Stable-Baselines3's model-free off-policy algorithms (SAC, TD3, DDPG) that POPLIN has no use for, with
#: what to set instead
MODEL_FREE_ARGUMENTS: dict[str, str] = {
    "batch_size": (
        "POPLIN trains two networks on minibatches: set dynamics_batch_size= (the ensemble's) and policy_batch_size= "
        "(the distillation's)"
    ),
    "gamma": (
        "POPLIN's planner sums undiscounted rewards over a finite horizon: set horizon= (how many steps it looks ahead)"
    ),
    "gradient_steps": (
        "POPLIN trains its networks for epochs, each time train_freq comes round: set dynamics_epochs= / "
        "dynamics_max_updates= (ensemble) and policy_epochs= / policy_max_updates= (distillation)"
    ),
    "action_noise": (
        "POPLIN explores through the noise of its planner: set init_sigma= (the initial std of the CEM's search noise)"
    ),
    "optimize_memory_usage": (
        "the planning replay buffer needs every next observation and allocates rows as the data arrives; for less "
        "memory pass replay_buffer_kwargs=dict(noise_dtype='float16') (halves the parameter noise POPLIN-P stores for "
        "AVG) or a smaller buffer_size"
    ),
}
for _name in (
    "tau",
    "ent_coef",
    "target_update_interval",
    "target_entropy",
    "policy_delay",
    "target_policy_noise",
    "target_noise_clip",
):
    MODEL_FREE_ARGUMENTS[_name] = "POPLIN has no critic, target network or entropy term: remove it"
for _name in ("use_sde", "sde_sample_freq", "use_sde_at_warmup"):
    MODEL_FREE_ARGUMENTS[_name] = "POPLIN's policy is deterministic and explores through planning: remove it"


def check_keyword_names(accepted: Sequence[str], algorithm: str, kwargs: Iterable[str]) -> None:
    """Refuse keyword arguments that are not ``accepted``, saying what to pass instead.

    :param accepted: the names the constructor takes
    :param algorithm: class name, for the message
    :param kwargs: the keyword names given
    :raises TypeError: for an argument of model-free algorithms (with the POPLIN argument to use) or an unknown name
        (with the closest accepted names)
    """
    for name in kwargs:
        if name in accepted:
            continue
        if name in MODEL_FREE_ARGUMENTS:
            raise TypeError(f"{algorithm} got the argument {name!r} of model-free algorithms: {MODEL_FREE_ARGUMENTS[name]}.")
        close = difflib.get_close_matches(name, accepted, n=3, cutoff=0.5)
        if not close:
            # A shortened name (popsize, n_iters) is often closer to the end of the real one than to all of it.
            close = [a for a in accepted if name.replace("_", "") in a.replace("_", "")][:3]
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise TypeError(f"{algorithm} got an unexpected keyword argument {name!r}.{hint} See help({algorithm}) for all.")


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(name: str, value: Any, minimum: int, maximum: int | None = None, maximum_name: str = "") -> int:
    """An integer in ``[minimum, maximum]``; floats with an integral value (``1e6`` from a YAML file) are accepted.

    :param name: argument name, for the message
    :param value: the value given
    :param minimum: smallest accepted value
    :param maximum: largest accepted value (None: no bound)
    :param maximum_name: what the maximum is (e.g. ``population_size=500``), for the message
    :return: the value as an ``int``
    """
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and not _is_integer(value):
        if float(value).is_integer():
            value = int(float(value))
    if not _is_integer(value):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"[{minimum}, {maximum_name or maximum}]" if maximum is not None else f">= {minimum}"
        raise ValueError(f"{name} must be {'in ' if maximum is not None else ''}{bound}, got {value}")
    return value


def check_optional_int(name: str, value: Any, minimum: int, maximum: int | None = None, maximum_name: str = "") -> int | None:
    """Like :func:`check_int`, with None accepted (and returned)."""
    return None if value is None else check_int(name, value, minimum, maximum, maximum_name)


def check_float(
    name: str,
    value: Any,
    minimum: float | None = None,
    maximum: float | None = None,
    min_inclusive: bool = True,
    max_inclusive: bool = True,
) -> float:
    """A finite real number within the given bounds.

    :param name: argument name, for the message
    :param value: the value given
    :param minimum: lower bound (None: none)
    :param maximum: upper bound (None: none)
    :param min_inclusive: whether the lower bound itself is accepted
    :param max_inclusive: whether the upper bound itself is accepted
    :return: the value as a ``float``
    """
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or value != value or abs(float(value)) == float("inf"):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    value = float(value)
    low_ok = minimum is None or (value >= minimum if min_inclusive else value > minimum)
    high_ok = maximum is None or (value <= maximum if max_inclusive else value < maximum)
    if not (low_ok and high_ok):
        low = "(-inf" if minimum is None else ("[" if min_inclusive else "(") + f"{minimum:g}"
        high = "inf)" if maximum is None else f"{maximum:g}" + ("]" if max_inclusive else ")")
        raise ValueError(f"{name} must be in {low}, {high}, got {value:g}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """A flag: exactly True or False (1, "yes" or None would pass a truth test and hide a mistake)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """One of ``choices`` (case-insensitive); returned lower-cased.

    :param name: argument name, for the message
    :param value: the value given
    :param choices: accepted values (lower case)
    """
    choices = tuple(choices)
    if not isinstance(value, str) or value.lower() not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value.lower()


def check_widths(name: str, value: Any, allow_empty: bool = True) -> list[int]:
    """A list of positive layer widths.

    :param name: argument name, for the message
    :param value: the value given (list or tuple of integers)
    :param allow_empty: whether no hidden layer at all is accepted
    """
    if not isinstance(value, (list, tuple)) or not all(_is_integer(w) and w >= 1 for w in value):
        raise ValueError(f"{name} must be a list of positive integers (hidden layer widths), got {value!r}")
    if not value and not allow_empty:
        raise ValueError(f"{name} needs at least one hidden layer, got {value!r}")
    return [int(w) for w in value]


def check_indices(name: str, indices: Iterable[Any], size: int) -> tuple[int, ...]:
    """Sorted distinct indices into a vector of ``size`` entries; a ValueError naming ``name`` for any out of range."""
    checked = tuple(sorted({int(i) for i in indices}))
    if any(not 0 <= i < size for i in checked):
        raise ValueError(f"{name} must be indices in [0, {size}), got {list(indices)}")
    return checked


def check_finite_step(next_obs: np.ndarray, rewards: np.ndarray, next_first_obs: np.ndarray, step: int) -> None:
    """Refuse a step whose observation or reward is NaN or inf, before anything of it is stored.

    :param next_obs: the next observations ``[n_envs, ...]`` (the terminal one where an episode ended)
    :param rewards: ``[n_envs]``
    :param next_first_obs: what the VecEnv returned, which for a finished episode is the first observation of the next
        one (its auto-reset): the next step's obs, checked here too
    :param step: the model's step, for the message
    """
    finite = [
        bool(np.all(np.isfinite(next_obs[i])) and np.isfinite(rewards[i]) and np.all(np.isfinite(next_first_obs[i])))
        for i in range(len(rewards))
    ]
    if not all(finite):
        bad = [i for i, ok in enumerate(finite) if not ok]
        raise ValueError(
            f"Env(s) {bad} returned NaN or inf in the observation or reward (or, after an episode's end, in the first "
            f"observation of the next episode) at step {step}. The transition was not stored; the model and the replay "
            "buffer are intact (save them with save() and save_replay_buffer()). Fix the env or wrap it with "
            "stable_baselines3.common.vec_env.VecCheckNan to find the cause."
        )


def check_finite_reset(first_obs: np.ndarray) -> None:
    """Refuse first observations of episodes ``[n_envs, ...]`` that hold NaN or inf (nothing is stored yet)."""
    if not np.all(np.isfinite(first_obs)):
        bad = [i for i, obs in enumerate(first_obs) if not np.all(np.isfinite(obs))]
        raise ValueError(
            f"Env(s) {bad} returned NaN or inf in the first observation of an episode (reset). Nothing was stored or "
            "trained on it; the model and the replay buffer are as they were. Fix the env or wrap it with "
            "stable_baselines3.common.vec_env.VecCheckNan to find the cause."
        )


def missing_vec_normalize_message(algorithm: str) -> str:
    """The warning of a model trained on a VecNormalize env that predicts without one."""
    return (
        f"This {algorithm} was trained on a VecNormalize env but has none now, so predict takes the observations it gets "
        "as raw (unnormalised). If they are normalised, load the model with its statistics: env = VecNormalize.load(path, "
        f"venv); env.training = False; {algorithm}.load(zip, env=env). Raw observations (e.g. from a plain gym env) are fine."
    )


def check_predict_observation(observation: np.ndarray) -> None:
    """Refuse an observation given to ``predict`` that holds NaN or inf."""
    if not np.all(np.isfinite(observation)):
        raise ValueError("The observation passed to predict contains NaN or inf: check the env (VecCheckNan finds where).")
