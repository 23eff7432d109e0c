"""
The results page of :mod:`benchmarks.study`: one section per study (its settings, table(s), learning-curve figure,
report sections, notes and commands), written from the studies' records.

Cells give the mean ± std over seeds of the evaluation return at a step, with the number of seeds when fewer than the
study's. The figure of a study is ``results_<study>.png`` beside the page: evaluation return against steps (mean over
seeds, band from min to max), or, for a study evaluated at one step only, every seed's return per entry. The figures
quoted in a study's prose are templates, filled in from the same records (:func:`render_prose`).

This module knows no particular study. Import graph, each module importing only modules to its right:
:mod:`benchmarks.study` (the command line) -> :mod:`benchmarks.study_definitions` (every study) ->
:mod:`benchmarks.study_report` (the page) -> :mod:`benchmarks.study_types` (entries and studies) and
:mod:`benchmarks.study_runs` (the runs and their records).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.study_runs import eval_at
from benchmarks.study_types import Entry, Records, Study, Target


def fmt(values: Sequence[float], n_seeds: int, decimals: int = 0) -> str:
    """``mean ± std`` of ``values`` (``-`` if none, the value alone if one), with the count when fewer than ``n_seeds``.

    :param decimals: of the mean and the std
    """
    if not values:
        return "-"
    # One seed has no spread to show: a "± 0" would read as a measured one.
    if len(values) == 1:
        text = f"{values[0]:.{decimals}f}"
    else:
        text = f"{np.mean(values):.{decimals}f} ± {np.std(values):.{decimals}f}"
    return text if len(values) >= n_seeds else f"{text} ({len(values)} of {n_seeds} seeds)"


def fmt_wall(seconds: float) -> str:
    """A run's wall time in the unit that reads best."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 600:
        return f"{seconds / 60:.1f} min"
    if seconds < 3 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# ----------------------------------------------------------------------------------------------------------------------
# Statistics of the records, shared by the studies' targets and sections and the prose's figures
# ----------------------------------------------------------------------------------------------------------------------
def mean_eval(records: Records, entry: str, step: int) -> float | None:
    """The mean over seeds of an entry's evaluation at ``step`` (None until a seed has reached it)."""
    values = [v for r in records if r["entry"] == entry and (v := eval_at(r, step)) is not None]
    return float(np.mean(values)) if values else None


def at_least(entry: str, step: int, bound: float) -> Target:
    """Target: the entry's mean at ``step`` is at least ``bound`` (None: not measured yet), with the mean."""

    def check(records: Records) -> tuple[bool, str] | None:
        value = mean_eval(records, entry, step)
        return None if value is None else (value >= bound, f"{value:.0f}")

    return check


def beats(entry: str, step: int, other: str, other_step: int, factor: float = 1.0) -> Target:
    """Target: the entry's mean at ``step`` is at least ``factor`` times the other's at ``other_step``, with both."""

    def check(records: Records) -> tuple[bool, str] | None:
        ours, theirs = mean_eval(records, entry, step), mean_eval(records, other, other_step)
        if ours is None or theirs is None:
            return None
        bar = f"{factor:g} x {theirs:.0f}" if factor != 1.0 else f"{theirs:.0f}"
        return (ours >= factor * theirs if theirs > 0 else ours >= theirs), f"{ours:.0f} against {bar}"

    return check


def curve_runs(records: Records, entry: str) -> Records:
    """The runs of an entry that make its mean curve: the finished ones, or every run with an evaluation while none has
    finished (a run still going would cut the curve at its last evaluation)."""
    runs = [r for r in records if r["entry"] == entry and r["evals"]]
    finished = [r for r in runs if r["finished"]]
    return finished or runs


def steps_to_reach(records: Records, entry: str, target: float) -> float | None:
    """The steps at which the mean evaluation curve of an entry's seeds first reaches ``target``, interpolated linearly
    between evaluations (None if it never does). The curve is taken over the entry's finished runs (all of its runs
    while none has finished), at the steps every one of them has evaluated."""
    runs = curve_runs(records, entry)
    if not runs:
        return None
    steps = sorted(set.intersection(*({t for t, _ in r["evals"]} for r in runs)))
    previous: tuple[float, float] | None = None
    for step in steps:
        value = float(np.mean([eval_at(r, step) for r in runs]))
        if value >= target:
            if previous is None or value == previous[1]:
                return float(step)
            # Linear between the last evaluation below the target and this one.
            return previous[0] + (step - previous[0]) * (target - previous[1]) / (value - previous[1])
        previous = (float(step), value)
    return None


