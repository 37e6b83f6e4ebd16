"""The commands README.md and docs/ print work as printed: no bare ``python manage.py`` (it fails
without an activated virtualenv), and every ``.venv/bin/python manage.py <command>`` names a
management command that exists (docs/operations.md#management-commands)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMAND = re.compile(r"\.venv/bin/python manage\.py ([A-Za-z0-9_\-]+)")
BARE = re.compile(r"(?<![/\w.])python3? manage\.py")
FENCED_SH = re.compile(r"^```(?:sh|bash|shell)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", DOCUMENTS, ids=_name)
def test_no_command_needs_an_activated_virtualenv(path):
    bare = [
        f"{_name(path)}:{number}: {line.strip()}"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if BARE.search(line)
    ]
    assert bare == []


@pytest.mark.parametrize("path", DOCUMENTS, ids=_name)
def test_every_printed_manage_py_command_exists(path):
    known = set(get_commands())
    printed = COMMAND.findall(path.read_text())
    assert {name for name in printed if name not in known} == set()


def test_readme_prints_the_everyday_commands_with_the_project_python():
    readme = (ROOT / "README.md").read_text()
    printed = set(COMMAND.findall(readme))
    assert {"loaddemo", "runsuanli", "run_billing", "issue_invoices", "create_partner_key"} <= printed
    assert "`.venv/bin/python manage.py create_partner_key <provider-code>`" in readme
    # the shell blocks a reader copies, in README and docs, use the same form
    blocks = [b for p in DOCUMENTS for b in FENCED_SH.findall(p.read_text())]
    commands = [line.strip() for b in blocks for line in b.splitlines() if "manage.py" in line]
    assert commands, "no manage.py command in any sh block"
    assert all(c.startswith(".venv/bin/python manage.py ") for c in commands), commands
    assert set(get_commands()) >= {COMMAND.match(c).group(1) for c in commands}


def test_the_checks_catch_a_bare_command_and_an_unknown_one():
    assert BARE.search("python manage.py loaddemo")
    assert not BARE.search(".venv/bin/python manage.py loaddemo")
    assert COMMAND.findall(".venv/bin/python manage.py create_partner_keys bj") == ["create_partner_keys"]
    assert "create_partner_keys" not in get_commands()
