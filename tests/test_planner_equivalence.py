"""The optimised planners against a deliberately plain reference implementation of the same algorithms.

The reference evaluates one ensemble member at a time with the whitening applied explicitly, one candidate at a time
for the policy, and writes CEM out step by step. It draws random numbers in the same order and shapes as the planners,
so with the same seed both must reach the same CEM result. Everything runs in float64 so that float rounding cannot
reorder two candidates with (almost) equal returns.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch as th
from torch.nn import functional as F

from sb3_poplin.common.cem import CEMOptimizer
from sb3_poplin.common.dynamics import ProbabilisticEnsemble
from sb3_poplin.common.planners import (
    ActionSequencePlanner,
    Planner,
    PlanOutput,
    PolicyActionPlanner,
    PolicyParameterPlanner,
)
from sb3_poplin.common.policies import PolicyNetwork
from sb3_poplin.common.rollout import ModelRollout
from sb3_poplin.rewards import get_task_fns

N_ENVS = 2
POPULATION = 16
N_ELITES = 4
ITERATIONS = 2
HORIZON = 4
ALPHA = 0.1
PARTICLES = 4
DTYPE = th.float64

# (name, planner kind, variant, init sigma)
PLANNERS = [
    ("pets", "pets", None, 0.5),
    ("poplin_a_init", "a", "init", 0.5),
    ("poplin_a_replan", "a", "replan", 0.5),
    ("poplin_p_uni", "p", "uni", 0.1),
    ("poplin_p_sep", "p", "sep", 0.1),
]
CASES = [(*planner, "expectation", "HalfCheetah-v5") for planner in PLANNERS] + [
    ("pets", "pets", None, 0.5, "fixed_model", "HalfCheetah-v5"),
    ("pets", "pets", None, 0.5, "random_model", "HalfCheetah-v5"),
    ("poplin_p_sep", "p", "sep", 0.1, "fixed_model", "HalfCheetah-v5"),
    ("poplin_a_replan", "a", "replan", 0.5, "random_model", "HalfCheetah-v5"),
    # Terminates when the hopper falls: exercises the alive mask (with continuous rewards, so no ties in the ranking).
    ("poplin_a_init", "a", "init", 0.5, "expectation", "Hopper-v5"),
    ("pets", "pets", None, 0.5, "fixed_model", "Hopper-v5"),
]
DIMS = {"HalfCheetah-v5": (17, 6), "Hopper-v5": (11, 3)}


# ----------------------------------------------------------------------------------------------------------------------
# The plain reference
# ----------------------------------------------------------------------------------------------------------------------
def member_forward(model: ProbabilisticEnsemble, member: int, x: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
    """One member on rows ``x [N, in]``: explicit whitening, one layer after the other, PETS' logvar bounds."""
    h = (x - model.input_mean) / model.input_std
    for i, layer in enumerate(model.layers):
        h = h @ layer.weight[member] + layer.bias[member, 0]
        if i < len(model.layers) - 1:
            h = F.silu(h)
    mean, raw = h[:, : model.out_dim], h[:, model.out_dim :]
    max_lv, min_lv = model.max_logvar[0], model.min_logvar[0]
    logvar = max_lv - F.softplus(max_lv - raw)
    logvar = min_lv + F.softplus(logvar - min_lv)
    return mean, logvar


def policy_forward(policy: PolicyNetwork, flat: th.Tensor, x: th.Tensor) -> th.Tensor:
    """The policy with the flat parameter vector ``flat`` on rows ``x [N, obs]``, layer by layer from the flat layout."""
    h = (x - policy.obs_mean) / policy.obs_std
    offset = 0
    n_layers = len(policy.linears)
    for i, linear in enumerate(policy.linears):
        out_f, in_f = linear.out_features, linear.in_features
        weight = flat[offset : offset + out_f * in_f].reshape(out_f, in_f)
        offset += out_f * in_f
        bias = flat[offset : offset + out_f]
        offset += out_f
        h = h @ weight.T + bias
        h = policy.activation(h) if i < n_layers - 1 else th.tanh(h)
    return h


