"""What the dynamics model reads and predicts: the observation processing of a task.

A model predicts the next observation from the current one and an action. How it sees them matters: an angle is better
read as its sine and cosine (the dynamics are periodic in it), and a quantity that does not carry over from one step to
the next (a velocity averaged over the step) is better predicted as is than as a change. A
:class:`DynamicsProcessing` says, for one task,

* ``model_input(obs)``: what the model reads of an observation (the action is appended to it);
* ``target(obs, next_obs)``: what the model is trained to predict;
* ``next_observation(obs, prediction)``: the next observation a prediction stands for.

Changes are always added to the raw observation, never to the processed input: a PyTorch port of PETS stopped
learning PETS' Cheetah through that slip (the prediction of ``obs[1:]`` added to ``[obs[1], sin, cos, ...]``).

The default, :class:`DeltaProcessing`, reads the observation as it is and predicts its change (PETS' choice for every
task without one of its own). Registered tasks carry their authors' processing where it exists
(:func:`~sb3_poplin.rewards.get_processing`); a user passes an instance or an importable ``"module:attribute"``
as ``dynamics_processing=``.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch as th


class DynamicsProcessing:
    """The identity of the model's world: the model reads ``obs`` and predicts ``next_obs - obs``.

    Subclass it and override the three methods (they must agree: ``next_observation(obs, target(obs, next_obs))``
    is ``next_obs``). Every method works on any leading batch shape; the last dimension is the feature axis. Keep a
    subclass picklable (module-level, plain attributes): it is saved in the model's zip.
    """

    #: a short name shown in reprs and logs
    name: str = "delta"

    def model_input(self, obs: th.Tensor) -> th.Tensor:
        """:param obs: raw observations ``[..., obs_dim]`` :return: what the model reads ``[..., input_dim]``"""
        return obs

    def target(self, obs: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        """:param obs: ``[..., obs_dim]`` :param next_obs: ``[..., obs_dim]`` :return: the target ``[..., obs_dim]``"""
        return next_obs - obs

    def next_observation(self, obs: th.Tensor, prediction: th.Tensor) -> th.Tensor:
        """:param obs: raw observations ``[..., obs_dim]`` :param prediction: a predicted target ``[..., obs_dim]``
        :return: the next raw observation ``[..., obs_dim]``"""
        return obs + prediction

    def input_dim(self, obs_dim: int) -> int:
        """Size of :meth:`model_input` for observations of size ``obs_dim``."""
        return int(self.model_input(th.zeros(1, obs_dim)).shape[-1])

    @property
    def is_identity(self) -> bool:
        """Whether the model reads the raw observation and predicts its change (the planner then skips the calls)."""
        return type(self) is DeltaProcessing

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash(type(self))


class DeltaProcessing(DynamicsProcessing):
    """The default: read the raw observation, predict its change."""


class AngleAndVelocityProcessing(DynamicsProcessing):
    """PETS' processing of its Cheetah, for any observation laid out the same way: some entries are read as the sine
    and cosine of an angle, some are not read at all, and some are predicted as they are instead of as a change.

    :param angles: observation indices holding angles: the model reads ``sin`` and ``cos`` of each instead of the angle
    :param absolute: observation indices predicted as they are (the target is ``next_obs[i]``, not a change)
    :param not_read: observation indices the model does not read (e.g. a velocity averaged over the last step, which
        says nothing the rest of the state does not)
    """

    name = "angles"

    def __init__(self, angles: tuple[int, ...] = (), absolute: tuple[int, ...] = (), not_read: tuple[int, ...] = ()) -> None:
        self.angles = tuple(int(i) for i in angles)
        self.absolute = tuple(int(i) for i in absolute)
        self.not_read = tuple(int(i) for i in not_read)
        overlap = set(self.angles) & set(self.not_read)
        if overlap:
            raise ValueError(f"indices {sorted(overlap)} are both angles and not read")
        self._cache: dict[tuple[int, th.device], tuple[th.Tensor, th.Tensor, th.Tensor]] = {}

    def _indices(self, obs: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """``(kept [k], angles [a], absolute mask [obs_dim])`` for this observation size and device, built once."""
        key = (obs.shape[-1], obs.device)
        cached = self._cache.get(key)
        if cached is None:
            obs_dim = obs.shape[-1]
            skipped = {i % obs_dim for i in (*self.angles, *self.not_read)}
            kept = th.tensor([i for i in range(obs_dim) if i not in skipped], dtype=th.long, device=obs.device)
            angles = th.tensor(self.angles, dtype=th.long, device=obs.device)
            mask = th.zeros(obs_dim, dtype=th.bool, device=obs.device)
            mask[list(self.absolute)] = True
            cached = self._cache[key] = (kept, angles, mask)
        return cached

    def model_input(self, obs: th.Tensor) -> th.Tensor:
        # [read entries in their order, sin(angles), cos(angles)]: an MLP with whitened inputs does not care about the
        # order, and this one needs a single gather for the read entries.
        kept, angles, _ = self._indices(obs)
        parts = [obs.index_select(-1, kept)]
        if self.angles:
            angle_values = obs.index_select(-1, angles)
            parts += [th.sin(angle_values), th.cos(angle_values)]
        return th.cat(parts, dim=-1)

    def target(self, obs: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        return th.where(self._indices(obs)[2], next_obs, next_obs - obs)

    def next_observation(self, obs: th.Tensor, prediction: th.Tensor) -> th.Tensor:
        # The changes are added to the RAW observation (see the module docstring).
        return th.where(self._indices(obs)[2], prediction, obs + prediction)

    def __getstate__(self) -> dict:
        return {key: value for key, value in vars(self).items() if key != "_cache"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _cache={})

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.__getstate__() == other.__getstate__()

    def __hash__(self) -> int:
        return hash((type(self), self.angles, self.absolute, self.not_read))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(angles={self.angles}, absolute={self.absolute}, not_read={self.not_read})"


def check_processing_spec(spec: Any) -> Any:
    """A valid ``dynamics_processing`` value, returned as given: None (the env's registered processing, else deltas),
    ``"delta"``, a :class:`DynamicsProcessing`, or an importable ``"package.module:attribute"`` naming one (or its
    class), which is imported now so that a wrong one fails when the model is built.

    :raises ValueError: with what to pass instead
    """
    if spec is None or spec == "delta" or isinstance(spec, DynamicsProcessing):
        return spec
    if isinstance(spec, str) and spec.count(":") == 1:
        processing_from_spec(spec)
        return spec
    raise ValueError(
        "dynamics_processing must be None (the env's registered processing, else 'delta'), 'delta' (the model reads the "
        "observation and predicts its change), a sb3_poplin.common.processing.DynamicsProcessing, or an importable "
        f"'package.module:attribute' naming one, got {spec!r}"
    )


def processing_from_spec(spec: Any) -> DynamicsProcessing | None:
    """The processing a checked ``dynamics_processing`` value names; None for None (the caller looks up the env's
    registered processing, :func:`sb3_poplin.rewards.get_processing`)."""
    if spec is None:
        return None
    if spec == "delta":
        return DeltaProcessing()
    if isinstance(spec, DynamicsProcessing):
        return spec
    module_name, attribute = spec.split(":")
    try:
        value: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            value = getattr(value, part)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"dynamics_processing={spec!r} cannot be imported: {e}") from e
    if isinstance(value, type) and issubclass(value, DynamicsProcessing):
        value = value()
    if not isinstance(value, DynamicsProcessing):
        raise ValueError(f"dynamics_processing={spec!r} names a {type(value).__name__}, not a DynamicsProcessing")
    return value
