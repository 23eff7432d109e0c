"""Replay buffer that also records which real steps were planned, and the planning noise where a distillation reads it."""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer

#: names of the arrays that hold one row per step (``buffer_size`` rows when full)
_ROW_ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts", "planned", "noises")


class PlanningReplayBuffer(ReplayBuffer):
    """SB3 replay buffer of (obs, action, next_obs, reward, done), whether each step was planned, and its planned noise.

    ``planned`` marks the steps the planner chose (False for the random warm-up): distillation learns from those only.
    The noise is what the planner executed at that step (the parameter noise of the policy for POPLIN-P, the action
    noise around the policy for POPLIN-A, the action itself for PETS; zeros for the random warm-up steps). Only AVG
    distillation reads it, so the algorithms store it only then (``noise_dim=0`` otherwise): one row of POPLIN-P's
    noise holds every parameter of the policy, 774 floats per step for HalfCheetah-v5's [32] policy, 3 GB for a
    million steps that BC never reads. The buffer also keeps the extra distillation pairs (imagined states and their
    actions, or the elites' first actions) that are not transitions. All of it is pickled by ``save_replay_buffer``, so
    a run resumed from a checkpoint and its buffer distils from the same data.

    Memory grows with the data: the noise rows are allocated as steps arrive (the array doubles when full, up to
    ``buffer_size`` rows), since a whole ``buffer_size`` of POPLIN-P's noise rows may not fit in memory (Humanoid-v5
    with the defaults: 44 GiB). SB3's own arrays are zeros that the OS commits page by page as they are written. A
    pickled buffer holds only the filled rows.

    :param buffer_size: max number of transitions per env
    :param observation_space: observation space
    :param action_space: action space
    :param device: device of sampled tensors
    :param n_envs: number of parallel envs
    :param noise_dim: size of the noise stored per step (0: none is stored, only whether the step was planned)
    :param noise_dtype: ``"float32"`` or ``"float16"``; float16 halves the memory of the noise, which dominates
        POPLIN-P's buffer (one float per policy parameter per step), at a relative rounding error of 5e-4 that AVG's
        mean over thousands of steps does not notice
    :param optimize_memory_usage: not supported (next observations are needed for every transition)
    :param handle_timeout_termination: keep truncation apart from termination
    """

    #: rows of noise allocated at construction; the array doubles from there as steps arrive
    initial_noise_rows: int = 1024

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        noise_dim: int = 0,
        noise_dtype: str = "float32",
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
    ) -> None:
        if optimize_memory_usage:
            raise ValueError("PlanningReplayBuffer does not support optimize_memory_usage=True: set it to False")
        super().__init__(
            buffer_size,
            observation_space,
            action_space,
            device=device,
            n_envs=n_envs,
            optimize_memory_usage=False,
            handle_timeout_termination=handle_timeout_termination,
        )
        if noise_dtype not in ("float32", "float16"):
            raise ValueError(f"noise_dtype must be 'float32' or 'float16', got {noise_dtype!r}")
        self.noise_dim = noise_dim
        self.noise_dtype = noise_dtype
        self.noises = np.zeros((min(self.buffer_size, self.initial_noise_rows), self.n_envs, noise_dim), dtype=noise_dtype)
        #: whether each step was chosen by the planner (False: a random warm-up step) ``[buffer_size, n_envs]``
        self.planned = np.zeros((self.buffer_size, self.n_envs), dtype=bool)
        #: steps added since creation (keeps counting when the buffer wraps around)
        self.n_added = 0
        #: extra distillation pairs, oldest first: (states ``[n, obs_dim]``, actions ``[n, act_dim]`` in [-1, 1])
        self.extra_pairs: deque[tuple[np.ndarray, np.ndarray]] = deque()
        self.n_extra_pairs = 0

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
        noise: np.ndarray | None = None,
    ) -> None:
        """Add one step of every env; ``noise`` is the executed planning noise ``[n_envs, step noise size]``, None for a
        step that was not planned (stored as zeros where the buffer keeps noise)."""
        self.planned[self.pos] = noise is not None
        if self.pos >= len(self.noises):
            self._grow_noises(self.pos + 1)  # rows of zero width when no noise is kept: they cost nothing
        if noise is None or self.noise_dim == 0:
            self.noises[self.pos] = 0.0
        else:
            with np.errstate(over="ignore"):  # an overflow to inf in float16 is caught just below, with a clearer error
                self.noises[self.pos] = np.asarray(noise, dtype=np.float32).reshape(self.n_envs, self.noise_dim)
            if self.noise_dtype == "float16" and not np.all(np.isfinite(self.noises[self.pos])):
                raise ValueError(
                    f"planning noise does not fit {self.noise_dtype} (|noise| up to {np.abs(noise).max():.3g}): "
                    "use replay_buffer_kwargs=dict(noise_dtype='float32')"
                )
        super().add(obs, next_obs, action, reward, done, infos)
        self.n_added += 1

    def _grow_noises(self, n_rows: int) -> None:
        """Make room for at least ``n_rows`` rows of noise: double the allocation, up to ``buffer_size`` rows."""
        new_rows = min(self.buffer_size, max(n_rows, 2 * len(self.noises), self.initial_noise_rows))
        grown = np.zeros((new_rows, self.n_envs, self.noise_dim), dtype=self.noises.dtype)
        grown[: len(self.noises)] = self.noises
        self.noises = grown

    def __getstate__(self) -> dict[str, Any]:
        """Pickle only the filled rows: a checkpoint of 40 steps does not carry ``buffer_size`` rows of zeros."""
        state = self.__dict__.copy()
        n_rows = self.size()
        for name in _ROW_ARRAYS:
            if isinstance(state.get(name), np.ndarray):
                state[name] = state[name][:n_rows]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore a pickled buffer: SB3's arrays get their ``buffer_size`` rows back (zeros, committed by the OS as
        they are written); the noise keeps the filled rows and grows as steps arrive."""
        self.__dict__.update(state)
        if "planned" not in state:  # pickled before ``planned`` existed: a planned step was one with non-zero noise
            noises = state["noises"]
            self.planned = np.any(noises != 0.0, axis=2) if noises.shape[2] > 0 else np.ones(noises.shape[:2], dtype=bool)
        for name in _ROW_ARRAYS:
            array = getattr(self, name, None)
            if name == "noises" or not isinstance(array, np.ndarray) or len(array) >= self.buffer_size:
                continue
            full = np.zeros((self.buffer_size, *array.shape[1:]), dtype=array.dtype)
            full[: len(array)] = array
            setattr(self, name, full)

    def add_extra_pairs(self, states: np.ndarray, actions: np.ndarray, capacity: int) -> None:
        """Keep extra (state, action) distillation pairs, dropping the oldest batches beyond ``capacity`` pairs.

        :param states: ``[n, obs_dim]`` raw observations (imagined or real)
        :param actions: ``[n, act_dim]`` actions in [-1, 1]
        :param capacity: the most pairs kept (the newest batch is always kept whole)
        """
        self.extra_pairs.append((np.asarray(states, dtype=np.float32), np.asarray(actions, dtype=np.float32)))
        self.n_extra_pairs += len(actions)
        while self.n_extra_pairs > capacity and len(self.extra_pairs) > 1:
            self.n_extra_pairs -= len(self.extra_pairs.popleft()[1])

    def recent_noises(self, n_steps: int) -> np.ndarray:
        """The noise of the planned steps among the last ``n_steps`` steps (at most the buffer's content), flattened
        over envs ``[m, noise_dim]``, in the order they were added."""
        slots = self._recent_slots(n_steps)
        planned = self.planned[slots].reshape(-1)
        noises = self.noises[slots].reshape(len(slots) * self.n_envs, self.noise_dim)[planned]
        return noises.astype(np.float32, copy=False)

    def drop_noises(self) -> None:
        """Stop keeping the planning noise (``noise_dim`` 0), e.g. in a buffer saved for a distillation that read it."""
        self.noises = np.zeros((len(self.noises), self.n_envs, 0), dtype=self.noises.dtype)
        self.noise_dim = 0

    def recent_mask(self, n_steps: int) -> np.ndarray:
        """Which rows of :meth:`all_transitions` were added in the last ``n_steps`` steps (all envs of each step).

        :return: bool ``[size() * n_envs]``
        """
        newest = np.zeros(self.size(), dtype=bool)
        newest[self._recent_slots(n_steps)] = True
        return np.repeat(newest, self.n_envs)

    def _recent_slots(self, n_steps: int) -> np.ndarray:
        """Buffer slots of the last ``n_steps`` steps (at most the buffer's content), oldest first (it is circular)."""
        n_steps = min(n_steps, self.size())
        return (self.pos - n_steps + np.arange(n_steps)) % self.buffer_size

    def episodes(self) -> tuple[np.ndarray, np.ndarray]:
        """The episode every stored step belongs to, and each episode's return (the sum of its stored rewards).

        An episode ends at a step marked done (termination or truncation). The oldest episode may have lost its first
        steps to the wrap-around, and the newest may still be running: both count with the rewards the buffer holds.

        :return: ``episode [size() * n_envs]`` (int, rows in the order of :meth:`all_transitions`, indexing
            ``returns``) and ``returns [n_episodes]``
        """
        n = self.size()
        slots = self._recent_slots(n)  # every stored slot, oldest first
        ends = self.dones[slots] > 0  # [n, n_envs]
        # An episode starts at each env's oldest stored step and after each of its ends; numbered env by env.
        starts = np.ones_like(ends)
        starts[1:] = ends[:-1]
        numbers = (np.cumsum(starts.T) - 1).reshape(self.n_envs, n).T  # [n, n_envs]
        returns = np.bincount(numbers.reshape(-1), weights=self.rewards[slots].reshape(-1))
        episode = np.empty_like(numbers)
        episode[slots] = numbers  # back to slot order, the order of all_transitions
        return episode.reshape(-1), returns

    def size_transitions(self) -> int:
        """Number of stored transitions over all envs."""
        return self.size() * self.n_envs

    def all_transitions(self) -> dict[str, np.ndarray]:
        """Every stored transition, flattened over envs.

        :return: ``observations [N, obs_dim]``, ``actions [N, act_dim]`` (in [-1, 1]), ``next_observations``,
            ``rewards [N]``, ``dones [N]`` (terminations only, truncations excluded), ``planned [N]`` (bool),
            ``noises [N, noise_dim]``
        """
        n = self.size()

        def flat(array: np.ndarray) -> np.ndarray:
            return array[:n].reshape(n * self.n_envs, *array.shape[2:])

        dones = self.dones[:n] * (1 - self.timeouts[:n]) if self.handle_timeout_termination else self.dones[:n]
        return {
            "observations": flat(self.observations).reshape(n * self.n_envs, -1),
            "actions": flat(self.actions).reshape(n * self.n_envs, -1),
            "next_observations": flat(self.next_observations).reshape(n * self.n_envs, -1),
            "rewards": flat(self.rewards),
            "dones": dones.reshape(-1),
            "planned": flat(self.planned),
            "noises": flat(self.noises),
        }
