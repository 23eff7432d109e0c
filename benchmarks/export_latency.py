"""
Latency and parity of the exported distilled policy (``sb3_poplin.export_policy``) against ``model.policy.predict``.

For POPLIN-P's policy on Pendulum-v1 sizes (3 -> [32] -> 1) and POPLIN-A's on HalfCheetah-v5 sizes (17 -> [64, 64]
-> 6), with a fitted observation normaliser, it times one call on a batch of 1 (a controller's step) and of 256
observations, the three ways taking turns in every repetition so they see the same machine load:

* ``model.policy.predict(obs, deterministic=True)`` (SB3's path: numpy -> tensor -> network -> numpy, unscaling);
* the ONNX file in onnxruntime (``session.run``, one intra-op thread);
* the TorchScript file (``torch.jit.load``, called under ``torch.inference_mode``).

It also reports the largest difference of each exported file's actions from ``predict``'s on 1,000 observations.
Run from the repository root::

    python -m benchmarks.export_latency            # ~1-2 min, writes docs/export.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime
import torch as th
from gymnasium import spaces

from benchmarks.machine import cpu_model
from sb3_poplin import export_policy
from sb3_poplin.common.policies import POPLINPolicy

COMMAND = "python -m benchmarks.export_latency"
MARKER_START, MARKER_END = "<!-- benchmark:export_latency:start -->", "<!-- benchmark:export_latency:end -->"
#: label -> (obs dim, hidden widths, action bound, act dim)
POLICIES = {
    "POPLIN-P, Pendulum-v1 (3 -> [32] -> 1)": (3, [32], 2.0, 1),
    "POPLIN-A, HalfCheetah-v5 (17 -> [64, 64] -> 6)": (17, [64, 64], 1.0, 6),
}


def make_policy(obs_dim: int, hidden: list[int], bound: float, act_dim: int) -> POPLINPolicy:
    """A policy of the algorithms' MlpPolicy shape with random weights and a fitted normaliser (latency does not depend
    on what it learned)."""
    th.manual_seed(0)
    observation_space = spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
    action_space = spaces.Box(-bound, bound, (act_dim,), np.float32)
    policy = POPLINPolicy(observation_space, action_space, lambda _: 1e-3, net_arch=hidden)
    policy.actor.fit_obs_normalizer(th.randn(1000, obs_dim) * 2.0 + 0.5)
    return policy


def time_calls(calls: dict[str, Callable[[], object]], reps: int, per_block: int) -> dict[str, float]:
    """Median microseconds per call of each callable, timed in blocks, the callables taking turns."""
    blocks: dict[str, list[float]] = {name: [] for name in calls}
    for fn in calls.values():
        fn()
    for _ in range(reps):
        for name, fn in calls.items():
            start = time.perf_counter()
            for _ in range(per_block):
                fn()
            blocks[name].append(1e6 * (time.perf_counter() - start) / per_block)
    return {name: statistics.median(times) for name, times in blocks.items()}


def three_ways(
    policy: POPLINPolicy, session: onnxruntime.InferenceSession, scripted: th.jit.ScriptModule, obs: np.ndarray
) -> dict[str, Callable[[], object]]:
    """One call of ``policy.predict``, of the ONNX session and of the TorchScript module on ``obs``."""
    obs_tensor = th.as_tensor(obs)

    def run_script() -> np.ndarray:
        with th.inference_mode():
            return scripted(obs_tensor).numpy()

    return {
        "predict": lambda: policy.predict(obs, deterministic=True),
        "onnxruntime": lambda: session.run(None, {"observation": obs}),
        "torchscript": run_script,
    }


def measure(label: str, folder: Path, reps: int) -> list[str]:
    policy = make_policy(*POLICIES[label])
    onnx_path = export_policy(policy, folder / "policy.onnx")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    scripted = th.jit.load(str(export_policy(policy, folder / "policy.pt")))

    rng = np.random.default_rng(0)
    obs_dim = POLICIES[label][0]
    parity_obs = (rng.normal(size=(1000, obs_dim)) * 3.0).astype(np.float32)
    expected, _ = policy.predict(parity_obs, deterministic=True)
    onnx_error = float(np.max(np.abs(session.run(None, {"observation": parity_obs})[0] - expected)))
    with th.inference_mode():
        script_error = float(np.max(np.abs(scripted(th.as_tensor(parity_obs)).numpy() - expected)))

    rows = []
    for batch in (1, 256):
        calls = three_ways(policy, session, scripted, parity_obs[:batch])
        times = time_calls(calls, reps, per_block=200 if batch == 1 else 50)
        line = (
            f"| {label} | {batch} | {times['predict']:.0f} | {times['onnxruntime']:.0f} "
            f"({times['predict'] / times['onnxruntime']:.1f}x) | {times['torchscript']:.0f} "
            f"({times['predict'] / times['torchscript']:.1f}x) |"
        )
        print(line, flush=True)
        rows.append(line)
    parity = f"| {label} | {onnx_error:.1e} | {script_error:.1e} |"
    print(parity, flush=True)
    return [*rows, parity]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=15, help="interleaved repetitions")
    parser.add_argument("--output", default="docs/export.md", help="markdown report ('' to print only)")
    args = parser.parse_args()
    th.set_num_threads(1)  # the policy is tiny: one thread, like the onnxruntime session
    load_start = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    started = time.perf_counter()
    latency, parity = [], []
    with tempfile.TemporaryDirectory() as folder:
        for label in POLICIES:
            *rows, parity_row = measure(label, Path(folder), args.reps)
            latency += rows
            parity.append(parity_row)
    load_end = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    body = "\n".join(
        [
            f"*{cpu_model()}, {os.cpu_count()} cores, one thread (torch and onnxruntime), "
            f"torch {th.__version__}, onnxruntime {onnxruntime.__version__}, Python {platform.python_version()}; load "
            f"average {load_start} at start, {load_end} at end; {(time.perf_counter() - started) / 60:.1f} min. "
            f"Command: `{' '.join([COMMAND, *sys.argv[1:]])}`*",
            "",
            "Median microseconds per call (speed-up over `model.policy.predict`):",
            "",
            "| policy | batch | `policy.predict` us | onnxruntime us | TorchScript us |",
            "|---|---|---|---|---|",
            *latency,
            "",
            "Largest difference from `policy.predict`'s actions on 1,000 observations (env units):",
            "",
            "| policy | ONNX (onnxruntime) | TorchScript |",
            "|---|---|---|",
            *parity,
        ]
    )
    if args.output:
        path = Path(args.output)
        text = path.read_text() if path.exists() else "# Exporting the distilled policy\n"
        block = f"{MARKER_START}\n{body}\n{MARKER_END}"
        if MARKER_START in text and MARKER_END in text:
            text = text[: text.index(MARKER_START)] + block + text[text.index(MARKER_END) + len(MARKER_END) :]
        else:
            text = text.rstrip() + "\n\n" + block + "\n"
        path.write_text(text.rstrip() + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
