"""The reference page of every algorithm's options (``docs/options.md``), written from their declarations.

    python -m benchmarks.options_reference docs/options.md

``tests/test_arguments.py`` keeps the committed page equal to what this writes.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sb3_poplin.common.distillation import DISTILLATION_OPTIONS, DISTILLATIONS
from sb3_poplin.common.optimizers import OPTIMIZERS
from sb3_poplin.common.options import GENERAL_OPTIONS, PLANNING_OPTIONS


def _markdown_default(value: Any) -> str:
    if isinstance(value, float) and value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"`{value:g}`"
    return f"`{value!r}`"


def reference_page(algorithms: Sequence[type]) -> str:
    """The markdown reference of every algorithm's options (``docs/options.md``).

    :param algorithms: the algorithm classes, each with its ``options`` and ``option_groups``
    """
    lines = [
        "# Options",
        "",
        "Every constructor argument of the planning algorithms, with its default. Written by "
        "`python -m benchmarks.options_reference docs/options.md` from the declarations in "
        "`sb3_poplin/common/options.py`, the optimizers', the distillations' and the algorithms' own modules; "
        "a test keeps this page equal to the code. "
        "`help(POPLIN_P)` shows the same.",
        "",
        "| option | " + " | ".join(cls.__name__ for cls in algorithms) + " |",
        "|---|" + "---|" * len(algorithms),
    ]
    names: list[str] = []
    for cls in algorithms:
        names += [option.name for option in cls.options if option.name not in names]
    for name in names:
        cells = []
        for cls in algorithms:
            option = next((o for o in cls.options if o.name == name), None)
            cells.append("-" if option is None else _markdown_default(option.default))
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    lines += ["", "`-`: the algorithm does not take the option.", ""]
    for title, groups in (("Shared by every algorithm", (PLANNING_OPTIONS, GENERAL_OPTIONS)),
                          ("Distillation (POPLIN-A, POPLIN-P)", (DISTILLATION_OPTIONS,))):  # fmt: skip
        lines += [f"## {title}", ""]
        lines += [f"- `{o.name}` (`{o.annotation}`): {o.doc}." for group in groups for o in group]
        lines.append("")
    for kind, parts in (("optimizer", OPTIMIZERS), ("distillation", DISTILLATIONS)):
        for name, part in parts.items():
            if part.options:
                lines += [f'## `{kind}="{name}"` only', ""]
                lines += [f"- `{o.name}` (`{o.annotation}`): {o.doc}." for o in part.options]
                lines.append("")
    for cls in algorithms:
        own = cls.own_options
        if own:
            lines += [f"## {cls.__name__} only", ""]
            lines += [f"- `{o.name}` (`{o.annotation}`): {o.doc}." for o in own]
            lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m benchmarks.options_reference [PATH]``: print the reference page, or write it to PATH."""
    from sb3_poplin import PETS, POPLIN_A, POPLIN_P, RS

    parser = argparse.ArgumentParser(prog="python -m benchmarks.options_reference", description=main.__doc__)
    parser.add_argument("path", nargs="?", help="where to write the page (default: print it), e.g. docs/options.md")
    args = parser.parse_args(argv)
    page = reference_page([POPLIN_P, POPLIN_A, PETS, RS])
    if args.path:
        Path(args.path).write_text(page)
        print(f"wrote {args.path}")
    else:
        print(page)


if __name__ == "__main__":
    main()
