"""Every constructor option of the planning algorithms, declared once: its default, its check and its documentation.

An algorithm's options are the shared model and planner options (:data:`PLANNING_OPTIONS`), those of every optimizer
(each declared in its own module: :mod:`sb3_poplin.common.cem`, :mod:`sb3_poplin.common.icem`,
:mod:`sb3_poplin.common.mppi`), the distillation options of the algorithms that train a policy network
(:data:`sb3_poplin.common.distillation.DISTILLATION_OPTIONS`, and those of each distillation scheme), its own (e.g.
POPLIN-P's ``planning_variant``) and SB3's general ones (:data:`GENERAL_OPTIONS`). From that list
:class:`~sb3_poplin.common.base.PlanningAlgorithm` builds the class's signature (``inspect.signature(POPLIN_P)``,
``help(POPLIN_P)``), the ``:param:`` lines of its docstring, and the checks that run when a model is built, so that a
bad value fails at once with its own name. ``python -m benchmarks.options_reference docs/options.md`` writes the
reference page from the same declarations.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from sb3_poplin.common.buffers import PlanningReplayBuffer
from sb3_poplin.common.dynamics import ACTIVATIONS, DYNAMICS_KEEP_EPOCHS, check_adam_kwargs
from sb3_poplin.common.env_binding import LEARNED
from sb3_poplin.common.optimizers import OPTIMIZERS
from sb3_poplin.common.precision import PLANNING_DTYPES
from sb3_poplin.common.processing import check_processing_spec
from sb3_poplin.common.rollout import PROPAGATIONS, canonical_propagation
from sb3_poplin.common.validation import (
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_keyword_names,
    check_optional_int,
    check_widths,
)

#: (name, value, the values of the options declared before it) -> the checked value; raises ValueError
Check = Callable[[str, Any, dict[str, Any]], Any]

#: what a plan executes (``cem_execute``): the final CEM mean, or the best candidate of the last iteration
CEM_EXECUTES = ("mean", "best")
#: what the next plan starts from (``cem_warm_start``): the search's final mean, or the plan executed
CEM_WARM_STARTS = ("mean", "executed")


@dataclass(frozen=True)
class Option:
    """One constructor option.

    :param name: the argument's name
    :param default: its default
    :param annotation: its type, as shown in the signature
    :param doc: what it does (the ``:param:`` text)
    :param check: turns the given value into the stored one or raises a ValueError naming the option (None: as given)
    :param sb3: SB3's ``OffPolicyAlgorithm`` takes it (it is passed on instead of stored by the algorithm)
    :param attribute: the attribute that keeps it, where not its name
    """

    name: str
    default: Any
    annotation: str
    doc: str
    check: Check | None = None
    sb3: bool = False
    attribute: str | None = None

    def parameter(self) -> inspect.Parameter:
        return inspect.Parameter(
            self.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=self.default, annotation=self.annotation
        )


# ----------------------------------------------------------------------------------------------------------------------
# Checks
# ----------------------------------------------------------------------------------------------------------------------
def integer(minimum: int, maximum_option: str | None = None, optional: bool = False) -> Check:
    """An integer >= ``minimum`` (and <= the value of the option ``maximum_option``); None too when ``optional``."""

    def check(name: str, value: Any, values: dict[str, Any]) -> int | None:
        maximum = None if maximum_option is None else values[maximum_option]
        bound_name = "" if maximum_option is None else f"{maximum_option}={maximum}"
        if optional:
            return check_optional_int(name, value, minimum, maximum, bound_name)
        return check_int(name, value, minimum, maximum, bound_name)

    return check


def real(
    minimum: float | None = None, maximum: float | None = None, strict_minimum: bool = False, strict_maximum: bool = False
) -> Check:
    """A finite number within the bounds (``strict_*``: the bound itself excluded)."""

    def check(name: str, value: Any, values: dict[str, Any]) -> float:
        return check_float(name, value, minimum, maximum, not strict_minimum, not strict_maximum)

    return check


def optional(inner: Check) -> Check:
    """None, or a value ``inner`` accepts."""

    def check(name: str, value: Any, values: dict[str, Any]) -> Any:
        return None if value is None else inner(name, value, values)

    return check


def choice(choices: Sequence[str]) -> Check:
    """One of ``choices`` (case-insensitive)."""
    return lambda name, value, values: check_choice(name, value, choices)


def boolean(name: str, value: Any, values: dict[str, Any]) -> bool:
    return check_bool(name, value)


def widths(name: str, value: Any, values: dict[str, Any]) -> list[int]:
    return check_widths(name, value)


def learning_rate_or_schedule(name: str, value: Any, values: dict[str, Any]) -> Any:
    """A positive learning rate, or a schedule (a callable)."""
    return value if callable(value) else check_float(name, value, 0.0, min_inclusive=False)


def _train_freq(name: str, value: Any, values: dict[str, Any]) -> Any:
    """None, a positive int, or ``(positive int, "step" | "episode")`` (a list from YAML/JSON too)."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or (int, 'step'|'episode'), got {value!r}")
        frequency = check_int(name, value[0], 1)
        unit = check_choice(f"{name}'s unit", str(getattr(value[1], "value", value[1])), ("step", "episode"))
        return (frequency, unit)
    return check_int(name, value, 1)


