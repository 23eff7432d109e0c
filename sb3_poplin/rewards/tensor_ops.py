"""Small batched torch operations shared by the reward and termination functions of :mod:`sb3_poplin.rewards`."""

from __future__ import annotations

import math

import torch as th


def never_terminates(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
    """
    Termination of envs that never terminate (only the time limit ends them).

    :param obs: ``[..., obs_dim]``
    :param action: ``[..., act_dim]``
    :param next_obs: ``[..., obs_dim]``
    :return: all False, ``[...]``
    """
    return th.zeros(next_obs.shape[:-1], dtype=th.bool, device=next_obs.device)


def all_finite(x: th.Tensor) -> th.Tensor:
    """
    True where every entry of the last dimension is finite (the MuJoCo envs terminate on a non-finite state).

    :param x: ``[..., n]``
    :return: ``[...]`` bool
    """
    return th.isfinite(x).all(dim=-1)


def sum_of_squares(x: th.Tensor) -> th.Tensor:
    """
    :param x: ``[..., n]``
    :return: the sum of the squared entries of the last dimension, ``[...]``
    """
    return th.sum(th.square(x), dim=-1)


def in_range(x: th.Tensor, low: float, high: float) -> th.Tensor:
    """
    Strict ``low < x < high``, as written in the gymnasium sources.

    :param x: any shape
    :param low: exclusive lower bound
    :param high: exclusive upper bound
    :return: bool, the shape of ``x``
    """
    return (x > low) & (x < high)


def no_nan(reward: th.Tensor) -> th.Tensor:
    """
    Replace NaN by the most negative finite value.

    For finite inputs a NaN can only come out of ``inf - inf`` when two terms overflow with opposite signs (a diverged
    model prediction). Such a candidate must never win the planner's ranking, and NaN would poison sorting and means.

    :param reward: float tensor of any shape
    :return: the reward with NaN replaced, infinities kept
    """
    return th.nan_to_num(reward, nan=th.finfo(reward.dtype).min, posinf=math.inf, neginf=-math.inf)