# ----------------------------------------------------------------------------------------------------------------------
# A study's tables, figure and settings
# ----------------------------------------------------------------------------------------------------------------------
def steps_of(study: Study) -> list[int]:
    """The steps of a study's table columns."""
    if study.table_steps:
        return list(study.table_steps)
    if study.checkpoints:
        return list(study.checkpoints)
    return sorted({entry.n_timesteps for entry in study.entries})


def rows(study: Study, env: str, records: Records) -> list[tuple[Entry, Records]]:
    """The entries of ``study`` that run on ``env``, each with its runs there, in the study's order."""
    return [
        (entry, [r for r in records if r["entry"] == entry.name and r["env"] == env])
        for entry in study.entries
        if env in entry.envs_in(study)
    ]


def env_table(study: Study, env: str, records: Records) -> list[str]:
    """The table of one env: returns at the study's steps, wall time, planning time and fitting share per entry."""
    n_seeds = len(study.seeds)
    steps = steps_of(study)
    table = rows(study, env, records)
    runs = [r for _, entry_runs in table for r in entry_runs]
    policy = any(r.get("policy_evals") for r in runs)
    fitting = any(r.get("fit_s") is not None for r in runs)
    mpc = "MPC" if policy else "return"
    header = [f"{mpc} at {s / 1000:g}k" for s in steps]
    header += [f"policy at {s / 1000:g}k" for s in steps] if policy else []
    header += ["wall time per run", "plan ms / step"]
    header += ["model fitting / distillation, share of wall time"] if fitting else []
    lines = ["| entry | " + " | ".join(header) + " |", "|---" * (len(header) + 1) + "|"]
    for entry, entry_runs in table:
        cells = [fmt([v for r in entry_runs if (v := eval_at(r, s)) is not None], n_seeds) for s in steps]
        if policy:
            cells += [fmt([v for r in entry_runs if (v := eval_at(r, s, "policy_evals")) is not None], n_seeds) for s in steps]
        cells.append(wall_cell(entry.n_timesteps, entry_runs))
        plan = [r["plan_ms"] for r in entry_runs if r.get("plan_ms") is not None]
        cells.append(f"{np.median(plan):.0f}" if plan else "-")
        if fitting:
            timed = [r for r in entry_runs if r.get("fit_s") is not None and r["wall_s"] > 0]
            fit = f"{100 * np.mean([r['fit_s'] / r['wall_s'] for r in timed]):.0f}%" if timed else "-"
            distilled = [r["distill_s"] / r["wall_s"] for r in timed if r.get("distill_s") is not None]
            cells.append(f"{fit} / {100 * np.mean(distilled):.0f}%" if distilled else fit)
        lines.append(f"| {entry.label} | " + " | ".join(cells) + " |")
    missing = [entry.label for entry, entry_runs in table if not entry_runs]
    if missing:
        lines += ["", "No runs recorded yet: " + "; ".join(missing) + "."]
    return lines


def wall_cell(n_timesteps: int, runs: Records) -> str:
    """The mean wall time of the runs that finished the entry's steps; runs finished when the entry was shorter are
    timed apart (``"12 min (to 10k)"``), so a longer run never averages with a shorter one; ``"not finished"`` when none
    finished."""
    if not runs:
        return "-"
    by_length: dict[int, list[float]] = {}
    for record in runs:
        if record["finished"]:
            by_length.setdefault(record["n_timesteps"], []).append(record["wall_s"])
    if not by_length:
        return "not finished"  # running, or stopped: the page's list of unfinished runs says how far each got
    return ", ".join(
        fmt_wall(float(np.mean(walls))) + ("" if length >= n_timesteps else f" (to {length / 1000:g}k)")
        for length, walls in sorted(by_length.items(), reverse=True)
    )


