"""
What a learning study is: its entries (:class:`Entry`, an algorithm and its settings) and the study that runs them over
seeds and reports them (:class:`Study`), with the shape of the records both are read with.

Import graph, each module importing only modules to its right: :mod:`benchmarks.study` (the command line) ->
:mod:`benchmarks.study_definitions` (every study) -> :mod:`benchmarks.study_report` (the page) ->
:mod:`benchmarks.study_types` (entries and studies) and :mod:`benchmarks.study_runs` (the runs and their records).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: the records of a study's runs, one dict per run (see :mod:`benchmarks.study_runs`)
Records = list[dict[str, Any]]


@dataclass(frozen=True)
class Entry:
    """One row of a study.

    :param name: the entry's name (a folder name)
    :param algo: zoo name of the algorithm (rl-zoo3's for SAC and TD3)
    :param label: the name in tables and plots
    :param n_timesteps: real steps of a run (for a study of checkpoint runs: its last checkpoint)
    :param hyperparams: the algorithm's settings: a complete zoo entry, or with ``base`` the settings changed from a
        packaged entry, or the constructor arguments of a checkpoint run; None for SAC and TD3, which take rl-zoo3's
        tuned entry (``zoo_env``) with ``learning_starts`` set to 1,000 (POPLIN's one random trial)
    :param zoo_env: the rl-zoo3 entry whose tuned hyperparameters SAC and TD3 take (default: the env's own, or its
        ``-v4`` entry for a ``-v5`` env: same dynamics)
    :param envs: the envs it runs on (default: every env of the study)
    :param eval_freq: steps between evaluations of a zoo run (default: the study's)
    :param base: ``"paper"`` or ``"cpu"``: ``hyperparams`` change sb3-poplin's packaged entry of the env
        (``sb3_poplin/hyperparams/[cpu/]<algo>.yml``) instead of being complete
    :param env_kwargs: keyword arguments of the env, for training and evaluation alike
    :param runs_of: ``"<study>/<entry>"`` whose runs are this entry's: not run again, its records shown here
    """

    name: str
    algo: str
    label: str
    n_timesteps: int
    hyperparams: dict[str, Any] | None = None
    zoo_env: str | None = None
    envs: tuple[str, ...] | None = None
    eval_freq: int | None = None
    base: str | None = None
    env_kwargs: dict[str, Any] | None = None
    runs_of: str | None = None

    @property
    def model_based(self) -> bool:
        return self.hyperparams is not None

    def envs_in(self, study: Study) -> tuple[str, ...]:
        return self.envs if self.envs is not None else study.envs

    def eval_freq_in(self, study: Study) -> int:
        return self.eval_freq if self.eval_freq is not None else study.eval_freq


#: a report section of a study: (study, its records) -> markdown lines
ReportSection = Callable[["Study", Records], list[str]]
#: a target of a study: its records -> whether it is met and the figures it compared, or None until measured
Target = Callable[[Records], "tuple[bool, str] | None"]


@dataclass(frozen=True)
class Study:
    """Entries run on one or more envs over the same seeds.

    :param envs: gymnasium ids
    :param entries: the rows, in the order of the tables
    :param title: the heading of the study's section of the page
    :param kind: ``"zoo"`` (resumable rl-zoo3 runs) or ``"checkpoints"`` (train once, evaluate at ``checkpoints``)
    :param eval_freq: steps between evaluations of zoo runs (deterministic, ``eval_episodes`` episodes; MPC for
        model-based runs)
    :param eval_episodes: episodes per evaluation
    :param checkpoints: the evaluation steps of checkpoint runs
    :param seeds: the seeds of a full study
    :param table_steps: the steps of the table's return columns (default: the checkpoints, or every entry's length)
    :param intro: what the study is, shown before its tables
    :param notes: what it found, shown after its tables; its figures of the records are templates such as
        ``{eval:pets@10000}``, filled in from the records whenever the page is written
        (:func:`benchmarks.study_report.render_prose`), so they cannot drift from them
    :param report_sections: more sections of the study's own (tables, comparisons), after its tables
    :param targets: ``(description, check)`` pairs the report evaluates on the means over seeds; a check returns
        whether the target is met and the figures it compared, or None until the seeds have reached its steps
    :param reference_curves: published curves drawn dashed beside the study's (entry name -> {step: return})
    """

    envs: tuple[str, ...]
    entries: tuple[Entry, ...]
    title: str
    kind: str = "zoo"
    eval_freq: int = 5000
    eval_episodes: int = 2
    checkpoints: tuple[int, ...] = ()
    seeds: tuple[int, ...] = (0, 1, 2)
    table_steps: tuple[int, ...] = ()
    intro: str = ""
    notes: str = ""
    report_sections: tuple[ReportSection, ...] = ()
    targets: tuple[tuple[str, Target], ...] = field(default=())
    reference_curves: dict[str, dict[int, float]] = field(default_factory=dict)
