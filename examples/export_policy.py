"""
Ship the distilled policy without the model: export POPLIN-P's policy network to ONNX and TorchScript, check that the
files act as ``model.policy.predict``, and control Pendulum-v1 with onnxruntime alone (no torch, no sb3-poplin in the
control loop).

    python examples/export_policy.py                          # trains the demo configuration first (1,400 steps)
    python examples/export_policy.py --model poplin_demo.zip  # or exports a saved POPLIN-P model
    PYTHONPATH=. python examples/export_policy.py             # from a source checkout, without installing

Needs the export extra: ``pip install sb3-poplin[export]`` (onnx, onnxscript, onnxruntime).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import onnxruntime
import torch as th

from sb3_poplin import POPLIN_P, export_policy
from sb3_poplin.__main__ import demo_config


def control_with_onnx(path: Path, env_id: str, episodes: int, seed: int) -> list[float]:
    """Episode returns of the exported policy run by onnxruntime: observation in, action in env units out."""
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    env = gym.make(env_id)
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        done, total = False, 0.0
        while not done:
            (action,) = session.run(["action"], {"observation": obs[None].astype(np.float32)})
            obs, reward, terminated, truncated, _ = env.step(action[0])
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return returns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="a saved POPLIN_P zip (default: train one)")
    parser.add_argument("--steps", type=int, default=1400, help="training steps when no --model is given")
    parser.add_argument("--output-dir", type=Path, default=None, help="where to write the files (default: a temp folder)")
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    env_id = "Pendulum-v1"
    if args.model is not None:
        model = POPLIN_P.load(args.model)
    else:
        model = POPLIN_P("MlpPolicy", env_id, seed=args.seed, **demo_config("poplin_p", env_id))
        print(f"training POPLIN-P on {env_id} for {args.steps} steps ...")
        model.learn(args.steps)

    with tempfile.TemporaryDirectory() as temporary:
        folder = args.output_dir or Path(temporary)
        onnx_path = export_policy(model, folder / "policy.onnx")
        script_path = export_policy(model, folder / "policy.pt")
        print(f"exported {onnx_path} and {script_path}")

        # The files take raw observations and return actions in env units, as model.policy.predict does.
        obs = np.stack([model.observation_space.sample() for _ in range(100)]).astype(np.float32)
        expected, _ = model.policy.predict(obs, deterministic=True)
        session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        onnx_error = np.max(np.abs(session.run(["action"], {"observation": obs})[0] - expected))
        with th.no_grad():
            script_error = np.max(np.abs(th.jit.load(str(script_path))(th.as_tensor(obs)).numpy() - expected))
        print(f"largest difference from model.policy.predict: ONNX {onnx_error:.1e}, TorchScript {script_error:.1e}")

        returns = control_with_onnx(onnx_path, env_id, args.episodes, args.seed + 1000)
        print(f"onnxruntime control of {env_id}: returns {np.round(returns).tolist()} (mean {np.mean(returns):.0f})")


if __name__ == "__main__":
    main()
