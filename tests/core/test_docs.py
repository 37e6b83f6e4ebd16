"""The project's own docs: code cites ``docs/*.md#anchor`` that exist, never the product spec.

Pure file reading: no Django, no database. Anchors are GitHub's heading slugs (lowercase,
punctuation dropped, spaces to hyphens, ``-1``, ``-2`` … for repeated headings).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
CODE_DIRS = ("apps", "config", "templates", "tests", "bench")
SPEC_FREE_DIRS = ("apps", "config", "templates")
SUFFIXES = {".py", ".html", ".txt", ".sh", ".md", ".csv", ".toml", ".cfg"}
THIS_FILE = Path(__file__).resolve()

# docs/rating.md or docs/rating.md#late-usage, as cited in comments and docstrings
CODE_REFERENCE = re.compile(r"docs/([A-Za-z0-9_\-]+\.md)(?:#([A-Za-z0-9_\-]+))?")
# a Markdown link target inside docs/: (rating.md#late-usage), (#tax), (../README.md)
DOC_LINK = re.compile(r"\]\(([^)\s]+)\)")
SPEC_CITATION = re.compile(r"SPEC ?§|SPEC\.md")
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: ``"Late usage"`` → ``"late-usage"``."""
    text = re.sub(r"`([^`]*)`", r"\1", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def anchors(name: str) -> frozenset[str]:
    """Every heading anchor of ``docs/<name>``; empty when the file does not exist."""
    path = DOCS / name
    if not path.is_file():
        return frozenset()
    seen: dict[str, int] = {}
    out = set()
    in_fence = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        match = None if in_fence else HEADING.match(line)
        if match is None:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return frozenset(out)


def code_files(dirs: tuple[str, ...]) -> list[Path]:
    files = []
    for name in dirs:
        for path in sorted((ROOT / name).rglob("*")):
            if path.is_file() and path.suffix in SUFFIXES and "__pycache__" not in path.parts:
                files.append(path)
    return files


def references() -> list[tuple[str, str, str | None]]:
    """``(where, file name, anchor or None)`` of every ``docs/…`` citation in code and tests."""
    found = []
    for path in code_files(CODE_DIRS):
        if path.resolve() == THIS_FILE:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for match in CODE_REFERENCE.finditer(line):
                found.append((f"{path.relative_to(ROOT)}:{number}", match.group(1), match.group(2)))
    return found


def test_slug_follows_github():
    assert slug("Late usage") == "late-usage"
    assert slug("Embedded mode (make run)") == "embedded-mode-make-run"
    assert slug("The `usage` API: batch rules") == "the-usage-api-batch-rules"
    assert slug("Compute vouchers (算力券)") == "compute-vouchers-算力券"


def test_the_docs_exist():
    assert {"rating.md", "invoices.md", "vouchers.md", "settlements.md"} <= {
        p.name for p in DOCS.glob("*.md")
    }
    assert {"usage-api.md", "architecture.md", "operations.md"} <= {p.name for p in DOCS.glob("*.md")}
    assert "late-usage" in anchors("rating.md")


def test_code_cites_the_docs():
    cited = {(name, anchor) for _, name, anchor in references()}
    assert ("rating.md", "late-usage") in cited
    assert ("usage-api.md", "metering-agent") in cited


def test_every_docs_reference_in_code_points_at_a_file_and_heading():
    broken = []
    for where, name, anchor in references():
        if not (DOCS / name).is_file():
            broken.append(f"{where}: docs/{name} does not exist")
        elif anchor is not None and anchor not in anchors(name):
            broken.append(f"{where}: docs/{name} has no heading #{anchor}")
    assert broken == [], "\n".join(broken)


def test_links_between_docs_resolve():
    broken = []
    for path in sorted(DOCS.glob("*.md")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for target in DOC_LINK.findall(line):
                if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                    continue
                file_part, _, anchor = target.partition("#")
                linked = (path.parent / file_part).resolve() if file_part else path
                where = f"docs/{path.name}:{number}: {target}"
                if not linked.exists():
                    broken.append(f"{where}: no such file")
                elif anchor and linked.parent == DOCS and anchor not in anchors(linked.name):
                    broken.append(f"{where}: no such heading")
    assert broken == [], "\n".join(broken)


@pytest.mark.parametrize("directory", SPEC_FREE_DIRS)
def test_code_cites_the_docs_not_the_spec(directory):
    citing = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in code_files((directory,))
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if SPEC_CITATION.search(line)
    ]
    assert citing == [], "cite docs/*.md#anchor instead:\n" + "\n".join(citing)


def test_readme_links_every_doc():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(docs/([^)#\s]+)", readme))
    missing = sorted(p.name for p in DOCS.glob("*.md") if p.name not in linked)
    assert missing == [], f"README.md does not link: {missing}"
    assert all((DOCS / name).is_file() for name in linked), sorted(linked)
