"""What the benchmarks share: the machine they ran on (the CPU model, the load average) and how they write their
measured sections into the hand-written pages (docs/performance.md)."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux, else what the platform module knows)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as ``"a / b / c"``."""
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def write_labelled(path: Path, group: str, label: str, block: str, heading: str) -> None:
    """:func:`write_marked` for a section named by a free-text label (a model, a run): its tag is ``group`` and the
    label's letters and digits.

    :param group: the benchmark's tag prefix, e.g. ``search-strength:``
    """
    slug = "".join(c if c.isalnum() else "-" for c in label.lower()).strip("-")
    write_marked(path, f"{group}{slug}", block, group, heading)


def write_marked(path: Path, tag: str, block: str, group: str, heading: str | None = None) -> None:
    """Write ``block`` between the markers ``<!-- benchmark:<tag>:start -->`` and ``<!-- benchmark:<tag>:end -->`` of
    ``path``, replacing what is between them; the hand-written text around is kept.

    A section not in the page yet goes after the last section whose tag starts with ``group`` (the same benchmark's,
    so its sections stay together), else after ``heading`` (added at the end of the page when missing), else at the end.

    :param path: the page (created with a title if missing)
    :param tag: the section's tag, e.g. ``cpu-threads=1:planner-throughput``
    :param block: the section's markdown
    :param group: the tag prefix of the benchmark's sections, e.g. ``cpu-threads=1:``
    :param heading: the heading the benchmark's sections go under, e.g. ``## Measured: cpu, 1 torch thread(s)``
    """
    start, end = f"<!-- benchmark:{tag}:start -->", f"<!-- benchmark:{tag}:end -->"
    marked = f"{start}\n\n{block.strip()}\n\n{end}"
    text = path.read_text() if path.exists() else "# Performance\n"
    if start in text and end in text:
        text = text[: text.index(start)] + marked + text[text.index(end) + len(end) :]
    else:
        ends = [m.end() for m in re.finditer(rf"<!-- benchmark:{re.escape(group)}[^\n]*?:end -->", text)]
        if ends:
            at = ends[-1]
        elif heading is not None and heading in text:
            at = text.index(heading) + len(heading)
        else:
            text = text.rstrip() + (f"\n\n{heading}" if heading is not None else "")
            at = len(text)
        text = text[:at].rstrip() + "\n\n" + marked + "\n\n" + text[at:].lstrip()
    path.write_text(text.rstrip() + "\n")
