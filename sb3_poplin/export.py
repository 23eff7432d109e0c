"""Ship the distilled policy without the model: export it to ONNX or TorchScript.

The exported graph maps raw observations (what the env returns, not VecNormalize's) ``[batch, obs_dim]`` float32 to
actions in env units ``[batch, act_dim]``: the policy's own observation whitening and the scaling of its tanh output to
the action bounds are inside, so it computes what ``model.policy.predict(obs, deterministic=True)`` returns, with no
sb3-poplin, SB3 or gymnasium needed to run it::

    from sb3_poplin import export_policy
    export_policy(model, "policy.onnx")   # onnxruntime, or any ONNX runtime
    export_policy(model, "policy.pt")     # torch.jit.load, from Python or C++ (libtorch)
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from torch import nn

from sb3_poplin.common.policies import PolicyNetwork, POPLINPolicy

#: file suffix -> format of :func:`export_policy`
SUFFIX_FORMATS = {".onnx": "onnx", ".pt": "torchscript", ".pth": "torchscript", ".ts": "torchscript"}
FORMATS = ("onnx", "torchscript")
#: names of the graph's input and output (ONNX) and of the TorchScript module's argument
INPUT_NAME, OUTPUT_NAME = "observation", "action"


class DeployablePolicy(nn.Module):
    """The distilled policy as a standalone module: raw observation ``[batch, obs_dim]`` -> action in env units.

    Computes what ``POPLINPolicy.predict(obs, deterministic=True)`` returns: the network (its observation whitening
    included) gives an action in [-1, 1], scaled to ``[low, high]`` in the same order of operations as SB3's
    ``unscale_action``, in float32.

    :param network: the policy network (copied, so later training does not change the exported module)
    :param action_space: the Box action space whose bounds the actions are scaled to
    """

    # buffers (registered in __init__), typed for the checker
    action_low: th.Tensor
    action_high: th.Tensor

    def __init__(self, network: PolicyNetwork, action_space: spaces.Box) -> None:
        super().__init__()
        self.network = copy.deepcopy(network).to("cpu", th.float32).eval()
        self.register_buffer("action_low", th.as_tensor(np.asarray(action_space.low), dtype=th.float32))
        self.register_buffer("action_high", th.as_tensor(np.asarray(action_space.high), dtype=th.float32))

    def forward(self, observation: th.Tensor) -> th.Tensor:
        scaled = self.network(observation)
        return self.action_low + 0.5 * (scaled + 1.0) * (self.action_high - self.action_low)


def _policy_of(model: Any) -> POPLINPolicy:
    """The POPLIN policy of an algorithm, or the policy itself."""
    policy = model if isinstance(model, POPLINPolicy) else getattr(model, "policy", None)
    if not isinstance(policy, POPLINPolicy):
        raise TypeError(f"export_policy needs a POPLIN_A/POPLIN_P model or its policy, got {type(model).__name__}")
    if not getattr(model, "uses_policy_network", True):
        raise ValueError(
            f"{type(model).__name__} plans without a policy network: there is no distilled policy to export "
            "(only POPLIN_A and POPLIN_P distil one)"
        )
    return policy


def export_policy(model: Any, path: str | Path, format: str | None = None, opset_version: int | None = None) -> Path:
    """Export the distilled policy of ``model`` (observation normaliser and action scaling inside) to a file.

    The file's input is a float32 batch of raw observations ``[batch, obs_dim]`` (any batch size), its output the
    actions in env units ``[batch, act_dim]``, equal to ``model.policy.predict(obs, deterministic=True)`` up to float32
    rounding. A model trained on a VecNormalize env still takes raw observations: the policy network whitens its
    inputs itself.

    :param model: a POPLIN_A or POPLIN_P model, or its ``policy`` (e.g. one loaded with ``MlpPolicy.load``)
    :param path: where to write; the suffix chooses the format unless ``format`` is given: ``.onnx`` for ONNX,
        ``.pt`` / ``.pth`` / ``.ts`` for TorchScript
    :param format: ``onnx`` or ``torchscript`` (default: from the suffix)
    :param opset_version: ONNX opset (default: torch's exporter's)
    :return: the path written
    """
    path = Path(path)
    if format is None:
        format = SUFFIX_FORMATS.get(path.suffix.lower())
        if format is None:
            raise ValueError(
                f"cannot tell the format from the suffix of {path}: use one of {sorted(SUFFIX_FORMATS)} or pass format= "
                f"(one of {FORMATS})"
            )
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    policy = _policy_of(model)
    assert isinstance(policy.action_space, spaces.Box), "the algorithms take Box action spaces only"
    module = DeployablePolicy(policy.actor, policy.action_space)
    example = th.as_tensor(np.stack([policy.observation_space.sample() for _ in range(2)]), dtype=th.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    if format == "torchscript":
        # A plain MLP has no data-dependent control flow, so tracing records the whole computation; the traced ops
        # carry no batch size, so any batch runs.
        with th.no_grad():
            scripted = th.jit.trace(module, example)
        th.jit.save(scripted, str(path))
    else:
        _export_onnx(module, example, path, opset_version)
    return path


def _export_onnx(module: DeployablePolicy, example: th.Tensor, path: Path, opset_version: int | None) -> None:
    try:
        import onnxscript  # noqa: F401  (torch's ONNX exporter needs it)
    except ImportError as error:
        raise ImportError(
            "ONNX export needs the onnx and onnxscript packages: pip install sb3-poplin[export] (or pip install onnxscript)"
        ) from error
    batch = th.export.Dim("batch", min=1)
    with warnings.catch_warnings():
        # the exporter warns about optional packages it does not need here (torchvision's operators)
        warnings.simplefilter("ignore")
        th.onnx.export(
            module,
            (example,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},),
            opset_version=opset_version,
            external_data=False,  # one self-contained file: the weights are small
            dynamo=True,
            verbose=False,
        )