def draw(shape: tuple[int, ...], generator: th.Generator) -> th.Tensor:
    """Standard normal numbers from ``generator`` (CPU or CUDA: the reference itself always computes on CPU)."""
    return th.randn(shape, generator=generator, dtype=DTYPE, device=generator.device).cpu()


class Reference:
    """Plain CEM planning with the same conventions as the planners (particle-major rows, PETS' member assignment)."""

    def __init__(self, kind: str, variant: str | None, sigma: float, propagation: str, env_id: str, parts: dict[str, Any]):
        self.kind, self.variant, self.sigma, self.propagation = kind, variant, sigma, propagation
        self.model: ProbabilisticEnsemble = parts["model"]
        self.policy: PolicyNetwork | None = parts.get("policy")
        self.reward_fn, self.termination_fn = get_task_fns(env_id)
        self.low, self.high = parts["low"], parts["high"]
        self.obs_dim, self.act_dim = DIMS[env_id]
        self.particles = 1 if propagation == "expectation" else PARTICLES

    def elite_members(self) -> list[int]:
        return [int(i) for i in self.model.elite_idx]

    def mean_model(self, x: th.Tensor) -> th.Tensor:
        """Average of the elites' mean predictions on the same rows."""
        members = self.elite_members()
        return sum(member_forward(self.model, e, x)[0] for e in members) / len(members)

    def step_model(self, x: th.Tensor, generator: th.Generator) -> th.Tensor:
        """Next-state deltas of the flat rows ``x`` (particle-major), drawing noise as the rollout does."""
        members = self.elite_members()
        if self.propagation == "expectation":
            return self.mean_model(x)
        per_member = x.shape[0] // len(members)
        perm = None
        if self.propagation == "random_model":
            perm = th.randperm(x.shape[0], generator=generator)  # CPU only (CUDA permutes differently)
            x = x[perm]
        means, logvars = [], []
        for k, e in enumerate(members):
            mean, logvar = member_forward(self.model, e, x[k * per_member : (k + 1) * per_member])
            means.append(mean)
            logvars.append(logvar)
        noise = draw((len(members), per_member, self.model.out_dim), generator)
        out = th.cat([means[k] + noise[k] * th.exp(0.5 * logvars[k]) for k in range(len(members))])
        if perm is not None:
            unpermuted = th.empty_like(out)
            unpermuted[perm] = out
            out = unpermuted
        return out

    def reference_sequence(self, obs0: th.Tensor) -> th.Tensor:
        """POPLIN-A init: the policy rolled through the mean model, ``[n_envs, H, act]``."""
        assert self.policy is not None
        theta = self.policy.flat_parameters().detach()
        s, actions = obs0, []
        for _ in range(HORIZON):
            a = policy_forward(self.policy, theta, s)
            actions.append(a)
            s = s + self.mean_model(th.cat([s, a], dim=1))[:, : self.obs_dim]
        return th.stack(actions, dim=1)

    def actions(self, t: int, states: th.Tensor, noise: th.Tensor, context: Any) -> th.Tensor:
        """Actions of candidates ``noise [n_envs, K, dim]`` at ``states [P, n_envs, K, obs]``."""
        n_particles, n_envs, k, _ = states.shape
        out = th.empty(n_particles, n_envs, k, self.act_dim, dtype=states.dtype)
        for env in range(n_envs):
            for c in range(k):
                s = states[:, env, c]  # [P, obs]
                if self.kind == "pets":
                    a = noise[env, c].reshape(HORIZON, self.act_dim)[t].expand(n_particles, -1)
                elif self.kind == "a" and self.variant == "init":
                    delta = noise[env, c].reshape(HORIZON, self.act_dim)[t]
                    a = (context[env, t] + delta).clamp(-1.0, 1.0).expand(n_particles, -1)
                elif self.kind == "a":
                    assert self.policy is not None
                    delta = noise[env, c].reshape(HORIZON, self.act_dim)[t]
                    a = (policy_forward(self.policy, context, s) + delta).clamp(-1.0, 1.0)
                else:
                    assert self.policy is not None
                    n_params = self.policy.n_params
                    omega = noise[env, c] if self.variant == "uni" else noise[env, c].reshape(HORIZON, n_params)[t]
                    a = policy_forward(self.policy, context + omega, s)
                out[:, env, c] = a
        return out

    def evaluate(self, obs0: th.Tensor, noise: th.Tensor, context: Any, generator: th.Generator) -> th.Tensor:
        n_envs, k = noise.shape[:2]
        p = self.particles
        states = obs0[None, :, None, :].repeat(p, 1, k, 1)
        returns = th.zeros(p, n_envs, k, dtype=obs0.dtype)
        alive = th.ones(p, n_envs, k, dtype=th.bool)
        for t in range(HORIZON):
            a = self.actions(t, states, noise, context)
            x = th.cat([states, a], dim=-1).reshape(p * n_envs * k, -1)
            delta = self.step_model(x, generator)[:, : self.obs_dim].reshape(p, n_envs, k, self.obs_dim)
            next_states = states + delta
            env_action = self.low + 0.5 * (a + 1.0) * (self.high - self.low)
            returns = returns + self.reward_fn(states, env_action, next_states) * alive
            alive = alive & ~self.termination_fn(states, env_action, next_states)
            states = next_states
        return returns.mean(dim=0)

    def noise_dim(self) -> int:
        if self.kind == "p":
            assert self.policy is not None
            return self.policy.n_params * (HORIZON if self.variant == "sep" else 1)
        return self.act_dim * HORIZON

    def bounds(self) -> tuple[float, float] | None:
        return {"pets": (-1.0, 1.0), "a": (-2.0, 2.0), "p": None}[self.kind]

    @th.no_grad()
    def plan(self, obs0: th.Tensor, generator: th.Generator) -> dict[str, th.Tensor]:
        if self.kind == "a":
            assert self.policy is not None
            context: Any = self.reference_sequence(obs0) if self.variant == "init" else self.policy.flat_parameters()
        elif self.kind == "p":
            assert self.policy is not None
            context = self.policy.flat_parameters().detach()
        else:
            context = None
        dim = self.noise_dim()
        mean = th.zeros(N_ENVS, dim, dtype=DTYPE)
        var = th.full((N_ENVS, dim), self.sigma**2, dtype=DTYPE)
        bounds = self.bounds()
        for _ in range(ITERATIONS):
            if bounds is not None:
                room = th.minimum((mean - bounds[0]).clamp(min=0.0), (bounds[1] - mean).clamp(min=0.0))
                sample_var = th.minimum(var, (room / 2.0) ** 2)
            else:
                sample_var = var
            sample_var = sample_var.clamp(min=1e-8)
            z = draw((N_ENVS, POPULATION, dim), generator).clamp(-2.0, 2.0)
            samples = mean[:, None] + z * sample_var.sqrt()[:, None]
            if bounds is not None:
                samples = samples.clamp(bounds[0], bounds[1])
            returns = th.nan_to_num(self.evaluate(obs0, samples, context, generator), nan=-th.inf)
            elite_returns, idx = th.sort(returns, dim=1, descending=True)
            elite_returns, idx = elite_returns[:, :N_ELITES], idx[:, :N_ELITES]
            elites = th.stack([samples[env, idx[env]] for env in range(N_ENVS)])
            mean = ALPHA * mean + (1 - ALPHA) * elites.mean(dim=1)
            var = ALPHA * var + (1 - ALPHA) * elites.var(dim=1, unbiased=False)
        obs_states = obs0[None, :, None, :]
        action = self.actions(0, obs_states, mean[:, None], context)[0, :, 0]
        first = self.actions(0, obs_states.expand(1, -1, N_ELITES, -1), elites, context)[0]
        return {"action": action, "mean": mean, "elite_returns": elite_returns, "elite_noise": elites, "first": first}


