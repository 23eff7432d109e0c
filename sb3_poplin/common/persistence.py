"""Saving and loading a planning algorithm: the zip (SB3's format, with the ensemble, its optimiser and the settings the
reward was built with) and the replay buffer, with the checks that refuse a file of another version, algorithm or env."""

from __future__ import annotations

import io
import os
import pathlib
import tempfile
from collections import deque
from typing import Any, TypeVar

import numpy as np
import torch as th
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.save_util import load_from_pkl, load_from_zip_file, save_to_pkl
from stable_baselines3.common.type_aliases import GymEnv

from sb3_poplin.common.buffers import PlanningReplayBuffer
from sb3_poplin.common.engine import PlanningEngine
from sb3_poplin.common.env_binding import env_id_of
from sb3_poplin.version import __version__

SelfPersistent = TypeVar("SelfPersistent", bound="PlanningPersistence")

#: Constructor options added after the first release whose default changes what a model does, with the value that
#: reproduces a zip saved before they existed (:meth:`PlanningPersistence.load` sets them; every other option's default
#: is the former behaviour, which the constructor already sets).
OPTION_VALUES_OF_OLDER_ZIPS: dict[str, Any] = {
    "dynamics_min_updates": 0,
    "dynamics_ignore_positions": False,
    "dynamics_optimizer_kwargs": {"fused": False},
    "dynamics_processing": "delta",
    "planning_dtype": "float32",
    "optimizer": "cem",
    "cem_warm_start": "executed",
}


#: the releases (major.minor) whose zips this version loads and plans with as they did
LOADABLE_ZIP_VERSIONS: tuple[str, ...] = ("0.1", "0.2")


def zip_version_loads(saved_version: str) -> bool:
    """Whether a zip written by sb3-poplin ``saved_version`` loads here (its release is in :data:`LOADABLE_ZIP_VERSIONS`)."""
    return ".".join(str(saved_version).split(".")[:2]) in LOADABLE_ZIP_VERSIONS


