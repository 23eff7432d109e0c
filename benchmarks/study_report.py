"""
The results page of :mod:`benchmarks.study`: one section per study (its settings, table(s), learning-curve figure,
report sections, notes and commands), written from the studies' records.

Cells give the mean ± std over seeds of the evaluation return at a step, with the number of seeds when fewer than the
study's. The figure of a study is ``results_<study>.png`` beside the page: evaluation return against steps (mean over
seeds, band from min to max), or, for a study evaluated at one step only, every seed's return per entry.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmarks.study_runs import eval_at

if TYPE_CHECKING:
    from benchmarks.study import Entry, Study

Records = list[dict[str, Any]]


def fmt(values: Sequence[float], n_seeds: int) -> str:
    """``mean ± std`` of ``values`` (``-`` if none, the value alone if one), with the count when fewer than ``n_seeds``."""
    if not values:
        return "-"
    # One seed has no spread to show: a "± 0" would read as a measured one.
    text = f"{values[0]:.0f}" if len(values) == 1 else f"{np.mean(values):.0f} ± {np.std(values):.0f}"
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
    timed apart (``"12 min (to 10k)"``), so a longer run never averages with a shorter one."""
    if not runs:
        return "-"
    by_length: dict[int, list[float]] = {}
    for record in runs:
        if record["finished"]:
            by_length.setdefault(record["n_timesteps"], []).append(record["wall_s"])
    if not by_length:
        return "running"
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


def study_section(name: str, study: Study, records: Records, command: str) -> list[str]:
    """The page's section of one study."""
    lines = [f'<a id="{name}"></a>', "", f"## {study.title}", "", f"Study `{name}`. " + settings_line(study), ""]
    if study.intro:
        lines += [study.intro.strip(), ""]
    if records:
        lines += [f"![{name}: learning curves](results_{name}.png)", ""]
    for env in study.envs:
        if len(study.envs) > 1:
            lines += [f"### {env}", ""]
        lines += [*env_table(study, env, records), ""]
    for section in study.report_sections:
        text = section(study, records)
        lines += [*text, ""] if text else []
    if study.targets:
        lines += ["**Targets** (means over the seeds recorded so far):", ""]
        for text, check in study.targets:
            # A check returns None until the seeds have reached the steps it compares.
            outcome = check(records) if records else None
            verdict = "not measured yet" if outcome is None else f"{'met' if outcome[0] else 'not met'} ({outcome[1]})"
            lines.append(f"- {text}: {verdict}")
        lines.append("")
    if study.notes:
        lines += ["**What it shows.**", "", study.notes.strip(), ""]
    unfinished = [r for r in records if not r["finished"]]
    if unfinished:
        lines += ["Runs in progress (they resume from their last checkpoint when the study is run again):", ""]
        lines += [
            f"- {r['entry']} {r['env']} seed {r['seed']}: {r['timesteps']:,} of {r['n_timesteps']:,} steps" for r in unfinished
        ]
        lines.append("")
    seeds = " ".join(map(str, study.seeds))
    lines += [
        "To run the study (resumable: finished runs are skipped), then rewrite this section and its figure from the records:",
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
        "`benchmarks/study.py`, with the notes below. Cells give the mean ± std over seeds of the mean evaluation "
        "return at a step, with the number of seeds when fewer than the study's; wall time is the mean of the finished "
        "runs, plan ms / step the median over the runs (both measured on whatever machine ran them, often with other "
        "runs on its cores: compare them within a study). A study's runs and this page's section and figure regenerate "
        "with the commands at the end of each section; a rerun gives other episodes than the recorded ones (closed-loop "
        "control is chaotic and floating-point details change between code versions), so compare means over seeds.",
        "",
        *(f"- [{study.title}](#{name}) (`{name}`)" for name, study in studies.items()),
        "",
    ]
    for name, study in studies.items():
        lines += study_section(name, study, records.get(name, []), command)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("\n".join(lines).rstrip() + "\n")
    for name in plots:
        if records.get(name):
            plot_study(studies[name], records[name], output.parent / f"results_{name}.png")


#: The comments that enclose the headline table in the README, which ``write_headline`` rewrites.
HEADLINE_START = "<!-- headline: written by python -m benchmarks.study --report-only from docs/results/pets-cheetah.jsonl -->"
HEADLINE_END = "<!-- headline end -->"


def headline_table(
    study: Study, records: Records, entries: Sequence[str], steps: Sequence[int], paper: dict[str, str], link: str
) -> list[str]:
    """The README's headline: a few entries of one study at a few steps, with the paper's figure beside them.

    :param entries: the names of the study's entries to show, in order
    :param steps: the steps of the columns (an entry that does not run that far has an empty cell)
    :param paper: the paper's figure for each entry name
    :param link: where the full section is (a relative link from the README)
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
        "seeds)."
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
