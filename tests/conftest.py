"""Shared fixtures: tiny configurations that exercise every code path in seconds."""

from __future__ import annotations

from typing import Any

import pytest
import torch as th

from sb3_poplin.common.mujoco_warnings import route_mujoco_warnings

# The test models are small, so one thread is as fast as two; and on a machine shared with other processes, several
# torch threads wait on each other at every OpenMP barrier (seen: steps 5-10x slower), so keep to one.
th.set_num_threads(1)
# MuJoCo's warnings (gymnasium's HalfCheetah uses a deprecated attribute) as Python warnings, not MUJOCO_LOG.TXT files
# wherever the tests run
route_mujoco_warnings()

#: the smallest config that still plans through a trained model
TINY: dict[str, Any] = dict(
    learning_starts=50,
    train_freq=(50, "step"),
    population_size=24,
    n_elites=4,
    cem_iterations=2,
    horizon=4,
    ensemble_size=2,
    dynamics_net_arch=[16, 16],
    dynamics_epochs=2,
    dynamics_min_updates=0,  # the tests check code paths, not model quality: no extra epochs on their tiny data
    buffer_size=2_000,
)


#: the test files that take longest (a minute of CPU or more each), longest first. Two workers take whole files in the
#: order of collection (``--dist loadfile --no-loadscope-reorder``): these go first, so that none of them starts last and
#: runs alone while the other worker waits (xdist's own order, the files with the most tests first, sent them last).
LONGEST_FILES = ("test_zoo.py", "test_learning.py", "test_study.py", "test_precision.py", "test_variants.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # a stable sort: each file keeps its own order


@pytest.fixture
def tiny_kwargs() -> dict[str, Any]:
    return dict(TINY)