class PlanningPersistence(OffPolicyAlgorithm):
    """The save/load half of :class:`~sb3_poplin.common.base.PlanningAlgorithm`."""

    replay_buffer: PlanningReplayBuffer
    engine: PlanningEngine

    def _excluded_save_params(self) -> list[str]:
        # Rebuilt by _setup_model from the saved options and state dicts (or runtime state).
        return [
            *super()._excluded_save_params(),
            "engine",
            "plan_generator",
            "train_generator",
            "_deterministic_plan_generator",
            "_warned_missing_vec_normalize",
            "_last_executed_noise",
            "score_generator",
        ]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts = ["policy", "policy.optimizer", "dynamics", "dynamics.optimizer"]
        if getattr(self, "termination_model", None) is not None:
            state_dicts += ["termination_model", "termination_model.optimizer"]
        return state_dicts, []

    def save_replay_buffer(self, path: str | pathlib.Path | io.BufferedIOBase) -> None:
        """Save the replay buffer as a pickle file (``.pkl`` is appended to a path without a suffix, as SB3 does).

        A path is written through a temporary file in the same folder, renamed over the destination only once whole:
        a process killed during a checkpoint leaves the previous file (or none), never a truncated one.

        :param path: path (folders are created) or an open binary file
        """
        if not isinstance(path, (str, pathlib.Path)):
            save_to_pkl(path, self.replay_buffer, self.verbose)
            return
        path = pathlib.Path(path)
        if path.suffix == "":
            path = path.with_name(path.name + ".pkl")
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                save_to_pkl(file, self.replay_buffer, self.verbose)
            # No fsync: the rename is atomic for a killed process, which is what checkpoints guard against.
            os.replace(temporary, path)
        except BaseException:
            if os.path.exists(temporary):
                os.remove(temporary)
            raise

    def load_replay_buffer(self, path: Any, truncate_last_traj: bool = True) -> None:
        """Load a replay buffer saved by ``save_replay_buffer``, after checking that it fits this model.

        A buffer from another algorithm, env or policy is refused with an error and the current buffer is kept.

        :param path: path (or file object) of the pickled buffer
        :param truncate_last_traj: unused (no HER); kept for SB3's signature
        """
        buffer = load_from_pkl(path, self.verbose)
        if not isinstance(buffer, PlanningReplayBuffer):
            raise TypeError(
                f"{path} holds a {type(buffer).__name__}, not a PlanningReplayBuffer: it was saved by another algorithm. "
                f"Load a buffer saved by {type(self).__name__}.save_replay_buffer, or start without one."
            )
        if self.engine.stored_noise_dim == 0:
            # noise saved by a version that kept it for every distillation, or by AVG: nothing here reads it
            buffer.drop_noises()
        expected = {
            "observation shape": (self.observation_space.shape, buffer.obs_shape),
            "action dimension": (int(np.prod(self.action_space.shape or ())), int(np.prod(buffer.action_space.shape or ()))),
            "planning noise size": (self.engine.stored_noise_dim, buffer.noise_dim),
            "number of envs": (self.n_envs, buffer.n_envs),
        }
        mismatches = [f"{name} {theirs} (this model: {ours})" for name, (ours, theirs) in expected.items() if ours != theirs]
        if mismatches:
            raise ValueError(
                f"the replay buffer in {path} does not fit this model: it has "
                + ", ".join(mismatches)
                + ". It was saved by a run on another env, algorithm, policy size or distillation; resume with the model "
                "it was saved with (same env, n_envs, algorithm, policy_kwargs and distillation)."
            )
        if not hasattr(buffer, "extra_pairs"):  # saved before the extra pairs moved into the buffer
            buffer.extra_pairs, buffer.n_extra_pairs = deque(), 0
        if not hasattr(buffer, "noise_dtype"):
            buffer.noise_dtype = str(buffer.noises.dtype)
        buffer.device = self.device
        self.replay_buffer = buffer

    @classmethod
    def load(
        cls: type[SelfPersistent],
        path: Any,
        env: GymEnv | None = None,
        device: th.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        **kwargs: Any,
    ) -> SelfPersistent:
        """Load a model saved with :meth:`save`; everything (policy, ensemble, normalisers, optimisers) is in the zip.

        Raises a ValueError when the zip was written by an incompatible sb3-poplin version or another algorithm, or
        when ``env`` is a different task than the one the model was trained on.
        """
        data, _, _ = load_from_zip_file(path, device="cpu", custom_objects=custom_objects, load_data=True)
        if data is None:
            raise ValueError(f"{path} holds no model data: is it a file written by model.save()?")
        saved_version = data.get("sb3_poplin_version")
        if saved_version is None:
            # An SB3 zip of another algorithm: its policy class (or, if it cannot be unpickled, its description) says
            # which library and algorithm wrote it.
            policy_class = data.get("policy_class")
            if isinstance(policy_class, dict):
                module = policy_class.get("__module__")
            else:
                module = getattr(policy_class, "__module__", None)
            saved_by = f"the algorithm of {module}" if module else "another library"
            raise ValueError(
                f"{path} is not an sb3-poplin model: it holds a model saved by {saved_by}. Load it with the class that "
                "saved it (for a Stable-Baselines3 SAC zip: stable_baselines3.SAC.load); "
                f"{cls.__name__}.load reads zips written by {cls.__name__}.save()."
            )
        if not zip_version_loads(saved_version):
            raise ValueError(
                f"{path} was saved by sb3-poplin {saved_version}, this is {__version__}, which loads zips of "
                f"{', '.join(v + '.x' for v in LOADABLE_ZIP_VERSIONS)}; install sb3-poplin=={saved_version} to load it, "
                "or retrain."
            )
        saved_algorithm = data.get("algorithm_name")
        if saved_algorithm != cls.__name__:
            raise ValueError(f"{path} holds a {saved_algorithm} model: load it with {saved_algorithm}.load().")
        if env is not None:
            env_id = env_id_of(env)
            saved_id = data.get("task_env_id")
            if env_id is not None and saved_id is not None and env_id != saved_id and data.get("reward_fn_spec") is None:
                raise ValueError(
                    f"{path} was trained on {saved_id} and plans with its reward; the env given is {env_id}. "
                    f"Pass an env of {saved_id}, or build a new model for {env_id}."
                )
        # Options added after a zip was written take the value that reproduces how it was trained and planned, not
        # the constructor's default (SB3 builds the model with the defaults, then sets what the zip holds).
        older = {name: value for name, value in OPTION_VALUES_OF_OLDER_ZIPS.items() if name not in data}
        return super().load(
            path,
            env=env,
            device=device,
            custom_objects=custom_objects,
            print_system_info=print_system_info,
            force_reset=force_reset,
            **{**older, **kwargs},
        )