def _propagation(name: str, value: Any, values: dict[str, Any]) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string ({', '.join(PROPAGATIONS)}), got {value!r}")
    return canonical_propagation(value)


def _optimizer(name: str, value: Any, values: dict[str, Any]) -> str:
    return check_choice(name, value, sorted(OPTIMIZERS))


def _pessimism(name: str, value: Any, values: dict[str, Any]) -> float:
    value = check_float(name, value, 0.0)
    if value > 0.0 and values["propagation"] == "expectation":
        raise ValueError(
            f"{name} > 0 needs sampled particles: pass propagation='fixed_model' (TSinf) and num_particles equal to the "
            f"elite members (n_elite_members, default ensemble_size), or set {name}=0.0"
        )
    return value


def _net_arch(name: str, value: Any, values: dict[str, Any]) -> list[int]:
    return check_widths(name, [200, 200, 200, 200] if value is None else value)


def _weight_decay(name: str, value: Any, values: dict[str, Any]) -> float | list[float] | None:
    """None, a float >= 0, or one float >= 0 per layer of a member (hidden layers and output layer)."""
    if value is None:
        return None
    n_layers = len(values["dynamics_net_arch"]) + 1
    if isinstance(value, (list, tuple)):
        if len(value) != n_layers:
            raise ValueError(
                f"{name} needs {n_layers} values (one per hidden layer of dynamics_net_arch, plus the output layer), "
                f"got {len(value)}"
            )
        return [check_float(name, w, 0.0) for w in value]
    return check_float(name, value, 0.0)


def _function_spec(name: str, value: Any, values: dict[str, Any]) -> Any:
    """None, a callable, ``"learned"`` or an importable ``"package.module:function"`` string."""
    if value is None or callable(value) or value == LEARNED:
        return value
    if not isinstance(value, str) or value.count(":") != 1:
        raise ValueError(
            f"{name} must be None, a callable (obs, action, next_obs) -> tensor, 'learned', or an importable "
            f"'package.module:function' string, got {value!r}"
        )
    return value


def _replay_buffer_class(name: str, value: Any, values: dict[str, Any]) -> type[PlanningReplayBuffer]:
    value = PlanningReplayBuffer if value is None else value
    if not (isinstance(value, type) and issubclass(value, PlanningReplayBuffer)):
        raise ValueError(
            f"{name} must be PlanningReplayBuffer or a subclass of it (it records which steps were planned and the "
            f"noise that distillation needs), got {value!r}"
        )
    return value


def _cuda_graph(name: str, value: Any, values: dict[str, Any]) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise ValueError(f"{name} must be None (on for CUDA models), True or False, got {value!r}")
    return value


def _seed(name: str, value: Any, values: dict[str, Any]) -> int | None:
    return check_optional_int(name, value, 0, 2**32 - 1)


