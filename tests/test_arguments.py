"""Constructor arguments: every algorithm shows and forwards all of them, and a bad value fails at construction with
the name of the argument the user set (issue 12, parts 5 and 6)."""

from __future__ import annotations

import inspect
import pydoc
import re
from pathlib import Path
from typing import Any

import pytest
import torch as th
from stable_baselines3.common.buffers import ReplayBuffer

from benchmarks.options_reference import reference_page
from sb3_poplin import PETS, POPLIN_A, POPLIN_P, RS
from sb3_poplin.common.base import PlanningAlgorithm, PolicyPlanningAlgorithm
from sb3_poplin.common.buffers import PlanningReplayBuffer
from sb3_poplin.common.optimizers import OPTIMIZERS

ALL_ALGOS = [POPLIN_A, POPLIN_P, PETS, RS]
#: arguments that are neither numbers nor choices (objects, paths, devices, dicts of other classes' arguments)
NOT_NUMERIC_OR_CHOICE = {"self", "policy", "env", "policy_kwargs", "replay_buffer_kwargs", "tensorboard_log", "device"}
NOT_NUMERIC_OR_CHOICE |= {"_init_setup_model"}

#: (argument, bad value, what the error says), shared by every algorithm
BAD_SHARED: list[tuple[str, Any, str]] = [
    ("buffer_size", 0, "buffer_size must be >= 1"),
    ("learning_starts", -1, "learning_starts must be >= 0"),
    ("train_freq", (0, "step"), "train_freq must be >= 1"),
    ("train_freq", (1, "epoch"), "train_freq's unit must be one of"),
    ("population_size", 0, "population_size must be >= 1"),
    ("population_size", -5, "population_size must be >= 1"),
    ("n_elites", 600, r"n_elites must be in \[1, population_size=500\]"),
    ("cem_iterations", 0, "cem_iterations must be >= 1"),
    ("cem_alpha", 1.0, r"cem_alpha must be in \[0, 1\)"),
    ("cem_early_stop_tol", -0.1, r"cem_early_stop_tol must be in \[0"),
    ("cuda_graph", "yes", "cuda_graph must be None"),
    ("cem_mirrored", 1, "cem_mirrored must be True or False"),
    ("cem_noise_table", -1, "cem_noise_table must be >= 0"),
    ("cem_noise_table", 2.5, "cem_noise_table must be an integer"),
    ("cem_truncation", "resample", "cem_truncation must be one of"),
    ("cem_execute", "median", "cem_execute must be one of"),
    ("cem_warm_start", "best", "cem_warm_start must be one of"),
    ("optimizer", "adam", r"optimizer must be one of \('cem', 'icem', 'mppi'\)"),
    ("icem_noise_beta", -1.0, r"icem_noise_beta must be in \[0"),
    ("icem_keep_elites", 1.5, r"icem_keep_elites must be in \[0"),
    ("icem_population_decay", 0.5, r"icem_population_decay must be in \[1"),
    ("mppi_gamma", 0.0, r"mppi_gamma must be in \(0, inf\)"),
    ("mppi_noise_filter", 0.0, r"mppi_noise_filter must be in \(0, 1\]"),
    ("exploitation_log_freq", -1, "exploitation_log_freq must be >= 0"),
    ("dynamics_keep_epoch", "first", "dynamics_keep_epoch must be one of"),
    ("dynamics_ignore_positions", "yes", "dynamics_ignore_positions must be True or False"),
    ("dynamics_processing", 3, "dynamics_processing must be None"),
    ("dynamics_min_updates", -1, "dynamics_min_updates must be >= 0"),
    ("n_threads", 0, "n_threads must be >= 1"),
    ("planning_dtype", "float16", r"planning_dtype must be one of \('float32', 'bfloat16', 'auto'\)"),
    ("horizon", 0, "horizon must be >= 1"),
    ("horizon", 2.5, "horizon must be an integer"),
    ("init_sigma", -1.0, r"init_sigma must be in \(0"),
    ("propagation", "TS2", "Unknown propagation 'TS2'"),
    ("num_particles", 0, "num_particles must be >= 1"),
    ("pessimism", -1.0, r"pessimism must be in \[0"),
    ("pessimism", 1.0, "pessimism > 0 needs sampled particles: pass propagation='fixed_model'"),
    ("ensemble_size", 0, "ensemble_size must be >= 1"),
    ("n_elite_members", 6, r"n_elite_members must be in \[1, ensemble_size=5\]"),
    ("dynamics_net_arch", [200, 0], "dynamics_net_arch must be a list of positive integers"),
    ("dynamics_activation", "gelu", "dynamics_activation must be one of"),
    ("dynamics_weight_decay", -1e-4, r"dynamics_weight_decay must be in \[0"),
    ("dynamics_weight_decay", [1e-4, 1e-4], "dynamics_weight_decay needs 5 values"),
    ("dynamics_learning_rate", -1e-3, r"dynamics_learning_rate must be in \(0"),
    ("dynamics_optimizer_kwargs", {"lr": 1e-2}, "pass the learning rate as dynamics_learning_rate"),
    ("dynamics_optimizer_kwargs", {"beta": (0.9, 0.99)}, r"dynamics_optimizer_kwargs has unknown Adam arguments \['beta'\]"),
    ("dynamics_optimizer_kwargs", [("eps", 1e-4)], "dynamics_optimizer_kwargs must be a dict"),
    ("dynamics_epochs", 0, "dynamics_epochs must be >= 1"),
    ("dynamics_batch_size", 0, "dynamics_batch_size must be >= 1"),
    ("dynamics_holdout_ratio", 1.0, r"dynamics_holdout_ratio must be in \[0, 1\)"),
    ("dynamics_patience", 0, "dynamics_patience must be >= 1"),
    ("dynamics_max_updates", 0, "dynamics_max_updates must be >= 1"),
    ("reward_fn", 3, "reward_fn must be None, a callable"),
    ("termination_fn", "no_colon", "termination_fn must be None, a callable"),
    ("replay_buffer_class", ReplayBuffer, "replay_buffer_class must be PlanningReplayBuffer"),
    ("stats_window_size", 0, "stats_window_size must be >= 1"),
    ("verbose", 3, r"verbose must be in \[0, 2\]"),
    ("seed", -1, r"seed must be in \[0, 4294967295\]"),
]
#: the same for the distillation arguments of the algorithms with a policy network
BAD_DISTILLATION: list[tuple[str, Any, str]] = [
    ("learning_rate", 0.0, r"learning_rate must be in \(0"),
    ("distillation_window", 0, "distillation_window"),
    ("distillation_best_episodes", 0, "distillation_best_episodes must be >= 1"),
    ("policy_epochs", 0, "policy_epochs must be >= 1"),
    ("policy_batch_size", 0, "policy_batch_size must be >= 1"),
    ("policy_holdout_ratio", -0.1, r"policy_holdout_ratio must be in \[0, 1\)"),
    ("policy_patience", 0, "policy_patience must be >= 1"),
    ("policy_max_updates", 0, "policy_max_updates must be >= 1"),
    ("predict_with", "planner", "predict_with must be one of"),
    ("distillation_data", "imagined", "distillation_data must be one of"),
    ("hallucination_elites", 0, "hallucination_elites must be >= 1"),
    ("policy_whitening", "running", "policy_whitening must be one of"),
    ("distill_after_warmup", "no", "distill_after_warmup must be True or False"),
    ("extra_pairs_capacity", -1, "extra_pairs_capacity must be >= 0"),
    ("policy_eval_freq", -1, "policy_eval_freq must be >= 0"),
    ("policy_eval_episodes", 0, "policy_eval_episodes must be >= 1"),
]
#: the same for the arguments of one algorithm
BAD_OWN: dict[type, list[tuple[str, Any, str]]] = {
    POPLIN_P: [
        ("planning_variant", "init", "planning_variant must be one of"),
        ("distillation", "dagger", "distillation must be one of"),
        ("avg_update", "replace", "avg_update must be one of"),
        ("gan_entropy_coef", -1.0, r"gan_entropy_coef must be in \[0"),
        ("gan_epochs", 0, "gan_epochs must be >= 1"),
        ("discriminator_net_arch", [0], "discriminator_net_arch must be a list of positive integers"),
        ("discriminator_learning_rate", 0.0, r"discriminator_learning_rate must be in \(0"),
    ],
    POPLIN_A: [
        ("planning_variant", "sep", "planning_variant must be one of"),
        ("distillation", "avg", "distillation must be one of"),
        ("bc_elite_actions", 51, r"bc_elite_actions must be in \[0, n_elites=50\]"),
        ("bc_elite_actions", -1, r"bc_elite_actions must be in \[0, n_elites=50\]"),
    ],
    PETS: [],
    RS: [],
}
POLICY_ALGOS = [POPLIN_A, POPLIN_P]