def plot_study(study: Study, records: Records, path: Path) -> None:
    """The study's figure: one panel per env (see the module doc)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = [env for env in study.envs if any(r["env"] == env for r in records)] or list(study.envs)
    one_step = len({t for r in records for t, _ in r.get("evals") or []}) <= 1
    height = max(3.6, 0.3 * max(len(rows(study, env, records)) for env in envs))
    # Dot plots side by side; curves one above the other, each with its legend on the right.
    shape, size = ((1, len(envs)), (6.4 * len(envs) + 2.6, height)) if one_step else ((len(envs), 1), (11.5, 4.2 * len(envs)))
    fig, axes = plt.subplots(*shape, figsize=size, squeeze=False)
    tab20 = plt.get_cmap("tab20").colors
    for ax, env in zip(axes.flat, envs):
        ax.set_prop_cycle(color=[*tab20[::2], *tab20[1::2]])  # 20 colours, the 10 darker ones first
        table = [(entry, [r for r in runs if r.get("evals")]) for entry, runs in rows(study, env, records)]
        if one_step:
            labels = [entry.label for entry, _ in table]
            for y, (_, runs) in enumerate(table):
                values = [float(r["evals"][-1][1]) for r in runs]
                if values:
                    ax.scatter(values, [y] * len(values), s=14, color="tab:blue", alpha=0.6)
                    ax.scatter([np.mean(values)], [y], s=60, marker="|", color="black")
            ax.set_yticks(range(len(labels)), labels, fontsize=8)
            ax.invert_yaxis()
            ax.set_xlabel("evaluation return (dots: seeds, bar: mean)")
            ax.set_title(env, fontsize=10)
        else:
            for entry, runs in table:
                if not runs:
                    continue
                steps = sorted({t for r in runs for t, _ in r["evals"]})
                xs, means, lows, highs = [], [], [], []
                for step in steps:
                    values = [v for r in runs if (v := eval_at(r, step)) is not None]
                    if len(values) < len(runs):
                        continue  # plot only steps every seed has reached
                    xs.append(step)
                    means.append(np.mean(values))
                    lows.append(np.min(values))
                    highs.append(np.max(values))
                if not xs:
                    continue
                (line,) = ax.plot(xs, means, marker="o", markersize=3, label=f"{entry.label} ({len(runs)} seeds)")
                ax.fill_between(xs, lows, highs, color=line.get_color(), alpha=0.15)
            colours = {line.get_label().split(" (")[0]: line.get_color() for line in ax.get_lines()}
            for name, curve in study.reference_curves.items():
                # Drawn dashed in the colour of the entry it is the published counterpart of.
                label = next(e.label for e in study.entries if e.name == name)
                steps = sorted(curve)
                ax.plot(steps, [curve[t] for t in steps], linestyle="--", marker="x", markersize=4, alpha=0.7,
                        color=colours.get(label), label=f"{label}, paper (read off its figure)")  # fmt: skip
            ax.set_xlabel("environment steps")
            ax.set_ylabel("evaluation return")
            ax.set_title(f"{env}: mean over seeds, band from min to max", fontsize=10)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


def settings_line(study: Study) -> str:
    """What every run of the study shares, from its definition."""
    seeds = ", ".join(map(str, study.seeds))
    if study.kind == "checkpoints":
        steps = " and ".join(f"{s:,}" for s in study.checkpoints)
        evaluation = (
            f"each run trains once and is evaluated at {steps} steps, {study.eval_episodes} episodes of MPC control "
            "(planning with the learned model) and, where the algorithm has one, of policy control (the distilled "
            "network alone), on episodes seeded apart from training"
        )
    else:
        freqs = sorted({entry.eval_freq_in(study) for entry in study.entries})
        evaluation = (
            f"each run is a resumable rl-zoo3 train run evaluated every {' or '.join(f'{f:,}' for f in freqs)} steps "
            f"({study.eval_episodes} deterministic episodes of `EvalCallback`; MPC for the model-based entries)"
        )
    return f"*Env{'s' if len(study.envs) > 1 else ''}: {', '.join(study.envs)}; seeds {seeds}; {evaluation}.*"


# ----------------------------------------------------------------------------------------------------------------------
# The figures of the studies' prose, computed from the records
# ----------------------------------------------------------------------------------------------------------------------
#: a figure in a study's prose: ``{kind:reference}``, or ``{kind.N:reference}`` with N decimals (see
#: :func:`render_prose`); any ``{word:...}`` is one, so that a misspelt kind is refused instead of printed as it is
TEMPLATE = re.compile(r"\{([A-Za-z][\w-]*)(?:\.(\d))?:([^{}]*)\}")
#: what a figure is computed from: ``[study/]entry[+entry...][@step[..step]][ on env][ seed n]``
REFERENCE = re.compile(
    r"(?:(?P<study>[\w.-]+)/)?(?P<entries>[\w.+-]+?)(?:@(?P<first>\d+)(?:\.\.(?P<last>\d+))?)?"
    r"(?: on (?P<env>\S+))?(?: seed (?P<seed>\d+))?"
)
#: the series of a record a figure reads: the evaluations (MPC for the model-based entries), the distilled policy's
#: evaluations, and the training episodes (``[step, return]`` each)
MEASURES = {"eval": "evals", "policy": "policy_evals", "train": "episodes"}
#: the statistics a measure's kind names after a dash (``eval``, ``eval-mean``, ..., ``train-range``): those of
#: ``ONE_STEP`` read one step, the others one step or a range of steps
ONE_STEP = ("", "mean", "values", "means")
STATISTICS = (*ONE_STEP, "seeds", "range", "highest", "lowest", "window")
#: the kinds that compare two references, ``{kind:<reference> vs <reference>}``, with their default decimals
PAIRS = {"ratio": 2, "welch": 1, "effect": 1, "reach": 1, "reach-ratio": 1}
#: the kinds about the runs' time, whose reference names no step
TIMES = ("fit", "fit-range", "wall-range", "fit-seconds", "wall-seconds")
#: every kind, for the error that refuses an unknown one
KINDS = (
    *(f"{measure}-{statistic}" if statistic else measure for measure in MEASURES for statistic in STATISTICS),
    *PAIRS,
    *TIMES,
    "unrecorded",
)


class TemplateError(ValueError):
    """A template of a study's prose that names no figure of the records."""