# ----------------------------------------------------------------------------------------------------------------------
# The options
# ----------------------------------------------------------------------------------------------------------------------
#: the model and the planner: every planning algorithm takes them
PLANNING_OPTIONS: tuple[Option, ...] = (
    Option("buffer_size", 1_000_000, "int", "replay buffer size (transitions per env); its memory is taken as the data "
           "arrives", integer(1), sb3=True),
    Option("learning_starts", 1000, "int", "random steps before the first planning", integer(0), sb3=True),
    Option("train_freq", None, "int | tuple[int, str] | None", "train every N steps (int) or ``(N, \"step\"|\"episode\")``; "
           "default: every episode (with several envs: every ``max_episode_steps`` steps)", _train_freq,
           attribute="train_freq_arg"),
    Option("optimizer", "cem", "str", "the trajectory optimizer: ``cem`` (the cross-entropy method, PETS' and POPLIN's), "
           "``icem`` (Pinneri et al., 2020: noise coloured along the horizon, elites kept between iterations and plans, a "
           "population that shrinks over the iterations, the best candidate executed) or ``mppi`` (every candidate "
           "averaged with weights exponential in its return, noise filtered along the horizon). Its own options start "
           "with its name", _optimizer),
    Option("population_size", 500, "int", "CEM candidates per env and iteration (iCEM: of its first iteration)",
           integer(1)),
    Option("n_elites", 50, "int", "CEM elites, at most ``population_size``", integer(1, "population_size")),
    Option("cem_iterations", 5, "int", "CEM iterations per real step", integer(1)),
    Option("cem_alpha", 0.1, "float", "weight of the previous distribution in CEM's smoothed update (PETS' alpha), in "
           "[0, 1)", real(0.0, 1.0, strict_maximum=True)),
    Option("cem_execute", None, "str | None", "what a plan executes: ``mean`` (the final mean of the search: PETS' and "
           "POPLIN's rule, which does not chase one sample's model error) or ``best`` (the best candidate: of the last "
           "iteration for CEM, of every iteration for iCEM and MPPI); None (default): the optimizer's own rule, ``mean`` "
           "for ``cem`` and ``mppi``, ``best`` for ``icem``. In POPLIN-P's parameter space the mean of the elites' "
           "weights is not the policy of any elite (docs/performance.md, *Search strength*); random shooting always "
           "executes its best",
           optional(choice(CEM_EXECUTES))),
    Option("cem_warm_start", "mean", "str", "what the next step's search starts from, shifted by the executed step: "
           "``mean`` (the search's final mean: PETS', POPLIN's and Pinneri et al.'s iCEM rule) or ``executed`` (the "
           "executed plan: mbrl-lib's rule, and this package's before 0.2.0). They differ only when the best candidate "
           "is executed: then ``executed`` moves the search by one sample's noise at every step, which in POPLIN-P's "
           "parameter space adds up over the horizon", choice(CEM_WARM_STARTS)),
    Option("horizon", 30, "int", "planning horizon (imagined steps)", integer(1)),
    Option("init_sigma", None, "float | None", "initial std of the planning noise (None: the algorithm's default)",
           optional(real(0.0, strict_minimum=True))),
    Option("propagation", "expectation", "str", "particle propagation: ``expectation`` (E), ``fixed_model`` (TSinf), "
           "``random_model`` (TS1)", _propagation),
    Option("num_particles", 20, "int", "particles per candidate for sampled propagation", integer(1)),
    Option("pessimism", 0.0, "float", "score candidates by the mean of their particles' predicted returns minus this "
           "many standard deviations of them (default 0: the mean). With ``propagation=\"fixed_model\"`` and one "
           "particle per elite member, plans whose return the members disagree about are penalised, which keeps CEM "
           "away from the model's errors. Needs ``fixed_model`` or ``random_model`` propagation", _pessimism),
    Option("ensemble_size", 5, "int", "members of the dynamics ensemble", integer(1)),
    Option("n_elite_members", None, "int | None", "members used for planning, chosen on hold-out loss (default: all)",
           integer(1, "ensemble_size", optional=True)),
    Option("dynamics_net_arch", None, "list[int] | None", "hidden widths of each member (default "
           "``[200, 200, 200, 200]``)", _net_arch),
    Option("dynamics_activation", "silu", "str", "hidden activation of the members (``silu``/``swish``, ``relu``, "
           "``tanh``, ``elu``)", choice(sorted(ACTIVATIONS))),
    Option("dynamics_weight_decay", None, "float | list[float] | None", "L2 per layer (one float for all, a list with one "
           "per layer, or None for PETS' schedule)", _weight_decay),
    Option("dynamics_learning_rate", 1e-3, "float", "Adam learning rate of the ensemble",
           real(0.0, strict_minimum=True)),
    Option("dynamics_optimizer_kwargs", None, "dict[str, Any] | None", "further keyword arguments of the ensemble's "
           "``torch.optim.Adam`` (``betas``, ``eps``, ``weight_decay``, ...). By default Adam runs torch's fused kernel "
           "on CPU and CUDA (same update rule, cheaper fits: docs/results.md, *cheetah-fitting*); ``{\"fused\": False}`` "
           "gives torch's default "
           "implementation (which zips saved before this option keep)",
           lambda name, value, values: check_adam_kwargs(name, value)),
    Option("dynamics_epochs", 5, "int", "max epochs per training of the ensemble", integer(1)),
    Option("dynamics_min_updates", 1000, "int", "each training runs at least this many gradient steps (more epochs while "
           "the data is small; the hold-out early stopping still applies). The first trainings otherwise see a few "
           "hundred steps: on HalfCheetah-v5, 5 epochs on the first 1,000 random steps (145 steps) left the model "
           "barely better than predicting no change", integer(0)),
    Option("dynamics_batch_size", 32, "int", "minibatch size per member", integer(1)),
    Option("dynamics_holdout_ratio", 0.1, "float", "share of the data held out for early stopping and elite selection, "
           "in [0, 1) (0: train on everything, as PETS' code does)", real(0.0, 1.0, strict_maximum=True)),
    Option("dynamics_patience", 5, "int", "epochs without hold-out improvement before stopping", integer(1)),
    Option("dynamics_keep_epoch", "best", "str", "which parameters a fit of the ensemble ends with: ``best`` (each "
           "member's epoch with the lowest hold-out error, or training error without a hold-out) or ``last`` (the last "
           "epoch's, as PETS' and the authors' code)", choice(DYNAMICS_KEEP_EPOCHS)),
    Option("dynamics_max_updates", 5000, "int | None", "cap on gradient steps per training (None: no cap). 5 epochs of "
           "batch 32 grow with the data: ~30,000 steps per training at 200k transitions; the default keeps fitting a "
           "small share of a long run on a CPU and binds only from ~35k transitions", integer(1, optional=True)),
    Option("dynamics_ignore_positions", True, "bool", "the dynamics model does not read the body's absolute position "
           "where the env observes it (a locomotion env made with ``exclude_current_positions_from_observation=False``, "
           "which makes the registered reward exact): the physics do not depend on it and it drifts out of the training "
           "data's range as the agent runs. The model still predicts its change, which the reward reads. No effect on "
           "the default observations, when the reward is given (``reward_fn=``), or with a ``dynamics_processing`` of "
           "the user's (it decides itself what the model reads)", boolean),
    Option("dynamics_processing", None, "Any", "what the model reads and predicts (:mod:`sb3_poplin.common.processing`). "
           "None (default): the processing the env's authors chose, registered with its id (PETS' Cheetah: sine and "
           "cosine of the pitch, the step's velocity predicted as is), else ``\"delta\"``: the raw observation in, its "
           "change out. Or a ``DynamicsProcessing`` (saved in the zip) or an importable ``\"package.module:attribute\"`` "
           "naming one", lambda name, value, values: check_processing_spec(value)),
    Option("reward_fn", None, "Any", "reward ``r(obs, action, next_obs)`` as a callable or ``\"module:function\"``, or "
           "``\"learned\"`` to predict it with an extra output of the ensemble; default: the registered function of the "
           "env id (which refuses wrappers that change the env's observations or action units: pass a reward of the "
           "wrapped env then)", _function_spec, attribute="reward_fn_spec"),
    Option("termination_fn", None, "Any", "termination ``done(obs, action, next_obs)``, same forms, or ``\"learned\"`` "
           "(a classifier of the next state); default: the registered one, or learned when the reward is learned",
           _function_spec, attribute="termination_fn_spec"),
    Option("exploitation_log_freq", 10, "int", "every this many planned steps, score the executed plan with the model "
           "(one candidate's rollout more) and log it against the env's return over the same steps: "
           "``rollout/predicted_return``, ``rollout/realized_return``, ``rollout/exploitation_gap`` (0: never)",
           integer(0)),
    Option("replay_buffer_class", None, "type[PlanningReplayBuffer] | None", ":class:`~sb3_poplin.common.buffers."
           "PlanningReplayBuffer` or a subclass (default: it)", _replay_buffer_class, sb3=True),
    Option("replay_buffer_kwargs", None, "dict[str, Any] | None", "extra arguments of the replay buffer (e.g. "
           "``noise_dtype=\"float16\"``)", sb3=True),
)  # fmt: skip

