"""The number format of planning (``planning_dtype``): float32, or bfloat16 where the hardware multiplies it natively.

Planning is a long chain of small matrix products through the ensemble (population x horizon x iterations rows per step)
and, for POPLIN, through the policy network. In ``bfloat16`` those products (and the activations between them) run on
the hardware's bfloat16 units; everything that accumulates over the horizon or decides the search stays in float32: the
imagined state and the predicted change added to it, rewards, returns and CEM's mean, variance and samples. Model fitting
and distillation are always float32.
"""

from __future__ import annotations

import functools
import warnings

import torch as th

#: the values of ``planning_dtype``
PLANNING_DTYPES = ("float32", "bfloat16", "auto")
#: CPU flags (``/proc/cpuinfo``) of native bfloat16 matrix products: AVX512-BF16 (dot products) and AMX-BF16 (tiles)
BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
#: the first CUDA compute capability with bfloat16 tensor cores (Ampere)
BFLOAT16_CUDA_CAPABILITY = (8, 0)
#: the devices already warned about an explicit bfloat16 without native support (warned once per process)
_warned_emulated: set[str] = set()


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The feature flags of this machine's CPU (empty where ``/proc/cpuinfo`` cannot be read, e.g. macOS, Windows)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def native_bfloat16(device: th.device | str) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices natively (faster than float32), not by emulation.

    :param device: a CPU or CUDA device; other devices answer False
    """
    device = th.device(device)
    if device.type == "cpu":
        return any(flag in cpu_flags() for flag in BFLOAT16_CPU_FLAGS)
    if device.type == "cuda" and th.cuda.is_available():
        return th.cuda.get_device_capability(device) >= BFLOAT16_CUDA_CAPABILITY
    return False


def planning_torch_dtype(name: str, device: th.device | str) -> th.dtype:
    """The dtype planning computes its matrix products in, for the option's value on ``device``.

    ``auto`` is bfloat16 where :func:`native_bfloat16` holds, else float32. An explicit ``bfloat16`` on hardware without
    native support is honoured with a warning (once per device and process), since it plans slower than float32 there.

    :param name: one of :data:`PLANNING_DTYPES`
    :param device: the model's device
    """
    if name == "float32":
        return th.float32
    native = native_bfloat16(device)
    if name == "auto":
        return th.bfloat16 if native else th.float32
    if name != "bfloat16":
        raise ValueError(f"planning_dtype must be one of {PLANNING_DTYPES}, got {name!r}")
    if not native and str(device) not in _warned_emulated:
        _warned_emulated.add(str(device))
        warnings.warn(
            f"planning_dtype='bfloat16' on {th.device(device)}, which has no native bfloat16 matrix products (CPUs need "
            f"{' or '.join(BFLOAT16_CPU_FLAGS)}, CUDA GPUs compute capability >= 8.0): planning will be slower than in "
            "float32. Use planning_dtype='auto' to choose bfloat16 only where it is native.",
            stacklevel=2,
        )
    return th.bfloat16