@dataclass(frozen=True)
class Reference:
    """The runs and steps a template's figure is computed from.

    :param study: the study whose records are read (default: the study whose prose it is)
    :param entries: one entry's name or several, whose runs are read together
    :param steps: the first and the last step read (the same for one step), or None where the kind reads no step
    :param env: the env of the runs (needed where the entries have runs on several)
    :param seed: the one seed read (default: every seed recorded)
    """

    study: str
    entries: tuple[str, ...]
    steps: tuple[int, int] | None
    env: str | None
    seed: int | None

    def step(self) -> int:
        """The step of a reference that reads one step (refused for a range of steps or none)."""
        if self.steps is None or self.steps[0] != self.steps[1]:
            raise TemplateError("give one step: <entry>@<step>")
        return self.steps[0]


def _number(value: float, decimals: int) -> str:
    """A value of a run (or a range's end) as the notes write them, with a thousands separator."""
    return f"{value:,.{decimals}f}"


def _listed(texts: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " and " + texts[-1]


def _span(low: str, high: str, between: str) -> str:
    """A range, or its one value where both ends read the same."""
    return low if low == high else f"{low}{between}{high}"


def _hours(seconds: float) -> str:
    """``5 h 22 min``."""
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60} min"


class Prose:
    """The figures of one study's prose, computed from every study's records (a note may quote another study's runs).

    :param study: the study whose prose it is: the default study of its references
    :param studies: every study, to check the entries a reference names
    :param records: every study's records, as the tables read them
    """

    def __init__(self, study: str, studies: Mapping[str, Study], records: Mapping[str, Records]) -> None:
        self.study = study
        self.studies = studies
        self.records = records

    def render(self, text: str) -> str:
        """``text`` with every template replaced by its figure."""
        return TEMPLATE.sub(self.figure, text)

    def figure(self, match: re.Match[str]) -> str:
        """The figure of one template (:func:`render_prose` lists the kinds)."""
        kind, digits, argument = match.group(1), match.group(2), match.group(3).strip()
        decimals = None if digits is None else int(digits)
        try:
            if kind == "unrecorded":
                return argument
            measure, _, statistic = kind.partition("-")
            if measure in MEASURES and statistic in STATISTICS:
                return self.measured(MEASURES[measure], statistic, self.reference(argument), decimals or 0)
            if kind in PAIRS:
                return self.compared(kind, argument, PAIRS[kind] if decimals is None else decimals)
            if kind in TIMES:
                return self.timed(kind, self.reference(argument), decimals or 0)
            raise TemplateError(f"unknown kind {kind!r}; the kinds are {', '.join(KINDS)}")
        except TemplateError as error:
            raise TemplateError(f"{match.group(0)} in the prose of {self.study}: {error}") from None

    def reference(self, text: str) -> Reference:
        """The reference written ``text``, its study and entries checked against the studies' definitions."""
        parsed = REFERENCE.fullmatch(text)
        if parsed is None:
            raise TemplateError("a reference reads [study/]entry[+entry...][@step[..step]][ on env][ seed n]")
        study = parsed["study"] or self.study
        if study not in self.studies:
            raise TemplateError(f"no study {study!r}")
        entries = tuple(parsed["entries"].split("+"))
        known = {e.name for e in self.studies[study].entries}
        unknown = [name for name in entries if name not in known]
        if unknown:
            raise TemplateError(f"no entry {unknown[0]!r} in {study}")
        first = None if parsed["first"] is None else int(parsed["first"])
        last = first if parsed["last"] is None else int(parsed["last"])
        steps = None if first is None or last is None else (first, last)
        seed = None if parsed["seed"] is None else int(parsed["seed"])
        return Reference(study, entries, steps, parsed["env"], seed)

    def runs(self, reference: Reference) -> Records:
        """The runs a reference names, by entry in its order, then by seed."""
        runs = [
            r
            for r in self.records.get(reference.study, [])
            if r["entry"] in reference.entries
            and (reference.env is None or r["env"] == reference.env)
            and (reference.seed is None or r["seed"] == reference.seed)
        ]
        envs = sorted({r["env"] for r in runs})
        if not runs:
            raise TemplateError("no runs recorded")
        if len(envs) > 1:
            # Their figures would mix envs whose returns are on other scales.
            raise TemplateError(f"the runs are on {', '.join(envs)}: name one with ' on <env>'")
        return sorted(runs, key=lambda r: (reference.entries.index(r["entry"]), r["seed"]))

    def values(self, key: str, reference: Reference) -> list[tuple[dict[str, Any], list[float]]]:
        """Each run's values of the series ``key`` at the reference's steps, for the runs that have got there."""
        if reference.steps is None:
            raise TemplateError("give the step: <entry>@<step>")
        first, last = reference.steps
        per_run = [(r, [float(v) for t, v in r.get(key) or [] if first <= t <= last]) for r in self.runs(reference)]
        per_run = [(r, values) for r, values in per_run if values]
        if not per_run:
            where = f"step {first}" if first == last else f"steps {first} to {last}"
            raise TemplateError(f"no run has {key} at {where}")
        return per_run

    def measured(self, key: str, statistic: str, reference: Reference, decimals: int) -> str:
        """A statistic of the values of one series (see :func:`render_prose`)."""
        if statistic in ONE_STEP:
            reference.step()
        per_run = self.values(key, reference)
        ones = [values[0] for _, values in per_run]
        if statistic == "":
            # Written as the tables write a cell, so that a note quotes the table as it reads.
            return fmt(ones, len(ones), decimals)
        if statistic == "mean":
            return f"{np.mean(ones):.{decimals}f}"
        if statistic == "values":
            return _listed([_number(v, decimals) for v in ones])
        if statistic == "seeds":
            return str(len(per_run))  # one run per seed of an entry on an env
        if statistic in ("highest", "lowest"):
            pick = max if statistic == "highest" else min
            return _listed([_number(pick(values), decimals) for _, values in per_run])
        if statistic == "window":
            # Each run's mean over the steps, then as a cell: the training episodes of a window of steps are several
            # per seed where an evaluation point is one (of 2 episodes), so their means are the steadier comparison.
            return fmt([float(np.mean(values)) for _, values in per_run], len(per_run), decimals)
        if statistic == "range":
            every = [v for _, values in per_run for v in values]
            return _span(_number(min(every), decimals), _number(max(every), decimals), " to ")
        # means: the range of the entries' means
        by_entry: dict[str, list[float]] = {}
        for (run, _), value in zip(per_run, ones):
            by_entry.setdefault(run["entry"], []).append(value)
        means = [float(np.mean(values)) for values in by_entry.values()]
        return _span(_number(min(means), decimals), _number(max(means), decimals), " to ")

    def compared(self, kind: str, argument: str, decimals: int) -> str:
        """A figure comparing two references' evaluations (see :func:`render_prose`)."""
        sides = argument.split(" vs ")
        if len(sides) != 2:
            raise TemplateError(f"{kind} compares two references: <reference> vs <reference>")
        ours, theirs = (self.reference(side.strip()) for side in sides)
        step = theirs.step()
        theirs_values = [values[0] for _, values in self.values("evals", theirs)]
        if kind in ("reach", "reach-ratio"):
            if ours.steps is not None or len(ours.entries) > 1:
                raise TemplateError(f"the first reference of {kind} is one entry, without a step")
            reached = steps_to_reach(self.runs(ours), ours.entries[0], float(np.mean(theirs_values)))
            if reached is None:
                raise TemplateError(f"{ours.entries[0]} does not reach the mean of {theirs.entries[0]} at {step}")
            return f"{reached / 1000:.{decimals}f}k" if kind == "reach" else f"{reached / step:.{decimals}f}"
        ours.step()
        ours_values = [values[0] for _, values in self.values("evals", ours)]
        if kind == "ratio":
            if np.mean(theirs_values) == 0:
                raise TemplateError("the second mean is 0")
            return f"{np.mean(ours_values) / np.mean(theirs_values):.{decimals}f}"
        if min(len(ours_values), len(theirs_values)) < 2:
            raise TemplateError(f"{kind} needs two seeds or more on each side")
        difference = float(np.mean(ours_values) - np.mean(theirs_values))
        if kind == "welch":
            # The test's sample variances (ddof 1).
            scale = np.sqrt(sum(np.var(values, ddof=1) / len(values) for values in (ours_values, theirs_values)))
        else:
            # effect: in the standard deviations the page's cells show (ddof 0), pooled, so a reader can redo it from them
            scale = np.sqrt((np.var(ours_values) + np.var(theirs_values)) / 2)
        if scale == 0:
            raise TemplateError("the seeds of both references agree exactly: no spread to compare with")
        return f"{difference / scale:.{decimals}f}"

    def timed(self, kind: str, reference: Reference, decimals: int) -> str:
        """The share of the runs' wall time spent fitting (mean or range), the range of their wall times, or each run's
        seconds of either."""
        if reference.steps is not None:
            raise TemplateError(f"{kind} reads whole runs: give no step")
        runs = self.runs(reference)
        if kind in ("fit-seconds", "wall-seconds"):
            key = "fit_s" if kind == "fit-seconds" else "wall_s"
            seconds = [r[key] for r in runs if r.get(key) is not None]
            if not seconds:
                raise TemplateError(f"no run recorded {key}")
            return _listed([_number(value, decimals) for value in seconds])
        if kind == "wall-range":
            walls = [r["wall_s"] for r in runs if r["finished"]]
            if not walls:
                raise TemplateError("no finished run")
            low, high = min(walls), max(walls)
            if high < 3 * 3600:  # minutes up to 3 h, as the tables' wall times (fmt_wall)
                return _span(f"{low / 60:.0f}", f"{high / 60:.0f}", "-") + " min"
            return _span(_hours(low), _hours(high), " to ")
        shares = [100 * r["fit_s"] / r["wall_s"] for r in runs if r.get("fit_s") is not None and r["wall_s"] > 0]
        if not shares:
            raise TemplateError("no run recorded its fitting time")
        if kind == "fit":
            return f"{np.mean(shares):.{decimals}f}%"
        return _span(f"{min(shares):.{decimals}f}", f"{max(shares):.{decimals}f}", "-") + "%"