def bad_cases(algo: type) -> list[tuple[str, Any, str]]:
    """Every bad-value case of ``algo``'s arguments."""
    return BAD_SHARED + (BAD_DISTILLATION if algo in POLICY_ALGOS else []) + BAD_OWN[algo]


CASES = [(algo, *case) for algo in ALL_ALGOS for case in bad_cases(algo)]


@pytest.mark.parametrize(
    ("algo", "argument", "value", "match"), CASES, ids=[f"{c[0].__name__}-{c[1]}-{c[2]!r}" for c in CASES]
)
def test_bad_value_fails_at_construction_with_its_name(algo: type, argument: str, value: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        algo("MlpPolicy", "Pendulum-v1", **{argument: value})


@pytest.mark.parametrize("algo", ALL_ALGOS)
def test_every_numeric_and_choice_argument_has_a_bad_value_case(algo: type) -> None:
    covered = {argument for argument, _, _ in bad_cases(algo)}
    arguments = set(inspect.signature(algo).parameters) - NOT_NUMERIC_OR_CHOICE
    assert arguments <= covered, f"no bad-value case for {sorted(arguments - covered)}"


def test_integral_floats_from_yaml_are_taken_as_integers() -> None:
    model = POPLIN_P("MlpPolicy", "Pendulum-v1", buffer_size=1e4, population_size=50.0, n_elites=5, _init_setup_model=False)
    assert model.buffer_size == 10_000 and isinstance(model.population_size, int)


@pytest.mark.parametrize(
    ("argument", "suggestion"),
    [
        ("popsize", "population_size"),
        ("n_iterations", "cem_iterations"),
        ("horizn", "horizon"),
        ("planing_variant", "planning_variant"),
    ],
)
def test_misspelt_argument_suggests_the_real_one(argument: str, suggestion: str) -> None:
    with pytest.raises(TypeError, match=f"unexpected keyword argument '{argument}'. Did you mean .*'{suggestion}'"):
        POPLIN_P("MlpPolicy", "Pendulum-v1", **{argument: 10})


class _OwnBuffer(PlanningReplayBuffer):
    pass


#: a valid value, other than the default where one exists, for every argument of PlanningAlgorithm
NON_DEFAULT: dict[str, Any] = dict(
    learning_rate=1e-4,
    buffer_size=1234,
    learning_starts=7,
    train_freq=(3, "step"),
    population_size=40,
    n_elites=6,
    cem_iterations=2,
    cem_alpha=0.2,
    cem_early_stop_tol=0.05,
    cem_mirrored=True,
    cem_noise_table=1 << 20,
    horizon=6,
    init_sigma=0.3,
    propagation="fixed_model",
    num_particles=4,
    pessimism=0.5,
    ensemble_size=3,
    n_elite_members=2,
    dynamics_net_arch=[8],
    dynamics_activation="tanh",
    dynamics_weight_decay=1e-5,
    dynamics_learning_rate=2e-3,
    dynamics_optimizer_kwargs={"eps": 1e-4},
    dynamics_epochs=3,
    dynamics_min_updates=20,
    dynamics_batch_size=16,
    dynamics_holdout_ratio=0.2,
    dynamics_patience=2,
    dynamics_max_updates=10,
    dynamics_ignore_positions=False,
    dynamics_processing="delta",
    policy_epochs=4,
    policy_batch_size=8,
    policy_holdout_ratio=0.3,
    policy_patience=3,
    policy_max_updates=11,
    reward_fn="tests.test_algorithms:pendulum_reward",
    termination_fn="learned",
    predict_with="policy",
    distillation_data="hallucination",
    distillation_window=300,
    distillation_best_episodes=2,
    hallucination_elites=2,
    extra_pairs_capacity=99,
    policy_eval_freq=500,
    policy_eval_episodes=2,
    replay_buffer_class=_OwnBuffer,
    replay_buffer_kwargs=dict(noise_dtype="float16"),
    policy_kwargs=dict(net_arch=[8]),
    stats_window_size=7,
    tensorboard_log="tb",
    verbose=1,
    seed=5,
    device="cpu",
    cuda_graph=True,
    n_threads=3,
    planning_dtype="bfloat16",
    cem_truncation="redraw",
    cem_execute="best",
    cem_warm_start="executed",
    optimizer="icem",
    icem_noise_beta=1.0,
    icem_keep_elites=0.5,
    icem_population_decay=1.5,
    mppi_gamma=4.0,
    mppi_noise_filter=0.5,
    exploitation_log_freq=3,
    dynamics_keep_epoch="last",
    policy_whitening="planned",
    distill_after_warmup=False,
)
#: where the value of an argument is kept, when not under its own name
ATTRIBUTE = dict(train_freq="train_freq_arg", reward_fn="reward_fn_spec", termination_fn="termination_fn_spec")
ATTRIBUTE |= dict(stats_window_size="_stats_window_size")


@pytest.mark.parametrize("algo", ALL_ALGOS)
def test_help_shows_and_the_algorithm_forwards_every_shared_argument(algo: type) -> None:
    expected = PolicyPlanningAlgorithm if algo in POLICY_ALGOS else PlanningAlgorithm
    shared = {option.name: option for option in expected.options}
    own = inspect.signature(algo).parameters
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in own.values()), "no **kwargs hiding the arguments"
    assert list(own)[:2] == ["policy", "env"] and list(own)[-1] == "_init_setup_model"
    for name, option in shared.items():
        assert name in own, f"{algo.__name__} does not show {name}"
        expected_default = RS.option_defaults.get(name, option.default) if algo is RS else option.default
        assert own[name].default == expected_default, name
        assert f":param {name}:" in algo.__doc__, f"{algo.__name__}'s docstring does not document {name}"
    for option in algo.own_options:
        assert f":param {option.name}:" in algo.__doc__ and option.name in own
    text = pydoc.render_doc(algo, renderer=pydoc.plaintext)
    assert re.search(r"population_size: '?int'? = 500", text) and ":param horizon:" in text
    # Every value given reaches the algorithm (a forgotten forward would leave the default).
    assert set(NON_DEFAULT) == {option.name for option in PolicyPlanningAlgorithm.options}
    # One model per optimizer: the options of another optimizer than the model's are refused.
    for optimizer in OPTIMIZERS:
        others = {o.name for name, other in OPTIMIZERS.items() if name != optimizer for o in other.options}
        given = {name: value for name, value in NON_DEFAULT.items() if name in shared and name not in others}
        model = algo("MlpPolicy", "Pendulum-v1", _init_setup_model=False, **{**given, "optimizer": optimizer})
        for name, value in given.items():
            kept = getattr(model, ATTRIBUTE.get(name, name))
            if name == "device":
                kept, value = str(kept), str(th.device(value))
            if name == "optimizer":
                value = optimizer
            assert kept == value, f"{algo.__name__} did not forward {name}: {kept!r} != {value!r}"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (dict(icem_noise_beta=1.0), r"icem_noise_beta is an option of optimizer='icem', and this model's optimizer is 'cem'"),
        (dict(optimizer="icem", cem_mirrored=True), r"cem_mirrored is an option of optimizer='cem'.* is 'icem'"),
        (dict(optimizer="ICEM", cem_truncation="redraw"), r"cem_truncation is an option of optimizer='cem'"),
    ],
)
def test_an_option_of_another_optimizer_names_the_one_that_takes_it(given: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PETS("MlpPolicy", "Pendulum-v1", _init_setup_model=False, **given)
    # Its default value is no choice of the user's, and passes (a zoo file may list every option).
    defaults = {name: value for name, value in given.items() if name == "optimizer"}
    PETS("MlpPolicy", "Pendulum-v1", _init_setup_model=False, icem_noise_beta=2.0, cem_mirrored=False, **defaults)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (dict(gan_epochs=3), r"gan_epochs is an option of distillation='gan', and this model's distillation is 'bc'"),
        (dict(distillation="gan", avg_update="set"), r"avg_update is an option of distillation='avg'.* is 'gan'"),
        (dict(distillation="ppo"), r"distillation must be one of \('avg', 'bc', 'gan'\), got 'ppo'"),
    ],
)
def test_an_option_of_another_distillation_names_the_one_that_takes_it(given: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        POPLIN_P("MlpPolicy", "Pendulum-v1", _init_setup_model=False, **given)
    # POPLIN-A distils by behaviour cloning only: the other schemes are not its options at all.
    with pytest.raises(ValueError, match=r"distillation must be one of \('bc',\), got 'avg'"):
        POPLIN_A("MlpPolicy", "Pendulum-v1", _init_setup_model=False, distillation="avg")
    assert "avg_update" not in inspect.signature(POPLIN_A).parameters


def test_options_page_is_the_code_s() -> None:
    page = Path(__file__).parent.parent / "docs" / "options.md"
    expected = reference_page([POPLIN_P, POPLIN_A, PETS, RS])
    assert page.read_text() == expected, "docs/options.md is stale: python -m benchmarks.options_reference docs/options.md"
    for algo in ALL_ALGOS:
        for option in algo.options:
            assert f"`{option.name}`" in expected


def test_an_option_is_declared_once() -> None:
    # Each algorithm's signature comes from the declarations: no option is declared in two groups, and an algorithm
    # declaring one again fails when its class is defined.
    with pytest.raises(TypeError, match=r"declares the options \['horizon'\] more than once"):

        class _Twice(POPLIN_P):
            own_options = (*POPLIN_P.own_options, *(o for o in PlanningAlgorithm.options if o.name == "horizon"))