# ----------------------------------------------------------------------------------------------------------------------
# Building the optimised planners
# ----------------------------------------------------------------------------------------------------------------------
def make_parts(env_id: str, kind: str, variant: str | None, seed: int = 0) -> dict[str, Any]:
    """A small ensemble (2 elites of 3, whitening with non-trivial mean and std) and a policy, float64."""
    th.manual_seed(seed)
    obs_dim, act_dim = DIMS[env_id]
    model = ProbabilisticEnsemble(obs_dim + act_dim, obs_dim, n_members=3, hidden_sizes=(8, 8), n_elite_members=2).to(DTYPE)
    data = th.randn(256, obs_dim + act_dim, dtype=DTYPE) * th.linspace(0.2, 3.0, obs_dim + act_dim, dtype=DTYPE) + 0.7
    model.fit_input_normalizer(data)
    model.elite_idx.copy_(th.tensor([0, 2]))
    model.invalidate_cache()
    model.eval()
    parts: dict[str, Any] = {"model": model, "low": -th.ones(act_dim), "high": th.ones(act_dim)}
    if env_id == "Hopper-v5":
        parts["low"], parts["high"] = -0.5 * th.ones(act_dim), 2.0 * th.ones(act_dim)  # asymmetric: tests the unscaling
    if kind != "pets":
        policy = PolicyNetwork(obs_dim, act_dim, [8, 8] if kind == "a" else [8]).to(DTYPE)
        policy.fit_obs_normalizer(th.randn(64, obs_dim, dtype=DTYPE) * 2.0 + 0.5)
        parts["policy"] = policy
    return parts


