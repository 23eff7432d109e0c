"""
The torch reward/termination functions of sb3_poplin.rewards against the envs' own rewards and terminations.

Each case rolls out real transitions (random actions, or a scripted policy that makes the env terminate), feeds them
batched to the functions and compares with what ``env.step`` returned.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import pytest
import torch as th

import sb3_poplin.envs  # noqa: F401  (registers the sb3_poplin/ ids)
from sb3_poplin import POPLIN_A, rewards
from sb3_poplin.common import tasks as former_tasks
from sb3_poplin.envs import FIXED_SWIMMER_ID, PETS_HALF_CHEETAH_ID, FixedSwimmerEnv, PETSHalfCheetahEnv, register_envs
from sb3_poplin.rewards import (
    get_task_fns,
    inverted_pendulum_centered,
    known_env_ids,
    position_indices,
    resolve_callable,
    reward_mode,
    task_kwargs_from_env,
)

Policy = Callable[[gym.Env, np.ndarray, int], np.ndarray]

KEEP_POS = {"exclude_current_positions_from_observation": False}


def random_policy(env: gym.Env, obs: np.ndarray, t: int) -> np.ndarray:
    return env.action_space.sample()


def mountain_car_pump(env: gym.Env, obs: np.ndarray, t: int) -> np.ndarray:
    # Push along the velocity: pumps energy until the car reaches the goal (terminates in ~100 steps).
    return np.array([1.0 if obs[1] >= 0 else -1.0], dtype=np.float32)


def full_throttle(env: gym.Env, obs: np.ndarray, t: int) -> np.ndarray:
    # Saturated constant actions topple the balancing and locomotion envs within a few dozen steps.
    return env.action_space.high.copy()


def out_of_range(env: gym.Env, obs: np.ndarray, t: int) -> np.ndarray:
    # Actions beyond the action space: Pendulum clips the torque for the dynamics and the cost, MountainCar clips the
    # force but not the cost. Checks that the functions clip exactly where the env does.
    return (3.0 * env.action_space.high * np.sign(np.sin(0.3 * t) + 0.1)).astype(np.float32)


@dataclass(frozen=True)
class Case:
    """One env configuration to check: ``min_corr=None`` means the reward must match exactly."""

    env_id: str
    make_kwargs: dict[str, Any] = field(default_factory=dict)
    policies: tuple[Policy, ...] = (random_policy,)
    steps: int = 300
    terminates: bool = False  # the rollouts must contain terminations, so the termination check cannot pass vacuously
    min_corr: float | None = None

    @property
    def id(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in self.make_kwargs.items())
        policies = "+".join(p.__name__ for p in self.policies)
        return f"{self.env_id}[{extra}]({policies})"


EXACT_CASES = [
    Case("Pendulum-v1"),
    Case("Pendulum-v1", policies=(out_of_range,)),
    Case("MountainCarContinuous-v0", policies=(mountain_car_pump, random_policy, out_of_range), terminates=True),
    Case("MountainCarContinuous-v0", {"goal_velocity": 0.02}, policies=(mountain_car_pump,), terminates=True),
    Case("InvertedPendulum-v5", policies=(random_policy, full_throttle), terminates=True),
    Case("Reacher-v5"),
    Case("Reacher-v5", {"reward_dist_weight": 2.0, "reward_control_weight": 0.3}),
    Case("Pusher-v5"),
    Case("Pusher-v5", {"reward_near_weight": 0.9, "reward_dist_weight": 1.5, "reward_control_weight": 0.01}),
    Case("HalfCheetah-v5", KEEP_POS),
    Case("HalfCheetah-v5", {**KEEP_POS, "ctrl_cost_weight": 0.5, "forward_reward_weight": 2.0, "frame_skip": 3}),
    Case("Swimmer-v5", KEEP_POS),
    Case("Hopper-v5", KEEP_POS, policies=(random_policy, full_throttle), terminates=True),
    Case(
        "Hopper-v5",
        {**KEEP_POS, "healthy_reward": 2.0, "healthy_angle_range": (-0.3, 0.3), "healthy_state_range": (-5.0, 5.0)},
        policies=(random_policy, full_throttle),
        terminates=True,
    ),
    # The observed qvel is clipped to +-10: with a state bound of 10 the strict inequality of the env must be kept.
    Case("Hopper-v5", {**KEEP_POS, "healthy_state_range": (-10.0, 10.0)}, policies=(full_throttle,), terminates=True),
    # Keeps stepping after falling: the healthy reward must switch off without terminating.
    Case("Hopper-v5", {**KEEP_POS, "terminate_when_unhealthy": False}, policies=(full_throttle,)),
    Case("Walker2d-v5", KEEP_POS, policies=(random_policy, full_throttle), terminates=True),
    Case("Walker2d-v5", {**KEEP_POS, "healthy_z_range": (0.9, 1.9), "forward_reward_weight": 3.0}, terminates=True),
    Case(PETS_HALF_CHEETAH_ID),
    Case(PETS_HALF_CHEETAH_ID, {"ctrl_cost_weight": 0.5}),
    Case(FIXED_SWIMMER_ID),
]

# Default observations of the locomotion envs (and the other settings that are never exact). The thresholds are the
# correlations measured on these rollouts (see docs/rewards.md for 2,000 steps) minus a margin.
APPROXIMATE_CASES = [
    Case("HalfCheetah-v5", min_corr=0.93),
    Case("HalfCheetah-v5", {"ctrl_cost_weight": 0.5}, min_corr=0.95),
    Case("Swimmer-v5", min_corr=0.99),
    Case("Hopper-v5", policies=(random_policy, full_throttle), terminates=True, min_corr=0.999),
    Case("Walker2d-v5", policies=(random_policy, full_throttle), terminates=True, min_corr=0.998),
    Case("Ant-v5", min_corr=0.98),
    Case("Ant-v5", {"healthy_z_range": (0.3, 0.8)}, terminates=True, min_corr=0.98),
    Case("Ant-v5", {**KEEP_POS, "contact_cost_weight": 1e-2}, min_corr=0.999),
    Case("Ant-v5", {"include_cfrc_ext_in_observation": False}, min_corr=0.98),
    Case("Humanoid-v5", terminates=True, min_corr=0.9999),
    Case("Humanoid-v5", KEEP_POS, terminates=True, min_corr=0.99999),
    Case("Humanoid-v5", {"include_cvel_in_observation": False}, terminates=True, min_corr=0.95),
    Case("InvertedDoublePendulum-v5", policies=(random_policy, full_throttle), terminates=True, min_corr=0.99999),
]


@dataclass
class Rollouts:
    env_kwargs: dict[str, Any]  # what task_kwargs_from_env read
    obs: th.Tensor
    action: th.Tensor
    next_obs: th.Tensor
    reward: th.Tensor
    terminated: th.Tensor


_ROLLOUTS: dict[str, Rollouts] = {}


def _rollouts(case: Case) -> Rollouts:
    # Several tests reuse the same rollouts: collect each case once per session.
    if case.id not in _ROLLOUTS:
        _ROLLOUTS[case.id] = _collect(case)
    return _ROLLOUTS[case.id]


def _collect(case: Case) -> Rollouts:
    env = gym.make(case.env_id, **case.make_kwargs)
    rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, float, bool]] = []
    for seed, policy in enumerate(case.policies):
        env.action_space.seed(seed)
        obs, _ = env.reset(seed=seed)
        for t in range(case.steps):
            action = policy(env, obs, t)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            rows.append((obs, action, next_obs, float(reward), bool(terminated)))
            obs = next_obs
            if terminated or truncated:
                obs, _ = env.reset()
    kwargs = task_kwargs_from_env(env)
    env.close()
    obs_b, act_b, next_b, rew_b, term_b = (np.array(column) for column in zip(*rows))
    as_t = functools.partial(th.as_tensor, dtype=th.float64)
    return Rollouts(kwargs, as_t(obs_b), as_t(act_b), as_t(next_b), as_t(rew_b), th.as_tensor(term_b))


def _evaluate(case: Case) -> tuple[Rollouts, th.Tensor, th.Tensor]:
    data = _rollouts(case)
    reward_fn, termination_fn = get_task_fns(case.env_id, **data.env_kwargs)
    return data, reward_fn(data.obs, data.action, data.next_obs), termination_fn(data.obs, data.action, data.next_obs)


@pytest.mark.parametrize("case", EXACT_CASES, ids=lambda c: c.id)
def test_exact_reward_and_termination(case: Case) -> None:
    data, reward, terminated = _evaluate(case)
    assert reward_mode(case.env_id, **data.env_kwargs) == "exact"
    assert reward.shape == data.reward.shape and reward.dtype == th.float64
    scale = max(1.0, float(data.reward.abs().max()))
    th.testing.assert_close(reward, data.reward, rtol=0.0, atol=1e-4 * scale)
    assert terminated.dtype == th.bool
    assert th.equal(terminated, data.terminated)
    if case.terminates:
        assert bool(data.terminated.any())


@pytest.mark.parametrize("case", APPROXIMATE_CASES, ids=lambda c: c.id)
def test_approximate_reward_and_exact_termination(case: Case) -> None:
    assert case.min_corr is not None
    data, reward, terminated = _evaluate(case)
    assert reward_mode(case.env_id, **data.env_kwargs) == "approximate"
    corr = float(th.corrcoef(th.stack([reward, data.reward]))[0, 1])
    assert corr > case.min_corr
    assert th.equal(terminated, data.terminated)
    if case.terminates:
        assert bool(data.terminated.any())


def test_every_known_env_is_tested() -> None:
    tested = {case.env_id for case in EXACT_CASES + APPROXIMATE_CASES}
    assert tested == set(known_env_ids())


def test_non_default_kwarg_is_read_and_honoured() -> None:
    case = Case("HalfCheetah-v5", {**KEEP_POS, "ctrl_cost_weight": 0.5})
    data = _rollouts(case)
    assert data.env_kwargs["ctrl_cost_weight"] == 0.5
    assert data.env_kwargs["exclude_current_positions_from_observation"] is False
    honoured, _ = get_task_fns(case.env_id, **data.env_kwargs)
    th.testing.assert_close(honoured(data.obs, data.action, data.next_obs), data.reward, rtol=0.0, atol=1e-6)
    # The default weight gives a different reward on the same transitions.
    default, _ = get_task_fns(case.env_id, exclude_current_positions_from_observation=False)
    assert float((default(data.obs, data.action, data.next_obs) - data.reward).abs().max()) > 0.1


def test_task_kwargs_survive_json_and_pick_the_mode() -> None:
    data = _rollouts(Case("Hopper-v5", KEEP_POS, policies=(random_policy, full_throttle), terminates=True))
    kwargs = json.loads(json.dumps(data.env_kwargs))
    assert kwargs == data.env_kwargs
    assert all(isinstance(v, (bool, int, float, str, list)) for v in kwargs.values())
    assert reward_mode("Hopper-v5", **kwargs) == "exact"
    assert reward_mode("Hopper-v5") == "approximate"  # default observation
    reward_fn, termination_fn = get_task_fns("Hopper-v5", **kwargs)
    th.testing.assert_close(reward_fn(data.obs, data.action, data.next_obs), data.reward, rtol=0.0, atol=1e-6)
    assert th.equal(termination_fn(data.obs, data.action, data.next_obs), data.terminated)


def test_batch_shapes_dtypes_and_devices() -> None:
    for env_id in known_env_ids():
        case = next(c for c in EXACT_CASES + APPROXIMATE_CASES if c.env_id == env_id)
        data = _rollouts(case)
        reward_fn, termination_fn = get_task_fns(env_id, **data.env_kwargs)
        flat = reward_fn(data.obs, data.action, data.next_obs)
        n = flat.shape[0] // 6 * 6
        # Any leading shape: [2, 3, n / 6, dim] gives the same values as [n, dim].
        shaped = [x[:n].reshape(2, 3, n // 6, x.shape[-1]) for x in (data.obs, data.action, data.next_obs)]
        th.testing.assert_close(reward_fn(*shaped), flat[:n].reshape(2, 3, n // 6))
        assert termination_fn(*shaped).shape == (2, 3, n // 6)
        # A single transition without batch dimension.
        assert reward_fn(data.obs[0], data.action[0], data.next_obs[0]).shape == ()
        # float32 in, float32 out, close to the float64 result.
        single = [x.float() for x in (data.obs, data.action, data.next_obs)]
        out32 = reward_fn(*single)
        assert out32.dtype == th.float32
        th.testing.assert_close(out32.double(), flat, rtol=1e-4, atol=1e-3)
        # Device-agnostic: on the "meta" device any tensor created on the CPU would raise a device mismatch.
        meta = [x.to("meta") for x in (data.obs, data.action, data.next_obs)]
        assert reward_fn(*meta).device.type == "meta"
        assert termination_fn(*meta).device.type == "meta"


@pytest.mark.skipif(not th.cuda.is_available(), reason="needs a CUDA device")
def test_cuda() -> None:
    for env_id in known_env_ids():
        case = next(c for c in EXACT_CASES + APPROXIMATE_CASES if c.env_id == env_id)
        data = _rollouts(case)
        reward_fn, termination_fn = get_task_fns(env_id, **data.env_kwargs)
        cpu = reward_fn(data.obs, data.action, data.next_obs)
        gpu = reward_fn(*(x.cuda() for x in (data.obs, data.action, data.next_obs)))
        th.testing.assert_close(gpu.cpu(), cpu)
        assert termination_fn(*(x.cuda() for x in (data.obs, data.action, data.next_obs))).is_cuda


@pytest.mark.parametrize("magnitude", [1e30, float(th.finfo(th.float32).max)])
def test_no_nan_for_huge_finite_inputs(magnitude: float) -> None:
    # Diverging model predictions are finite but huge; overflowing terms may give +-inf but never NaN.
    generator = th.Generator().manual_seed(0)
    for env_id in known_env_ids():
        case = next(c for c in EXACT_CASES + APPROXIMATE_CASES if c.env_id == env_id)
        data = _rollouts(case)
        reward_fn, termination_fn = get_task_fns(env_id, **data.env_kwargs)
        shapes = [(64, x.shape[-1]) for x in (data.obs, data.action, data.next_obs)]
        for dtype in (th.float32, th.float64):
            signs = [th.randint(0, 3, shape, generator=generator).to(dtype) - 1.0 for shape in shapes]
            inputs = [s * magnitude for s in signs]
            assert all(th.isfinite(x).all() for x in inputs)
            assert not th.isnan(reward_fn(*inputs)).any(), env_id
            assert termination_fn(*inputs).dtype == th.bool


def test_unknown_env_id_raises_helpful_error() -> None:
    with pytest.raises(ValueError) as error:
        get_task_fns("CartPole-v1")
    message = str(error.value)
    assert "CartPole-v1" in message and "HalfCheetah-v5" in message
    assert "reward_fn=" in message and "'learned'" in message and "module:function" in message
    with pytest.raises(ValueError):
        reward_mode("NoSuchEnv-v0")
    with pytest.raises(ValueError, match="Known ids"):
        task_kwargs_from_env(gym.make("CartPole-v1"))
    # Same class name as Hopper-v5's (HopperEnv), different reward: must not be mistaken for v5.
    with pytest.raises(ValueError, match="Hopper-v4"):
        task_kwargs_from_env(gym.make("Hopper-v4"))


@pytest.mark.parametrize("env_id", known_env_ids())
def test_env_built_without_make_is_recognised(env_id: str) -> None:
    env_class = type(gym.make(env_id).unwrapped)
    direct = env_class()
    assert direct.spec is None
    assert task_kwargs_from_env(direct) == task_kwargs_from_env(gym.make(env_id))


def test_unknown_kwarg_raises() -> None:
    with pytest.raises(ValueError, match="ctrl_cost_weigth"):
        get_task_fns("HalfCheetah-v5", ctrl_cost_weigth=0.5)


def test_observation_wrapper_is_refused() -> None:
    env = gym.wrappers.FrameStackObservation(gym.make("Hopper-v5"), 2)
    with pytest.raises(ValueError, match="observation space"):
        task_kwargs_from_env(env)


def _module_level_reward(obs: th.Tensor, action: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
    return next_obs[..., 0]


def test_resolve_callable() -> None:
    assert resolve_callable(f"{__name__}:_module_level_reward") is _module_level_reward
    assert resolve_callable("sb3_poplin.rewards:get_task_fns") is get_task_fns
    assert resolve_callable("json:JSONDecoder.decode") is json.JSONDecoder.decode  # nested attribute
    assert resolve_callable(math.sqrt) is math.sqrt
    for bad in ("sb3_poplin.rewards", "no_such_module_xyz:f", "math:no_such_function", "math:pi", ":f", "a:b:c"):
        with pytest.raises(ValueError):
            resolve_callable(bad)


def test_former_module_still_resolves() -> None:
    """Zips and zoo files saved before the move name ``sb3_poplin.common.tasks:...``: they resolve to the same objects."""
    centered = "sb3_poplin.common.tasks:inverted_pendulum_centered"
    assert resolve_callable(centered) is resolve_callable("sb3_poplin.rewards:inverted_pendulum_centered")
    assert resolve_callable(centered) is inverted_pendulum_centered
    assert former_tasks.__all__ == rewards.__all__
    for name in rewards.__all__:
        assert getattr(former_tasks, name) is getattr(rewards, name), name


def test_model_saved_with_the_former_reward_fn_string_loads(tiny_kwargs: dict[str, Any], tmp_path) -> None:
    """A zip saved with ``reward_fn="sb3_poplin.common.tasks:..."`` loads and plans with the same function."""
    model = POPLIN_A(
        "MlpPolicy", "InvertedPendulum-v5", reward_fn="sb3_poplin.common.tasks:inverted_pendulum_centered", **tiny_kwargs
    )
    model.save(tmp_path / "model.zip")
    loaded = POPLIN_A.load(tmp_path / "model.zip", env=gym.make("InvertedPendulum-v5"))
    assert loaded.reward_fn_spec == "sb3_poplin.common.tasks:inverted_pendulum_centered"
    assert loaded.model_rollout.reward_fn is inverted_pendulum_centered
    obs = loaded.env.reset()
    action, _ = loaded.predict(obs, deterministic=True)
    assert action.shape == (1, 1)


def test_paper_variants_registration() -> None:
    register_envs()  # idempotent: a second registration must not raise nor warn about re-registering
    register_envs()
    env = gym.make(PETS_HALF_CHEETAH_ID)
    assert isinstance(env.unwrapped, PETSHalfCheetahEnv)
    assert env.observation_space.shape == (18,) and env.spec is not None and env.spec.max_episode_steps == 1000
    obs, _ = env.reset(seed=0)
    next_obs, _, _, _, info = env.step(env.action_space.sample())
    assert next_obs[0] == info["x_velocity"]  # the observed velocity is the rewarded one
    th.testing.assert_close(th.as_tensor(next_obs[1:]), th.as_tensor(env.unwrapped.state_vector()[1:]))
    # The fixed Swimmer built directly (no spec): recognised by its class, rewards the head, not the torso origin.
    swimmer = FixedSwimmerEnv(ctrl_cost_weight=0.01)
    assert task_kwargs_from_env(swimmer) == {"forward_reward_weight": 1.0, "ctrl_cost_weight": 0.01}
    swimmer.reset(seed=0)
    swimmer.action_space.seed(0)
    differs = 0
    for _ in range(20):
        action = swimmer.action_space.sample()
        obs, reward, _, _, info = swimmer.step(action)
        assert obs[-1] == info["head_x_velocity"]
        # gymnasium computes the control cost of a float32 action in float32: equal to within its rounding
        expected = info["head_x_velocity"] - 0.01 * float(np.sum(np.square(action.astype(np.float64))))
        assert reward == pytest.approx(expected, rel=1e-6, abs=1e-8)
        differs += abs(info["head_x_velocity"] - info["x_velocity"]) > 1e-3
    assert differs > 10


def test_fixed_swimmer_head_is_the_front_tip() -> None:
    # The head position computed from qpos must agree with MuJoCo's own kinematics of the torso capsule's front end.
    import mujoco

    env = FixedSwimmerEnv()
    env.reset(seed=1)
    for _ in range(10):
        env.step(env.action_space.sample())
    mujoco.mj_kinematics(env.model, env.data)
    torso = env.data.body("torso")
    tip_world = torso.xpos + torso.xmat.reshape(3, 3) @ np.array([1.5, 0.0, 0.0])
    assert env._head_x() == pytest.approx(tip_world[0], abs=1e-9)


def test_terminate_when_unhealthy_false_keeps_going_without_healthy_reward() -> None:
    case = next(c for c in EXACT_CASES if c.make_kwargs.get("terminate_when_unhealthy") is False)
    data, reward, terminated = _evaluate(case)
    assert not bool(terminated.any())
    # The rollout does go through unhealthy states (else the case above would not test the switch-off)...
    strict_kwargs = {**data.env_kwargs, "terminate_when_unhealthy": True}
    _, unhealthy_fn = get_task_fns(case.env_id, **strict_kwargs)
    unhealthy = unhealthy_fn(data.obs, data.action, data.next_obs)
    assert 0 < int(unhealthy.sum()) < len(unhealthy)
    # ...and the reward does not depend on the flag: unhealthy steps earn no healthy reward either way (the exact test
    # checks this reward against the env's).
    strict_reward_fn, _ = get_task_fns(case.env_id, **strict_kwargs)
    th.testing.assert_close(strict_reward_fn(data.obs, data.action, data.next_obs), reward)


def test_inverted_pendulum_centered_is_the_env_reward_less_a_bounded_tie_breaker() -> None:
    """On real transitions it is 0 exactly where the env pays 0 and within 0.02 below the env's 1 elsewhere, and the
    penalty grows with the pole angle and the cart offset (so it breaks ties in their favour)."""
    data = _rollouts(next(c for c in EXACT_CASES if c.env_id == "InvertedPendulum-v5"))
    assert data.reward.ne(1.0).any() and data.reward.eq(1.0).any()
    centered = inverted_pendulum_centered(data.obs, data.action, data.next_obs)
    paid = data.reward == 1.0
    assert th.equal(centered[~paid], th.zeros_like(centered[~paid]))
    assert bool(((data.reward[paid] - centered[paid]) >= 0.0).all() and ((data.reward[paid] - centered[paid]) <= 0.02).all())
    upright = th.tensor([[0.0, 0.0, 0.0, 0.0]], dtype=th.float64)
    tilted, offset = upright.clone(), upright.clone()
    tilted[0, 1], offset[0, 0] = 0.1, 0.5
    action = th.zeros(1, 1, dtype=th.float64)
    scores = [float(inverted_pendulum_centered(upright, action, s)) for s in (upright, tilted, offset)]
    assert scores[0] == 1.0 and scores[1] < 1.0 and scores[2] < 1.0
    nan_state = th.full((1, 4), float("nan"), dtype=th.float64)
    assert float(inverted_pendulum_centered(upright, action, nan_state)) == 0.0


def test_inverted_pendulum_centered_never_trades_a_step_alive_for_centring() -> None:
    """Planned over a horizon of 49, a trajectory alive one step longer always scores more, however badly placed."""
    horizon = 49
    action = th.zeros(horizon, 1)
    for alive_steps in range(horizon):
        # worst placement for the longer one (pole at the limit, cart past the rail), best for the shorter one; every
        # state after the termination is terminated too, so the plain sum is the planner's return
        longer = th.tensor([1.5, 0.2, 0.0, 0.0]).repeat(horizon, 1)
        shorter = th.zeros(horizon, 4)
        longer[alive_steps + 1 :, 1] = 0.5
        shorter[alive_steps:, 1] = 0.5
        longer_return = inverted_pendulum_centered(longer, action, longer).sum()
        shorter_return = inverted_pendulum_centered(shorter, action, shorter).sum()
        assert float(longer_return) > float(shorter_return)


@pytest.mark.parametrize(
    ("env_id", "expected"),
    [
        ("HalfCheetah-v5", (0,)),
        ("Hopper-v5", (0,)),
        ("Walker2d-v5", (0,)),
        ("Swimmer-v5", (0, 1)),
        ("Ant-v5", (0, 1)),
        ("Humanoid-v5", (0, 1)),
    ],
)
def test_position_indices_are_the_observed_root_position(env_id: str, expected: tuple[int, ...]) -> None:
    # Default observation: no position observed. With positions kept, the indices must be the root's x (and y) as the
    # simulator holds them, checked on a real env after some random steps.
    assert position_indices(env_id) == ()
    env = gym.make(env_id, **KEEP_POS)
    kwargs = task_kwargs_from_env(env)
    indices = position_indices(env_id, **kwargs)
    assert indices == expected
    env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(20):
        obs, *_ = env.step(env.action_space.sample())
    qpos = env.unwrapped.data.qpos
    np.testing.assert_allclose(obs[list(indices)], qpos[list(indices)], rtol=0, atol=1e-12)
    assert position_indices("Pendulum-v1") == ()