def render_prose(text: str, study: str, studies: Mapping[str, Study], records: Mapping[str, Records]) -> str:
    """A study's prose (its intro or its notes) with each template replaced by its figure, computed from the records
    the tables read, so that the prose cannot drift from them.

    A template is ``{kind:reference}``, or ``{kind.N:reference}`` for N decimals (default 0, or the kind's own), and a
    reference ``[study/]entry[+entry...][@step[..step]][ on env][ seed n]``: the runs of the entry (or of several
    together), of another study where one is named, on one env (needed where the runs are on several), of one seed;
    read at one step, or at every step from the first to the last. The kinds:

    * ``eval``, ``policy``, ``train``: the return of the evaluations (MPC for a model-based entry), of the distilled
      policy's evaluations, or of the training episode that ended at the step: mean ± std over the seeds that got
      there, as a table's cell writes it (the value alone for one seed). With a suffix, of the same values, a run's
      own values and the ends of a range written with a thousands separator, as the notes write them: ``-mean`` the
      mean alone; ``-values`` each run's value (``a, b and c``); ``-seeds`` how many seeds got there; ``-range`` the
      lowest to the highest value; ``-highest`` and ``-lowest`` each run's; ``-means`` the lowest to the highest of
      the entries' means; ``-window`` each run's mean over the steps (a range), then mean ± std over the runs as a
      cell.
    * ``ratio``, ``welch``, ``effect`` (``<reference> vs <reference>``, one step each): the ratio of the two mean
      evaluations, Welch's t of their difference, and their difference in pooled standard deviations (the cells').
    * ``reach``, ``reach-ratio`` (``<entry> vs <reference>``): the steps after which the entry's mean evaluation curve
      reaches the other's mean (:func:`steps_to_reach`), as ``17.7k``, or as a multiple of the other's step.
    * ``fit``, ``fit-range`` (no step): the share of the wall time the runs spent fitting the model, their mean or
      range; ``wall-range``: the range of the finished runs' wall times; ``fit-seconds``, ``wall-seconds``: each run's
      seconds of fitting, of wall time.
    * ``unrecorded``: its text as it is: a figure that is in no record (the paper's; sweeps that kept their means
      only), typed on purpose.

    :param text: the prose
    :param study: the study whose prose it is, whose records a reference reads unless it names another study
    :param studies: every study
    :param records: every study's records (an entry sharing another study's runs included)
    :raises TemplateError: naming the template, for an unknown kind, study, entry or seed, runs on several envs with
        none named, or a step no run has got to
    """
    return Prose(study, studies, records).render(text)