#: SB3's own options, and the machine's
GENERAL_OPTIONS: tuple[Option, ...] = (
    Option("policy_kwargs", None, "dict[str, Any] | None", "arguments of the policy: ``net_arch`` (a list of widths, or "
           "SAC's ``dict(pi=[...], qf=[...])`` whose ``pi`` is used), ``activation`` or SB3's ``activation_fn`` "
           "(``nn.Tanh``, ``nn.ReLU``, ``nn.SiLU``, ``nn.ELU``), ``optimizer_class``, ``optimizer_kwargs``; a features "
           "extractor is refused (POPLIN-P perturbs the network's flat weights: use an observation wrapper)", sb3=True),
    Option("stats_window_size", 100, "int", "episodes averaged for the rollout logs", integer(1), sb3=True),
    Option("tensorboard_log", None, "str | None", "tensorboard log folder", sb3=True),
    Option("verbose", 0, "int", "0 none, 1 info, 2 debug", lambda name, value, values: check_int(name, value, 0, 2),
           sb3=True),
    Option("seed", None, "int | None", "random seed", _seed, sb3=True),
    Option("device", "auto", "th.device | str", "``cpu``, ``cuda`` or ``auto``", sb3=True),
    Option("cuda_graph", None, "bool | None", "capture each plan in one CUDA graph (one launch per planning step instead "
           "of thousands of small kernels); None (default): on when the model is on a CUDA device. Ignored on CPU and "
           "with ``cem_early_stop_tol > 0``", _cuda_graph),
    Option("planning_dtype", "float32", "str", "number format of planning's matrix products (the ensemble's and the "
           "policy network's forward passes): ``float32`` (default), ``bfloat16`` or ``auto`` (bfloat16 where the "
           "hardware multiplies it natively: CPUs with AVX512-BF16 or AMX-BF16, CUDA GPUs of compute capability 8.0 or "
           "newer). States, rewards, returns and CEM's statistics stay float32, and fitting is float32. See "
           "docs/performance.md for its speed and docs/results.md for what it changes in returns",
           choice(PLANNING_DTYPES)),
    Option("n_threads", None, "int | None", "torch CPU threads while planning and training the model; None (default) "
           "chooses them from the work of one model call and the cores other processes leave idle, never more than the "
           "caller's ``torch.get_num_threads()``, and restores the caller's count afterwards (see docs/threads.md)",
           integer(1, optional=True)),
)  # fmt: skip


