"""How the kept benchmarks write their measured sections into docs/performance.md (benchmarks/machine.py): a section
is replaced in place, a new one goes beside the same benchmark's others, and the hand-written text stays."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from benchmarks.machine import write_marked
from benchmarks.planner_throughput import write_report
from benchmarks.vs_mbrl_lib import write_section

PAGE = Path(__file__).resolve().parent.parent / "docs" / "performance.md"


def sections(text: str) -> list[str]:
    """The tags of the page's measured sections, in order."""
    return re.findall(r"<!-- benchmark:(\S+):start -->", text)


def test_rewriting_a_section_with_its_own_content_leaves_the_page_as_it_is(tmp_path: Path) -> None:
    page = tmp_path / "performance.md"
    shutil.copy(PAGE, page)
    text = page.read_text()
    for tag in sections(text):
        start, end = f"<!-- benchmark:{tag}:start -->", f"<!-- benchmark:{tag}:end -->"
        block = text[text.index(start) + len(start) : text.index(end)]
        write_marked(page, tag, block, group=tag.rsplit(":", 1)[0] + ":")
    assert page.read_text() == text


def test_new_sections_go_beside_their_benchmarks_others(tmp_path: Path) -> None:
    page = tmp_path / "performance.md"
    shutil.copy(PAGE, page)
    before = sections(page.read_text())
    # A new configuration of the mbrl-lib comparison: after its other sections, not at the end of the page.
    write_section(page, "### sb3-poplin vs mbrl-lib PETS: quick configuration (measured)\n\nA table.", "quick")
    # The planner benchmark on a GPU (a new heading, at the end) and a new section of the CPU run (under its heading).
    write_report(page, {"device": "cuda", "threads": 1}, {"Planner throughput": ("*conditions*", "GPU table.")})
    write_report(page, {"device": "cpu", "threads": 1}, {"New section": ("*conditions*", "CPU table.")})
    text = page.read_text()
    after = sections(text)
    last_mbrl = max(i for i, tag in enumerate(before) if tag.startswith("vs-mbrl-lib:"))
    last_cpu = max(i for i, tag in enumerate(before) if tag.startswith("cpu-threads=1:"))
    expected = [*before[: last_mbrl + 1], "vs-mbrl-lib:quick", *before[last_mbrl + 1 : last_cpu + 1]]
    expected += ["cpu-threads=1:new-section", *before[last_cpu + 1 :], "cuda-threads=1:planner-throughput"]
    assert after == expected
    assert text.index("## Measured: cuda, 1 torch thread(s)") < text.index(
        "<!-- benchmark:cuda-threads=1:planner-throughput:start"
    )
    assert text.count("## Measured: cpu, 1 torch thread(s)") == 1
    assert "### New section\n\n*conditions*\n\nCPU table.\n\n<!-- benchmark:cpu-threads=1:new-section:end -->" in text
    # Every hand-written heading is still there, in its place.
    headings = [line for line in PAGE.read_text().splitlines() if line.startswith("## ")]
    assert [line for line in text.splitlines() if line.startswith("## ")] == [
        *headings,
        "## Measured: cuda, 1 torch thread(s)",
    ]


def test_a_missing_page_is_created(tmp_path: Path) -> None:
    page = tmp_path / "new.md"
    write_marked(page, "x:y", "Body.", group="x:", heading="## Measured")
    assert (
        page.read_text()
        == "# Performance\n\n## Measured\n\n<!-- benchmark:x:y:start -->\n\nBody.\n\n<!-- benchmark:x:y:end -->\n"
    )