# ----------------------------------------------------------------------------------------------------------------------
# The page, and the README's headline
# ----------------------------------------------------------------------------------------------------------------------
def study_section(name: str, studies: Mapping[str, Study], records: Mapping[str, Records], command: str) -> list[str]:
    """The page's section of one study.

    :param studies: every study (a figure of its prose may quote another's runs)
    :param records: every study's records
    """
    study = studies[name]
    own = records.get(name, [])
    lines = [f'<a id="{name}"></a>', "", f"## {study.title}", "", f"Study `{name}`. " + settings_line(study), ""]
    if study.intro:
        lines += [render_prose(study.intro, name, studies, records).strip(), ""]
    if own:
        lines += [f"![{name}: learning curves](results_{name}.png)", ""]
    for env in study.envs:
        if len(study.envs) > 1:
            lines += [f"### {env}", ""]
        lines += [*env_table(study, env, own), ""]
    for section in study.report_sections:
        text = section(study, own)
        lines += [*text, ""] if text else []
    if study.targets:
        lines += ["**Targets** (means over the seeds recorded so far):", ""]
        for text, check in study.targets:
            # A check returns None until the seeds have reached the steps it compares.
            outcome = check(own) if own else None
            verdict = "not measured yet" if outcome is None else f"{'met' if outcome[0] else 'not met'} ({outcome[1]})"
            lines.append(f"- {text}: {verdict}")
        lines.append("")
    if study.notes:
        lines += ["**What it shows.**", "", render_prose(study.notes, name, studies, records).strip(), ""]
    unfinished = [r for r in own if not r["finished"]]
    if unfinished:
        lines += ["Runs in progress (they resume from their last checkpoint when the study is run again):", ""]
        lines += [
            f"- {r['entry']} {r['env']} seed {r['seed']}: {r['timesteps']:,} of {r['n_timesteps']:,} steps" for r in unfinished
        ]
        lines.append("")
    seeds = " ".join(map(str, study.seeds))
    lines += [
        "To run the study (resumable: finished runs are skipped, and a run another study process is running now is left to "
        "it), then rewrite this section and its figure from the records:",
        "",
        "```bash",
        f"{command} {name} --seeds {seeds}",
        f"{command} --report-only {name}",
        "```",
        "",
    ]
    return lines