def with_defaults(options: Sequence[Option], defaults: dict[str, Any]) -> tuple[Option, ...]:
    """``options`` with the defaults of some replaced (an algorithm's own defaults, e.g. random shooting's one CEM
    iteration)."""
    unknown = set(defaults) - {option.name for option in options}
    if unknown:
        raise ValueError(f"defaults for options that are not declared: {sorted(unknown)}")
    return tuple(
        Option(**{**vars(option), "default": defaults[option.name]}) if option.name in defaults else option
        for option in options
    )


def check_part_options(
    option: str, chosen: str, parts: dict[str, tuple[Option, ...]], given: dict[str, Any], values: dict[str, Any]
) -> None:
    """Refuse an option of another part than the ``chosen`` one (another optimizer, another distillation) given with a
    value other than its default: it would do nothing, silently. Its default passes (a zoo file may list every option).

    :param option: the option that chooses the part (``optimizer``, ``distillation``)
    :param chosen: its value
    :param parts: the options of every part, by the part's name
    :param given: the options passed to the constructor
    :param values: every option's checked value
    """
    for name, options in parts.items():
        for part_option in options if name != chosen else ():
            if part_option.name in given and values[part_option.name] != part_option.default:
                raise ValueError(
                    f"{part_option.name} is an option of {option}={name!r}, and this model's {option} is {chosen!r}: "
                    f"pass {option}={name!r} to use it, or leave {part_option.name} out"
                )


def resolve(options: Sequence[Option], given: dict[str, Any]) -> dict[str, Any]:
    """The value of every option: the given one or the default, checked in declaration order (a check may read the
    options before it, e.g. ``n_elites`` reads ``population_size``).

    :param options: the algorithm's options
    :param given: the values passed (names were checked before)
    :return: ``{name: checked value}`` for every option
    """
    values: dict[str, Any] = {}
    for option in options:
        value = given.get(option.name, option.default)
        values[option.name] = value if option.check is None else option.check(option.name, value, values)
    return values