def make_planner(
    kind: str, variant: str | None, sigma: float, propagation: str, env_id: str, parts: dict[str, Any], **kwargs: Any
) -> Planner:
    reward_fn, termination_fn = get_task_fns(env_id)
    rollout = ModelRollout(
        parts["model"],
        reward_fn,
        termination_fn,
        horizon=HORIZON,
        action_low=parts["low"],
        action_high=parts["high"],
        propagation=propagation,
        num_particles=PARTICLES,
    )
    cem = CEMOptimizer(POPULATION, N_ELITES, ITERATIONS, ALPHA)
    act_dim = DIMS[env_id][1]
    planner: Planner
    if kind == "pets":
        planner = ActionSequencePlanner(rollout, cem, act_dim, sigma, **kwargs)
    elif kind == "a":
        planner = PolicyActionPlanner(rollout, cem, act_dim, sigma, parts["policy"], variant, **kwargs)
    else:
        planner = PolicyParameterPlanner(rollout, cem, act_dim, sigma, parts["policy"], variant, **kwargs)
    planner.elite_actions = N_ELITES  # compared with the reference's first actions of every elite
    return planner


def to_device(parts: dict[str, Any], device: str) -> dict[str, Any]:
    """Copies of the parts on ``device`` (``Module.to`` moves in place: the CPU reference keeps the originals)."""
    return {k: copy.deepcopy(v).to(device) if isinstance(v, th.nn.Module) else v.to(device) for k, v in parts.items()}


def obs_for(env_id: str, device: str = "cpu") -> th.Tensor:
    gen = th.Generator().manual_seed(123)
    obs = th.randn(N_ENVS, DIMS[env_id][0], generator=gen, dtype=DTYPE) * 0.5
    if env_id == "Hopper-v5":
        obs = obs * 0.1
        obs[:, 0] = 1.25  # standing: healthy at first, candidates fall at different steps
    return obs.to(device)


def assert_same(out: PlanOutput, ref: dict[str, th.Tensor], atol: float = 1e-9) -> None:
    pairs: list[tuple[str, th.Tensor, th.Tensor]] = [
        ("action", out.action, ref["action"]),
        ("mean", out.mean, ref["mean"]),
        ("elite_returns", out.elite_returns, ref["elite_returns"]),
        ("elite_noise", out.elite_noise, ref["elite_noise"]),
        ("elite_first_actions", out.elite_first_actions, ref["first"]),
    ]
    for name, got, want in pairs:
        assert got.shape == want.shape, name
        th.testing.assert_close(got.cpu(), want.cpu(), rtol=0.0, atol=atol, msg=lambda m, n=name: f"{n}: {m}")