def write_page(
    studies: dict[str, Study], records: dict[str, Records], output: Path, plots: Sequence[str], command: str
) -> None:
    """Write the whole results page, and the figures of the studies named in ``plots``.

    :param studies: every study, in the page's order
    :param records: the records of each study (entries sharing another study's runs included)
    :param output: the page; the figures are written beside it
    :param command: the runner's command (``python -m benchmarks.study``)
    """
    lines = [
        "# Results",
        "",
        f"Written by `{command} --report-only all` from the studies' records: `docs/results/<study>.jsonl`, one line "
        "per run, committed (the run folders, under `logs/`, are not). The studies are defined in "
        "`benchmarks/study_definitions.py`, with the notes below. Cells give the mean ± std over seeds of the mean evaluation "
        "return at a step, with the number of seeds when fewer than the study's; wall time is the mean of the finished "
        "runs, plan ms / step the median over the runs (both measured on whatever machine ran them, often with other "
        "runs on its cores, and the machines differ between an entry's seeds and between entries: the planners' and "
        "optimizers' speeds side by side are in docs/performance.md). A study's runs and this page's section and figure "
        "regenerate with the commands at the end of each section; a rerun gives other episodes than the recorded ones "
        "(closed-loop control is chaotic and floating-point details change between code versions), so compare means over "
        "seeds.",
        "",
        *(f"- [{study.title}](#{name}) (`{name}`)" for name, study in studies.items()),
        "",
    ]
    for name in studies:
        lines += study_section(name, studies, records, command)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("\n".join(lines).rstrip() + "\n")
    for name in plots:
        if records.get(name):
            plot_study(studies[name], records[name], output.parent / f"results_{name}.png")


