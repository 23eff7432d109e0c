"""How many torch CPU threads planning and model training use, chosen from the work of one model call and the cores
other processes leave free.

A planned step is ``horizon x cem_iterations`` sequential calls of the ensemble, and model training is one call per
minibatch. When a call is small (the CPU-sized configurations: a few MFLOP), torch's intra-op threads cost more at
every OpenMP barrier than they gain, and far more on a machine whose cores are busy with other processes: on 2 cores,
two threads trained the README's Pendulum configuration about 20 times slower than one. Large calls (the paper's
configuration: hundreds of MFLOP) gain from more threads on an idle machine.

:func:`auto_threads` turns the FLOPs of one call into a thread count with a rule measured by
``python -m benchmarks.thread_scaling`` (docs/threads.md): per-call time against the thread count for the small and
paper configurations, and the call size from which each extra thread paid for itself. The same measurement on a 2-core
machine whose cores were busy with other processes found every extra thread a loss at every size (2 threads: 3-50x
slower per call), so the count is also capped by the cores that other processes left idle (:class:`FreeCores`).
:func:`torch_threads` sets a count for a block and restores the caller's afterwards; :func:`model_threads` is that for
a planning algorithm's planning or training.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar, cast

import torch as th

F = TypeVar("F", bound=Callable[..., Any])
PHASES = ("planning", "training")

#: FLOPs of one model call that each thread beyond the first needs before it shortens the call (measured: see
#: docs/threads.md; calls below this size run fastest on one thread)
FLOPS_PER_EXTRA_THREAD = 10e6


def mlp_ensemble_flops(rows: int, in_dim: int, hidden_sizes: Sequence[int], out_dim: int, members: int) -> float:
    """Multiply-add FLOPs of one forward call of an ensemble of MLPs on ``rows`` inputs per member.

    :param rows: inputs each member evaluates in the call
    :param in_dim: input size
    :param hidden_sizes: hidden widths of each member
    :param out_dim: columns of the output layer
    :param members: members evaluated in the call
    :return: ``2 * rows * members * sum(fan_in * fan_out)``
    """
    sizes = [in_dim, *hidden_sizes, out_dim]
    return 2.0 * rows * members * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def auto_threads(flops_per_call: float, max_threads: int | None = None) -> int:
    """The thread count for model calls of ``flops_per_call`` FLOPs: one thread, plus one per
    :data:`FLOPS_PER_EXTRA_THREAD` FLOPs of the call, never more than ``max_threads``.

    :param flops_per_call: FLOPs of one model call (see :func:`mlp_ensemble_flops`)
    :param max_threads: the most threads to use (default: the caller's ``torch.get_num_threads()``, which follows
        ``OMP_NUM_THREADS`` and ``torch.set_num_threads``, so a caller who chose fewer threads keeps that choice)
    :return: a count in ``[1, max_threads]``
    """
    if max_threads is None:
        max_threads = th.get_num_threads()
    wanted = 1 + int(flops_per_call // FLOPS_PER_EXTRA_THREAD)
    return max(1, min(wanted, max_threads))


@contextmanager
def torch_threads(n_threads: int | None) -> Iterator[None]:
    """Run the block with ``n_threads`` torch intra-op threads and restore the caller's count afterwards.

    Nested blocks with the same count cost nothing (the count is only set when it changes), so a per-call block
    inside a per-run block of the same count is free.

    :param n_threads: the count for the block (None: leave the count as it is)
    """
    previous = th.get_num_threads()
    if n_threads is None or n_threads == previous:
        yield
        return
    th.set_num_threads(n_threads)
    try:
        yield
    finally:
        th.set_num_threads(previous)


class FreeCores:
    """The cores that other processes left idle recently, measured from the kernel's CPU counters (``/proc/stat``)
    minus this process's own CPU time, over the time since the previous reading (at least ``min_window`` seconds,
    re-read at most every ``refresh`` seconds).

    Where ``/proc/stat`` does not exist (not Linux) the count is the cores this process may run on.

    :param min_window: shortest interval a reading is made over (the first reading waits this long)
    :param refresh: readings younger than this are reused
    """

    def __init__(self, min_window: float = 0.05, refresh: float = 2.0) -> None:
        self.min_window = min_window
        self.refresh = refresh
        self._last: tuple[float, float, float, float] | None = None  # (wall, busy jiffies, total jiffies, own cpu s)
        self._free: int | None = None
        self._read_at = -float("inf")

    @staticmethod
    def usable_cores() -> int:
        """Cores this process may run on (its CPU affinity where the OS has one)."""
        affinity = getattr(os, "sched_getaffinity", None)
        return len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)

    @staticmethod
    def _counters() -> tuple[float, float] | None:
        """(busy, total) jiffies of all CPUs since boot, or None where the kernel has no /proc/stat."""
        try:
            with open("/proc/stat") as f:
                fields = [float(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        # user nice system idle iowait irq softirq steal (guest time is already inside user and nice)
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
        total = sum(fields[:8])
        return total - idle, total

    def _reading(self) -> tuple[float, float, float, float] | None:
        counters = self._counters()
        if counters is None:
            return None
        return time.perf_counter(), counters[0], counters[1], time.process_time()

    def __call__(self) -> int:
        """The number of cores other processes left idle since the previous reading, at least 1."""
        usable = self.usable_cores()
        now = time.perf_counter()
        if self._free is not None and now - self._read_at < self.refresh:
            return self._free
        if self._last is None:
            self._last = self._reading()
            if self._last is None:
                return usable
            time.sleep(self.min_window)
        current = self._reading()
        if current is None or self._last is None:
            return usable
        wall, busy, total, own = (c - p for c, p in zip(current, self._last))
        if wall < self.min_window or total <= 0:
            return self._free if self._free is not None else usable
        n_cpus = os.cpu_count() or 1
        others_busy_cores = max(0.0, n_cpus * busy / total - own / wall)
        self._free = max(1, min(usable, int(n_cpus - others_busy_cores + 0.5)))
        self._last, self._read_at = current, now
        return self._free


#: the process-wide reader of idle cores used by :func:`model_threads`
free_cores = FreeCores()


def model_call_flops(model: Any, phase: str) -> float:
    """FLOPs of one call of a planning algorithm's ensemble while it plans or trains.

    Planning: expectation propagation runs every elite member on the population of every env; sampled propagation
    runs each of ``num_particles`` particles of every candidate through one member. Training: a minibatch of
    ``dynamics_batch_size`` per member, forward and backward (about three forward passes).

    :param model: a :class:`~sb3_poplin.common.base.PlanningAlgorithm`
    :param phase: ``planning`` or ``training``
    """
    dynamics = model.dynamics
    hidden = model.dynamics_net_arch
    if phase == "planning":
        rows = model.population_size * model.n_envs
        if model.propagation == "expectation":
            return mlp_ensemble_flops(rows, dynamics.in_dim, hidden, dynamics.out_dim, dynamics.n_elite_members)
        return mlp_ensemble_flops(rows, dynamics.in_dim, hidden, 2 * dynamics.out_dim, model.num_particles)
    if phase == "training":
        return 3 * mlp_ensemble_flops(
            model.dynamics_batch_size, dynamics.in_dim, hidden, 2 * dynamics.out_dim, dynamics.n_members
        )
    raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")


#: the caller's thread count when the outermost :func:`model_threads` block was entered (nested blocks, such as
#: training inside ``learn``, are capped by it rather than by the count of the block around them)
_callers_counts: list[int] = []


def model_threads_count(model: Any, phase: str) -> int:
    """The torch thread count of ``model``'s planning or training: its ``n_threads`` when set, else
    :func:`auto_threads` of :func:`model_call_flops`, capped by the caller's count and the idle cores."""
    if model.n_threads is not None:
        return int(model.n_threads)
    callers = _callers_counts[0] if _callers_counts else th.get_num_threads()
    return auto_threads(model_call_flops(model, phase), min(callers, free_cores()))


def model_threads(phase: str) -> Callable[[F], F]:
    """Decorate a method of a planning algorithm so it runs with :func:`model_threads_count` threads for ``phase``,
    restoring the caller's count when it returns.

    :param phase: ``planning`` or ``training``
    """
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def with_threads(self: Any, *args: Any, **kwargs: Any) -> Any:
            _callers_counts.append(_callers_counts[0] if _callers_counts else th.get_num_threads())
            try:
                with torch_threads(model_threads_count(self, phase)):
                    return method(self, *args, **kwargs)
            finally:
                _callers_counts.pop()

        return cast(F, with_threads)

    return decorate