def param_lines(options: Sequence[Option]) -> str:
    """The ``:param:`` lines of ``options`` for a class docstring (4-space indented, wrapped at 120 columns)."""
    lines = []
    for option in options:
        words = f":param {option.name}: {option.doc}".split(" ")
        line = "    "
        for word in words:
            if len(line) + len(word) + 1 > 120 and line.strip():
                lines.append(line.rstrip())
                line = "        "
            line += word + " "
        lines.append(line.rstrip())
    return "\n".join(lines)


#: the arguments every algorithm takes besides its options
_POSITIONAL = (
    inspect.Parameter("policy", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation="str | type[POPLINPolicy]"),
    inspect.Parameter("env", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation="GymEnv | str"),
)
_INIT_SETUP = inspect.Parameter("_init_setup_model", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=True, annotation="bool")


class DeclaredOptions:
    """A class whose constructor takes declared options: its signature (``inspect.signature``, ``help()``), the
    ``:param:`` lines of its docstring and the checks of its arguments are built from :attr:`options` when the class is
    defined. A misspelt argument, or one of a model-free algorithm, is refused with the name to use instead.
    """

    #: this class's own options, declared in its module (shown after the shared ones)
    own_options: ClassVar[tuple[Option, ...]] = ()
    #: this class's defaults of shared options, where they differ
    option_defaults: ClassVar[dict[str, Any]] = {}
    #: every option, in the order of the signature (built when the class is defined)
    options: ClassVar[tuple[Option, ...]] = ()

    if TYPE_CHECKING:
        # The options' values are attributes set from the declarations when a model is built (``setattr`` by name, and
        # SB3's ``load``): a type checker cannot see them, and reads each as ``Any`` through this (no such method exists
        # at run time, so a misspelt attribute still raises AttributeError).
        def __getattr__(self, name: str) -> Any: ...

    @classmethod
    def _option_groups(cls) -> tuple[tuple[Option, ...], ...]:
        """The option groups of the signature, in order."""
        return (cls.own_options,)

    @classmethod
    def _parts(cls) -> dict[str, dict[str, tuple[Option, ...]]]:
        """For each option that chooses a part (``optimizer``, ``distillation``): every part's own options, by name."""
        return {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._declare_options()

    @classmethod
    def _declare_options(cls) -> None:
        """Build :attr:`options`, the signature and the ``:param:`` lines of the docstring from the option groups."""
        cls.options = with_defaults([o for group in cls._option_groups() for o in group], cls.option_defaults)
        names = [o.name for o in cls.options]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise TypeError(f"{cls.__name__} declares the options {duplicates} more than once")
        parameters = [*_POSITIONAL, *(o.parameter() for o in cls.options), _INIT_SETUP]
        cls.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]  # read by inspect.signature
        intro = inspect.cleandoc(cls.__dict__.get("__doc__") or "").split("\n:param ")[0]
        cls.__doc__ = intro + "\n\n" + inspect.cleandoc(param_lines(cls.options)) if cls.options else intro

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        # Python's own error for a misspelt or model-free argument names neither the class nor what to pass instead.
        check_keyword_names([o.name for o in cls.options] + ["policy", "env", "_init_setup_model"], cls.__name__, kwargs)
        return super().__new__(cls)

    def _checked_arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The arguments given (by name) and every option's checked value. Every value is checked before anything is
        built, so a bad one fails at once with its own name (not later, in CEM or the ensemble, under another's)."""
        given = dict(inspect.signature(type(self)).bind(*args, **kwargs).arguments)
        values = resolve(self.options, {k: v for k, v in given.items() if k not in ("policy", "env", "_init_setup_model")})
        for option, parts in self._parts().items():
            check_part_options(option, values[option], parts, given, values)
        return given, values


__all__ = [
    "GENERAL_OPTIONS",
    "LEARNED",
    "PLANNING_OPTIONS",
    "DeclaredOptions",
    "Option",
    "check_part_options",
    "learning_rate_or_schedule",
    "param_lines",
    "resolve",
    "with_defaults",
]