def plan_both(case: tuple, device: str = "cpu", **planner_kwargs: Any) -> tuple[PlanOutput, dict[str, th.Tensor]]:
    _, kind, variant, sigma, propagation, env_id = case
    parts = make_parts(env_id, kind, variant)
    planner = make_planner(kind, variant, sigma, propagation, env_id, to_device(parts, device), **planner_kwargs)
    obs0 = obs_for(env_id, device)
    mean0 = th.zeros(N_ENVS, planner.noise_dim, dtype=DTYPE, device=device)
    out = planner.plan(obs0, mean0, th.Generator(device=device).manual_seed(7))
    reference = Reference(kind, variant, sigma, propagation, env_id, parts)
    ref = reference.plan(obs0.cpu(), th.Generator().manual_seed(7))
    return out, ref


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[4]}-{c[5]}" for c in CASES])
def test_planner_matches_plain_reference(case: tuple) -> None:
    out, ref = plan_both(case)
    assert_same(out, ref)
    # Not a vacuous comparison: CEM moved away from its zero start.
    assert out.mean.abs().max() > 1e-3


def test_plan_outputs_and_model_cache_are_normal_tensors() -> None:
    """Planning runs in inference mode, but nothing it hands out (or caches) may be an inference tensor: callers use
    them in autograd (distillation) and in place (warm starts)."""
    case = CASES[1]  # POPLIN-A init: also rolls the policy through the model
    _, kind, variant, sigma, propagation, env_id = case
    parts = make_parts(env_id, kind, variant)
    planner = make_planner(kind, variant, sigma, propagation, env_id, parts)
    out = planner.plan(obs_for(env_id), th.zeros(N_ENVS, planner.noise_dim, dtype=DTYPE), th.Generator().manual_seed(0))
    for name in ("action", "mean", "executed_noise", "elite_first_actions", "elite_returns", "elite_noise"):
        assert not getattr(out, name).is_inference(), name
    out.mean.add_(1.0)  # in place: refused on an inference tensor
    x = th.randn(5, parts["model"].in_dim, dtype=DTYPE, requires_grad=True)
    parts["model"].forward_elites_mean(x).sum().backward()  # the cache built while planning works with autograd
    assert x.grad is not None


def test_reference_detects_a_wrong_member() -> None:
    """The comparison is sensitive: the same plan with other elite members differs from the reference."""
    case = CASES[0]
    _, kind, variant, sigma, propagation, env_id = case
    parts = make_parts(env_id, kind, variant)
    planner = make_planner(kind, variant, sigma, propagation, env_id, parts)
    ref = Reference(kind, variant, sigma, propagation, env_id, parts).plan(obs_for(env_id), th.Generator().manual_seed(7))
    parts["model"].elite_idx.copy_(th.tensor([0, 1]))
    parts["model"].invalidate_cache()
    mean0 = th.zeros(N_ENVS, planner.noise_dim, dtype=DTYPE)
    out = planner.plan(obs_for(env_id), mean0, th.Generator().manual_seed(7))
    with pytest.raises(AssertionError):
        assert_same(out, ref)


def test_expectation_fast_path_equals_expanded_forward() -> None:
    """``forward_elites_mean`` is the elites' mean of ``forward_elites`` on the same rows, in float32 too."""
    th.manual_seed(1)
    model = ProbabilisticEnsemble(7, 5, n_members=4, hidden_sizes=(32, 32, 32), n_elite_members=3)
    model.fit_input_normalizer(th.randn(500, 7) * 4.0 + 10.0)
    x = th.randn(300, 7) * 4.0 + 10.0
    expected = model.forward_elites(x.expand(3, -1, -1))[0].mean(dim=0)
    th.testing.assert_close(model.forward_elites_mean(x), expected, rtol=1e-5, atol=1e-5)


