"""The bare-matmul roof of an ensemble and a timer for model calls, with no dependency but torch.

Shared by :mod:`benchmarks.planner_throughput` and by both sides of :mod:`benchmarks.vs_mbrl_lib` (one of which runs in
mbrl-lib's own virtual environment, where this package cannot be imported): it must import nothing but torch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch as th
from torch.nn import functional as F


class Roof:
    """The same ensemble forward passes as bare batched matmuls: ``baddbmm`` chains with SiLU, random weights.

    Every call runs all members on their own ``[members, rows, in]`` input through the hidden layers and the full output
    layer (``2 * out_dim`` columns: mean and log-variance): what a plain member-batched forward pass costs.

    :param members: ensemble members
    :param hidden: hidden widths of each member
    :param in_dim: model input size
    :param out_dim: model output size
    :param device: where to run
    :param dtype: the dtype of the weights, inputs and products (bfloat16: the roof of planning in bfloat16)
    """

    def __init__(
        self,
        members: int,
        hidden: Sequence[int],
        in_dim: int,
        out_dim: int,
        device: th.device,
        dtype: th.dtype = th.float32,
    ) -> None:
        sizes = [in_dim, *hidden, 2 * out_dim]
        self.members = members
        self.in_dim = in_dim
        self.device = device
        self.dtype = dtype
        self.layers = [
            (
                (th.randn(members, a, b, device=device) / math.sqrt(a)).to(dtype),
                (th.randn(members, 1, b, device=device) * 0.1).to(dtype),
            )
            for a, b in zip(sizes[:-1], sizes[1:])
        ]
        self.flops_per_row = 2 * members * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
        self.inputs: dict[int, th.Tensor] = {}

    def run(self, calls: list[int]) -> None:
        """:param calls: rows per member of each model call (the count and shapes to reproduce)"""
        for rows in calls:
            x = self.inputs.get(rows)
            if x is None:
                x = self.inputs[rows] = th.randn(self.members, rows, self.in_dim, device=self.device).to(self.dtype)
            for weight, bias in self.layers[:-1]:
                x = F.silu(th.baddbmm(bias, x, weight))
            weight, bias = self.layers[-1]
            th.baddbmm(bias, x, weight)

    def flops(self, calls: list[int]) -> float:
        return float(self.flops_per_row * sum(calls))


class CallTimer:
    """Times the calls of chosen methods (shadowed by instance attributes while :meth:`installed` is active) and records
    the rows per member of each model call, so that the roof can replay the same work.

    :param rows_of: maps the arguments of a model call to its rows per member
    :param sync: called before and after each timed call (e.g. ``torch.cuda.synchronize``)
    """

    def __init__(self, rows_of: Callable[..., int], sync: Callable[[], None] | None = None) -> None:
        self.rows_of = rows_of
        self.sync = sync or (lambda: None)
        self.seconds: dict[str, float] = {}
        self.calls: list[int] = []
        self._depth = 0

    def reset(self) -> None:
        self.seconds = {}
        self.calls = []

    def _wrap(self, fn: Callable[..., Any], kind: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if self._depth:  # a nested call (one entry point using another) is already being timed
                return fn(*args, **kwargs)
            self._depth += 1
            self.sync()
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.sync()
                self.seconds[kind] = self.seconds.get(kind, 0.0) + time.perf_counter() - start
                self._depth -= 1
                if kind == "model":
                    self.calls.append(self.rows_of(*args, **kwargs))

        return timed

    @contextmanager
    def installed(self, targets: list[tuple[Any, str, str]]) -> Iterator[CallTimer]:
        """:param targets: ``(object, method name, kind)``; kind ``"model"`` records rows, any other only time"""
        done = []
        for obj, name, kind in targets:
            if hasattr(obj, name):
                object.__setattr__(obj, name, self._wrap(getattr(obj, name), kind))
                done.append((obj, name))
        try:
            yield self
        finally:
            for obj, name in done:
                object.__delattr__(obj, name)


def measure(
    step: Callable[[], None], timer: CallTimer, targets: list[tuple[Any, str, str]], roof: Roof, reps: int
) -> dict[str, Any]:
    """Time ``reps`` planning steps, each instrumented (model time, rows of each call) and followed by the roof of the
    same calls, so that the step and its roof see the same machine load.

    :return: per repetition: ``step_s``, ``model_s``, ``roof_s``; and ``flops`` of one step's model calls (roof count)
    """
    out: dict[str, Any] = {"step_s": [], "model_s": [], "roof_s": [], "flops": 0.0}
    for _ in range(reps):
        timer.reset()
        with timer.installed(targets):
            start = time.perf_counter()
            step()
            out["step_s"].append(time.perf_counter() - start)
        out["model_s"].append(timer.seconds.get("model", 0.0))
        calls = list(timer.calls)
        roof.run(calls[:1])  # the roof's input for these shapes exists before it is timed
        start = time.perf_counter()
        roof.run(calls)
        out["roof_s"].append(time.perf_counter() - start)
        out["flops"] = roof.flops(calls)
    return out


def serve(planners: dict[str, tuple[Callable[[], None], CallTimer, list[tuple[Any, str, str]], Roof]]) -> None:
    """Answer the driver of :mod:`benchmarks.vs_mbrl_lib` on stdin/stdout, one JSON line each way.

    Requests: ``{"planner": name, "reps": n}`` (answered with :func:`measure`'s dict), ``{"roof": calls, "reps": n}``
    (the roof alone on those calls, ``{"roof_s": [...]}``: a control that the same work runs as fast in both processes)
    or ``{"quit": true}``.
    """
    import json
    import sys

    print(json.dumps({"ready": sorted(planners)}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("quit"):
            break
        if "roof" in request:
            roof = next(iter(planners.values()))[3]
            roof.run(request["roof"][:1])
            times = []
            for _ in range(int(request["reps"])):
                start = time.perf_counter()
                roof.run(request["roof"])
                times.append(time.perf_counter() - start)
            print(json.dumps({"roof_s": times}), flush=True)
            continue
        step, timer, targets, roof = planners[request["planner"]]
        print(json.dumps(measure(step, timer, targets, roof, int(request["reps"]))), flush=True)