#: The comments that enclose the headline table in the README, which ``write_headline`` rewrites.
HEADLINE_START = "<!-- headline: written by python -m benchmarks.study --report-only from docs/results/pets-cheetah.jsonl -->"
HEADLINE_END = "<!-- headline end -->"


def headline_table(
    study: Study,
    records: Records,
    entries: Sequence[str],
    steps: Sequence[int],
    paper: dict[str, str],
    link: str,
    note: str = "",
) -> list[str]:
    """The README's headline: a few entries of one study at a few steps, with the paper's figure beside them.

    :param entries: the names of the study's entries to show, in order
    :param steps: the steps of the columns (an entry that does not run that far has an empty cell)
    :param paper: the paper's figure for each entry name ("" where it has none)
    :param link: where the full section is (a relative link from the README)
    :param note: what the caption says besides the conditions common to every headline
    """
    (env,) = study.envs
    lines = [
        f"| {env.split('/')[-1]} | " + " | ".join(f"{s / 1000:g}k steps" for s in steps) + " | paper, 50k steps |",
        "|---" * (len(steps) + 2) + "|",
    ]
    partial = False  # some cell has fewer seeds than the study
    for name in entries:
        entry = next(e for e in study.entries if e.name == name)
        runs = [r for r in records if r["entry"] == name and r["env"] == env]
        # None for a column past the entry's steps (an empty cell, not "-")
        shown = [[v for r in runs if (v := eval_at(r, s)) is not None] if s <= entry.n_timesteps else None for s in steps]
        cells = ["" if values is None else fmt(values, len(study.seeds)) for values in shown]
        partial = partial or any(values and len(values) < len(study.seeds) for values in shown)
        lines.append(f"| {entry.label} | " + " | ".join(cells) + f" | {paper[name]} |")
    caption = (
        f"Evaluation return, mean ± std over {len(study.seeds)} seeds"
        + (" (fewer where marked: the study is not complete)" if partial else "")
        + ", "
        f"from [the results page]({link}), which gives the conditions and the curves: the model-based entries plan at a "
        "CPU budget (1/16.7 of the paper's model evaluations per step); SAC and TD3 take rl-zoo3's tuned HalfCheetah "
        "hyperparameters. The paper's column is its Table 1 (the mean of the last 3 training episodes at 50k steps, 4 "
        "seeds)." + (f" {note}" if note else "")
    )
    return [*lines, "", *textwrap.wrap(caption, 120, break_on_hyphens=False)]


def write_headline(readme: Path, lines: Sequence[str]) -> None:
    """Replace the README's headline block (between ``HEADLINE_START`` and ``HEADLINE_END``) with ``lines``."""
    text = readme.read_text()
    start, end = text.find(HEADLINE_START), text.find(HEADLINE_END)
    if start < 0 or end < start:
        raise ValueError(f"{readme} has no headline block: put {HEADLINE_START!r} and {HEADLINE_END!r} where it goes")
    block = "\n".join([HEADLINE_START, "", *lines, "", HEADLINE_END])
    readme.write_text(text[:start] + block + text[end + len(HEADLINE_END) :])