def test_cuda_graph_option_falls_back_to_eager_on_cpu() -> None:
    case = CASES[4]  # POPLIN-P sep, the planner with the most state
    out_graph, ref = plan_both(case, cuda_graph=True)
    assert_same(out_graph, ref)


def test_graph_key_changes_exactly_when_a_capture_would_be_stale() -> None:
    """The key that decides re-capture (computed the same on CPU): stable for identical calls, new for new shapes,
    settings, generators or re-allocated weights; weights updated in place keep it (the graph reads them)."""
    from sb3_poplin.common.planners import _CapturedPlan

    case = CASES[4]
    _, kind, variant, sigma, propagation, env_id = case
    parts = make_parts(env_id, kind, variant)
    planner = make_planner(kind, variant, sigma, propagation, env_id, parts)
    obs0, gen = obs_for(env_id), th.Generator()
    mean0 = th.zeros(N_ENVS, planner.noise_dim, dtype=DTYPE)
    key = _CapturedPlan.make_key(planner, obs0, mean0, gen)
    assert _CapturedPlan.make_key(planner, obs0.clone(), mean0.clone(), gen) == key
    # Holding a capture is bookkeeping, not a setting: the key computed while capturing (nothing held yet) must match the
    # one of the next call (a graph held). Seen on an H200: every step re-captured, 3.5x slower than eager planning.
    planner._captured = object()  # type: ignore[assignment]
    assert _CapturedPlan.make_key(planner, obs0, mean0, gen) == key
    planner._captured = None
    with th.no_grad():
        parts["policy"].linears[0].weight.add_(0.1)  # an optimiser step: same storage
    assert _CapturedPlan.make_key(planner, obs0, mean0, gen) == key
    assert _CapturedPlan.make_key(planner, obs0[:1], mean0[:1], gen) != key
    assert _CapturedPlan.make_key(planner, obs0, mean0, th.Generator()) != key
    planner.init_sigma = 0.2
    assert _CapturedPlan.make_key(planner, obs0, mean0, gen) != key
    planner.init_sigma = sigma
    planner.optimizer.n_iterations = 3
    assert _CapturedPlan.make_key(planner, obs0, mean0, gen) != key
    planner.optimizer.n_iterations = ITERATIONS
    assert _CapturedPlan.make_key(planner, obs0, mean0, gen) == key
    # A model update re-derives the planning weights: new tensors (held while the old key is alive, so new addresses).
    old_cache = parts["model"]._elite_layers()
    parts["model"].invalidate_cache()
    assert _CapturedPlan.make_key(planner, obs0, mean0, gen) != key
    assert parts["model"]._elite_layers() is not old_cache


cuda = pytest.mark.skipif(not th.cuda.is_available(), reason="needs a CUDA device")


@cuda
@pytest.mark.parametrize("case", [c for c in CASES if c[4] != "random_model"], ids=lambda c: f"{c[0]}-{c[4]}-{c[5]}")
def test_planner_on_cuda_matches_reference_with_the_same_draws(case: tuple) -> None:
    """On CUDA the random numbers come from the device generator: feed the reference the same draws."""
    _, kind, variant, sigma, propagation, env_id = case
    parts = make_parts(env_id, kind, variant)
    planner = make_planner(kind, variant, sigma, propagation, env_id, to_device(parts, "cuda"))
    obs0 = obs_for(env_id, "cuda")
    mean0 = th.zeros(N_ENVS, planner.noise_dim, dtype=DTYPE, device="cuda")
    out = planner.plan(obs0, mean0, th.Generator(device="cuda").manual_seed(7))
    reference = Reference(kind, variant, sigma, propagation, env_id, parts)
    ref = reference.plan(obs0.cpu(), th.Generator(device="cuda").manual_seed(7))
    assert_same(out, ref, atol=1e-7)


