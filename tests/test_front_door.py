"""The README is a front door (issue 20): at most 200 lines; the two commands a newcomer runs, as CI runs them;
every `python -m MODULE` it names answers `--help`; and every relative link of the README and of docs/ leads to a
file (and heading) that exists. Fast: no emulators, only each command's `--help`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from stackconfig.files import ROOT

README = ROOT / "README.md"
MAX_README_LINES = 200
MODULE = re.compile(r"python -m ([A-Za-z_][\w.]*)")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
EXTERNAL = ("http://", "https://", "mailto:")


def pages() -> list[Path]:
    return [README, *sorted((ROOT / "docs").rglob("*.md"))]


def prose(text: str) -> str:
    """Markdown without its fenced blocks (transcripts may hold brackets that are not links)."""
    return FENCE.sub("", text)


def anchor(heading: str) -> str:
    """GitHub's id for a heading: lower case, punctuation dropped but hyphens, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {anchor(line.lstrip("#")) for line in prose(page.read_text()).splitlines() if re.match(r"#{1,6} ", line)}


def broken_links(page: Path) -> list[str]:
    """The relative links of `page` whose file, or heading in it, does not exist."""
    broken = []
    for target in LINK.findall(prose(page.read_text())):
        if target.startswith(EXTERNAL):
            continue
        path, _, fragment = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.is_file():
            broken.append(f"{target}: no such file")
        elif fragment and linked.suffix == ".md" and fragment not in anchors(linked):
            where = linked.relative_to(ROOT) if linked.is_relative_to(ROOT) else linked.name
            broken.append(f"{target}: no heading #{fragment} in {where}")
    return broken


def test_the_readme_is_at_most_200_lines() -> None:
    lines = len(README.read_text().splitlines())
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines: move reference material into docs/"


def test_the_readme_gives_the_two_commands_and_ci_runs_the_one_it_says() -> None:
    text = README.read_text()
    assert "make lab" in text and "make test" in text
    assert "`.ci/run` runs exactly `make test`" in text
    ci = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert ci[-1] == "make test", ci


def test_every_module_the_readme_names_answers_help() -> None:
    modules = sorted(set(MODULE.findall(README.read_text())))
    assert {"bench.lab", "bench.local", "bench.benchmarks", "ops.capacity"} <= set(modules), modules
    # All at once: each is a fresh interpreter importing boto3 and friends.
    running = {
        m: subprocess.Popen(
            [sys.executable, "-m", m, "--help"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for m in modules
    }
    failed = []
    for module, process in running.items():
        out, err = process.communicate(timeout=180)
        if process.returncode != 0 or "usage:" not in out:
            failed.append(f"python -m {module} --help: exit {process.returncode}\n{err[-800:]}")
    assert not failed, "\n".join(failed)


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_at_a_file_that_exists(page: Path) -> None:
    assert not broken_links(page), f"{page.relative_to(ROOT)}: " + "; ".join(broken_links(page))


def test_a_link_to_a_missing_file_or_heading_is_found(tmp_path: Path) -> None:
    (tmp_path / "there.md").write_text("# A heading, with `code`\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md) [ok](there.md#a-heading-with-code) [web](https://example.com)\n"
        "[gone](missing.md) [no heading](there.md#nowhere)\n```\n[in a transcript](ignored.md)\n```\n"
    )
    assert broken_links(page) == ["missing.md: no such file", "there.md#nowhere: no heading #nowhere in there.md"]
