"""Zips saved by earlier versions load and predict exactly as they did when they were saved.

``tests/data/zips_0.1.0/`` holds a tiny model of every algorithm saved by sb3-poplin 0.1.0 before its options were
declared once and PETS' Cheetah got its own model processing, with the actions each predicted then (MPC, deterministic,
and the policy alone) in ``predictions.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import sb3_poplin.envs  # noqa: F401  (registers the sb3_poplin/ ids)
from sb3_poplin import PETS, POPLIN_A, POPLIN_P, RS
from sb3_poplin.common.processing import DeltaProcessing

DATA = Path(__file__).parent / "data" / "zips_0.1.0"
PREDICTIONS = json.loads((DATA / "predictions.json").read_text())
ALGORITHMS = {"poplin_p_bc": POPLIN_P, "poplin_p_avg": POPLIN_P, "poplin_a": POPLIN_A, "pets_cheetah": PETS, "rs": RS}


@pytest.mark.parametrize("name", sorted(PREDICTIONS))
def test_zip_of_an_earlier_version_predicts_as_when_saved(name: str) -> None:
    saved = PREDICTIONS[name]
    model = ALGORITHMS[name].load(DATA / f"{name}.zip", device="cpu")
    observations = np.array(saved["observations"], dtype=np.float32)
    # The same computation as when saved; the float32 kernels of another CPU (an AMD EPYC against the Intel CPU that
    # saved them: seen 6e-8 apart) may round the last bit differently, so equal up to float32 rounding.
    for obs, mpc, policy in zip(observations, saved["mpc_actions"], saved["policy_actions"]):
        np.testing.assert_allclose(
            model.predict(obs, deterministic=True)[0], np.array(mpc, dtype=np.float32), rtol=0, atol=1e-5
        )
        np.testing.assert_allclose(
            model.policy.predict(obs, deterministic=True)[0], np.array(policy, dtype=np.float32), rtol=0, atol=1e-5
        )


def test_pets_cheetah_zip_of_an_earlier_version_keeps_its_model_inputs() -> None:
    # Saved before PETS' Cheetah had a registered processing: the model read the raw observation and predicted changes.
    model = PETS.load(DATA / "pets_cheetah.zip", device="cpu")
    assert model.processing == DeltaProcessing()