@cuda
@pytest.mark.parametrize("case", CASES[:5], ids=lambda c: c[0])
def test_cuda_graph_replays_equal_eager_plans(case: tuple) -> None:
    """Graph replays draw the same random numbers as eager plans with the same seed, step after step."""
    _, kind, variant, sigma, propagation, env_id = case
    parts = to_device(make_parts(env_id, kind, variant), "cuda")
    eager = make_planner(kind, variant, sigma, propagation, env_id, parts)
    graphed = make_planner(kind, variant, sigma, propagation, env_id, parts, cuda_graph=True)
    gen_eager, gen_graph = (th.Generator(device="cuda").manual_seed(11) for _ in range(2))
    obs0 = obs_for(env_id, "cuda")
    mean_e = mean_g = None
    for step in range(3):
        out_e = eager.plan(obs0 + 0.1 * step, mean_e, gen_eager)
        out_g = graphed.plan(obs0 + 0.1 * step, mean_g, gen_graph)
        assert graphed._captured is not None, "the plan was not captured"
        th.testing.assert_close(out_g.mean, out_e.mean, rtol=0.0, atol=1e-9)
        th.testing.assert_close(out_g.action, out_e.action, rtol=0.0, atol=1e-9)
        mean_e, mean_g = eager.warm_start(out_e.mean), graphed.warm_start(out_g.mean)


# ----------------------------------------------------------------------------------------------------------------------
# Split sampling of large CEM draws
# ----------------------------------------------------------------------------------------------------------------------
def test_split_draws_are_reproducible_and_independent_of_threads() -> None:
    from sb3_poplin.common.cem import standard_normal_

    threads = th.get_num_threads()
    try:
        draws = []
        for n_threads in (1, 2, 3):
            th.set_num_threads(n_threads)
            draws.append(standard_normal_(th.empty(3, 1000, 101), th.Generator().manual_seed(5), parallel_min=1000))
    finally:
        th.set_num_threads(threads)
    assert th.equal(draws[0], draws[1]) and th.equal(draws[0], draws[2])
    other = standard_normal_(th.empty(3, 1000, 101), th.Generator().manual_seed(6), parallel_min=1000)
    assert not th.equal(draws[0], other)
    flat = draws[0].view(-1)
    assert abs(flat.mean().item()) < 0.01 and abs(flat.std().item() - 1.0) < 0.01
    # The sub-streams are not copies of each other.
    chunks = flat.tensor_split(8)
    assert not th.equal(chunks[0][:100], chunks[1][:100])
    # Below the threshold: exactly one th.randn call.
    small = standard_normal_(th.empty(10, 10), th.Generator().manual_seed(5))
    assert th.equal(small, th.randn(10, 10, generator=th.Generator().manual_seed(5)))


def test_plan_with_split_sampling_is_reproducible_across_thread_counts() -> None:
    case = CASES[4]  # POPLIN-P sep: the planner whose draws get split at the paper config
    _, kind, variant, sigma, propagation, env_id = case
    threads = th.get_num_threads()
    outs = []
    try:
        for n_threads in (1, 2):
            th.set_num_threads(n_threads)
            parts = make_parts(env_id, kind, variant)
            planner = make_planner(kind, variant, sigma, propagation, env_id, parts)
            planner.optimizer.parallel_sampling_min = 1000  # split even this tiny draw
            mean0 = th.zeros(N_ENVS, planner.noise_dim, dtype=DTYPE)
            outs.append(planner.plan(obs_for(env_id), mean0, th.Generator().manual_seed(7)))
    finally:
        th.set_num_threads(threads)
    th.testing.assert_close(outs[0].mean, outs[1].mean, rtol=0.0, atol=1e-12)
    # And it really took the split path: the plain reference (one randn call per draw) disagrees.
    ref = Reference(kind, variant, sigma, propagation, env_id, make_parts(env_id, kind, variant))
    with pytest.raises(AssertionError):
        assert_same(outs[0], ref.plan(obs_for(env_id), th.Generator().manual_seed(7)))
