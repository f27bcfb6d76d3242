"""The documentation site builds with ``mkdocs build --strict`` (warnings are errors), and what the
docs name (commands, options) exists."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_docs_build_strictly(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (the docs extra)")
    pytest.importorskip("material", reason="mkdocs-material is not installed (the docs extra)")
    pytest.importorskip("mkdocstrings_handlers.python", reason="mkdocstrings[python] is missing")
    site = tmp_path / "site"
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stderr[-4000:]
    print(f"mkdocs build --strict: {seconds:.1f}s")
    for page in ("index.html", "viewer/index.html", "corpora/index.html", "api/env/index.html"):
        assert (site / page).is_file(), page
    api = (site / "api" / "corpora" / "index.html").read_text(encoding="utf-8")
    assert 'id="medr3_env.corpora.records.QAItem"' in api  # the mapped package was documented
    assert (site / "assets" / "viewer.png").is_file()


DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_CODE = re.compile(r"```[^\n]*\n(.*?)```|`([^`\n]+)`", re.DOTALL)


def _documented_commands() -> list[tuple[str, str]]:
    """``(file, command line)`` for every ``medr3 ...`` in a code block or inline code span."""
    found = []
    for path in DOC_FILES:
        for block, inline in _CODE.findall(path.read_text(encoding="utf-8")):
            for line in (block or inline).splitlines():
                for match in re.finditer(r"(?:^|[\s(;&|])(medr3 [^`#;&|]*)", line):
                    found.append((path.name, match.group(1).strip()))
    return found


def test_every_cli_command_and_option_named_in_the_docs_exists():
    import typer

    from medr3_env.cli import app

    root = typer.main.get_command(app)
    documented = _documented_commands()
    assert len(documented) > 20  # the pattern still finds the docs' commands
    problems = []
    for source, line in documented:
        tokens = [t for t in re.split(r"[\s\[\]]+", line.removeprefix("medr3 ")) if t]
        if tokens and tokens[0].isupper():
            continue  # a placeholder such as `medr3 COMMAND --help`
        command = root  # typer's (vendored) click objects: groups have ``commands``
        while hasattr(command, "commands") and tokens and tokens[0] in command.commands:
            command = command.commands[tokens.pop(0)]
        if command is root:
            problems.append(f"{source}: `{line}` names no medr3 command")
            continue
        options = {opt for param in command.params for opt in param.opts + param.secondary_opts}
        for token in tokens:
            for flag in token.split("|"):
                flag = flag.split("=")[0].rstrip(",.:)")
                if re.fullmatch(r"--?[A-Za-z][\w-]*", flag) and flag not in options | {"--help"}:
                    problems.append(f"{source}: `{line}`: {command.name} has no option {flag}")
    assert not problems, "\n".join(problems)
