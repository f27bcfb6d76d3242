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


_DEFINED_IN_DOCS = [  # a plug-in a page defines as an example, with the name it registers
    re.compile(r"register_(?:reward|format|extractor)\(\s*\"(\w+)\""),
    re.compile(r"^(\w+) = \"[\w.]+:\w+\"$", re.MULTILINE),  # an entry point in a pyproject
]
_SPEC = r"\"?'?([a-z][a-z0-9]*):(?:PATH|NAME|/(?!/)|\$|[A-Z]\w*/)"
_NAMED = {  # how a page names a registered plug-in of each kind
    "backends": [re.compile(r"(?:backend=\"|--backend )([a-z]\w*)")],
    "extractors": [
        re.compile(r"(?:entity_extractor=\"|--entity-extractor )([a-z]\w*)"),
        re.compile(r"\b(lexicon|spacy):[\w+]+"),
    ],
    "formats": [  # a spec given as a corpus or dataset, or a whole code span that is one
        re.compile(
            r"(?:corpus=|dataset=|--corpus |--dataset |load_corpus\(|load_questions\()" + _SPEC
        ),
        re.compile(r"^" + _SPEC, re.MULTILINE),
    ],
    "rewards": [
        re.compile(r"reward_weights=\{([^}]*)\}"),
        re.compile(r"reward_terms\"?\]?\[\"(\w+)\"\]"),
    ],
}


def _doc_code() -> dict[str, str]:
    """The code (blocks and inline spans) of every page, by file name."""
    return {
        path.name: "\n".join(
            block or inline for block, inline in _CODE.findall(path.read_text(encoding="utf-8"))
        )
        for path in DOC_FILES
    }


def _named_plugins() -> dict[str, set[tuple[str, str]]]:
    """``kind -> {(file, name)}`` for every plug-in the docs' code names as a registered one."""
    found: dict[str, set[tuple[str, str]]] = {kind: set() for kind in _NAMED}
    for source, code in _doc_code().items():
        for kind, patterns in _NAMED.items():
            for pattern in patterns:
                for match in pattern.finditer(code):
                    names = (
                        re.findall(r"\"(\w+)\":", match.group(1))
                        if pattern.pattern.startswith("reward_weights")
                        else [match.group(1)]
                    )
                    found[kind] |= {(source, name) for name in names}
    return found


def test_every_plugin_the_docs_name_is_registered():
    from medr3_env.plugins import registry

    defined = {
        name for code in _doc_code().values() for p in _DEFINED_IN_DOCS for name in p.findall(code)
    }
    named = _named_plugins()
    # The patterns still find what the docs name (so this test cannot pass by matching nothing).
    assert {"whoosh", "tantivy", "remote"} <= {name for _, name in named["backends"]}
    assert {"none", "lexicon"} <= {name for _, name in named["extractors"]}
    assert {"medrag", "pubmedqa", "mirage", "hf"} <= {name for _, name in named["formats"]}
    assert {"answer", "retrieval"} <= {name for _, name in named["rewards"]}
    problems = [
        f"{source}: {kind} {name!r} is not registered (registered: {', '.join(reg.names())})"
        for kind, reg in registry.by_kind().items()
        for source, name in sorted(named[kind])
        if name not in reg and name not in defined
    ]
    assert not problems, "\n".join(problems)


def test_every_builtin_plugin_is_documented():
    from medr3_env.plugins import registry

    text = "\n".join(path.read_text(encoding="utf-8") for path in DOC_FILES)
    missing = [
        f"{kind} {info.name!r}"
        for kind, reg in registry.by_kind().items()
        for info in reg.info()
        if info.origin == "builtin"
        and not re.search(rf"`{re.escape(info.name)}(?:[`:\[(]| \()", text)
    ]
    assert not missing, "built-in plug-ins no page names in code: " + ", ".join(missing)


def test_every_guard_helper_the_rewards_page_names_exists():
    from medr3_env.rewards import guards

    text = (ROOT / "docs" / "rewards.md").read_text(encoding="utf-8")
    named = set(re.findall(r"(?<![/\w])guards\.([a-z_]+)\(", text))
    helpers = text[text.index("| helper |") :].split("\n\n")[0]  # the guard helper table
    for first_column in re.findall(r"^\| (`[a-z_]+\(.*?) \|", helpers, re.MULTILINE):
        named |= set(re.findall(r"`([a-z_]+)\(", first_column))
    named -= {"answer_score", "is_correct"}  # in medr3_env.rewards.answer, checked below
    assert {"fold", "clean", "copied", "distinct_search_count"} <= named
    assert not sorted(n for n in named if not callable(getattr(guards, n, None)))
    from medr3_env.rewards import answer

    assert callable(answer.answer_score) and callable(answer.is_correct)
