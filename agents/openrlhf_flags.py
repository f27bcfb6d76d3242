"""Check a ``train_ppo_ray`` command against the installed OpenRLHF's own argument definitions.

OpenRLHF builds its parser inside ``if __name__ == "__main__":`` of
``openrlhf/cli/train_ppo_ray.py``, and importing that module needs Ray and vLLM. So this module
reads the file, keeps the statements from ``parser = argparse.ArgumentParser()`` up to
``parser.parse_args()`` and runs only those: the parser is OpenRLHF's, not a copy.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import importlib.util
import os
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from types import CodeType
from typing import NoReturn

SUPPORTED_OPENRLHF = ">=0.11.2,<0.12"
TRAIN_MODULE = "openrlhf.cli.train_ppo_ray"


class FlagError(ValueError):
    """A command that OpenRLHF's parser rejects."""


def openrlhf_version() -> str | None:
    try:
        return metadata.version("openrlhf")
    except metadata.PackageNotFoundError:
        return None


def version_supported(version: str) -> bool:
    """Whether ``version`` lies in :data:`SUPPORTED_OPENRLHF`."""
    parts = tuple(int(p) for p in version.split(".")[:3] if p.isdigit())
    return (0, 11, 2) <= parts < (0, 12)


def train_script() -> Path:
    """Path of the installed ``openrlhf/cli/train_ppo_ray.py`` (found without importing it)."""
    spec = importlib.util.find_spec("openrlhf")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("openrlhf is not installed (pip install 'medr3-env[train]')")
    path = Path(next(iter(spec.submodule_search_locations))) / "cli" / "train_ppo_ray.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed openrlhf")
    return path


def _is_main_guard(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
    )


def _calls_parse_args(node: ast.stmt) -> bool:
    return any(
        isinstance(sub, ast.Attribute) and sub.attr in {"parse_args", "parse_known_args"}
        for sub in ast.walk(node)
    )


@lru_cache(maxsize=4)
def _parser_code(path: str) -> CodeType:
    tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=path)
    guard = next((node for node in tree.body if _is_main_guard(node)), None)
    if guard is None:
        raise FlagError(f"{path}: no __main__ block with the argument parser")
    body: list[ast.stmt] = []
    for node in guard.body:  # type: ignore[attr-defined]
        if _calls_parse_args(node):
            break
        body.append(node)
    module = ast.Module(body=body, type_ignores=[])
    return compile(module, path, "exec")


def openrlhf_parser(path: Path | None = None) -> argparse.ArgumentParser:
    """OpenRLHF's ``train_ppo_ray`` argument parser, built from the installed source."""
    script = str(path or train_script())
    namespace: dict[str, object] = {"argparse": argparse, "datetime": datetime.datetime, "os": os}
    exec(_parser_code(script), namespace)  # noqa: S102 - OpenRLHF's own parser definition
    parser = namespace.get("parser")
    if not isinstance(parser, argparse.ArgumentParser):
        raise FlagError(f"{script}: the __main__ block does not define `parser`")

    def error(message: str) -> NoReturn:
        raise FlagError(message)

    parser.error = error  # type: ignore[method-assign]
    return parser


def known_flags(parser: argparse.ArgumentParser | None = None) -> set[str]:
    """Every option string the parser accepts."""
    parser = parser or openrlhf_parser()
    return {option for action in parser._actions for option in action.option_strings}


def validate_train_args(args: list[str], parser: argparse.ArgumentParser | None = None) -> dict:
    """Parse ``args`` (everything after ``-m openrlhf.cli.train_ppo_ray``) with OpenRLHF's parser
    and return the parsed values; raises :class:`FlagError` naming what it rejects."""
    parser = parser or openrlhf_parser()
    flags = known_flags(parser)
    unknown = [
        a.split("=", 1)[0] for a in args if a.startswith("--") and a.split("=", 1)[0] not in flags
    ]
    if unknown:
        raise FlagError(f"OpenRLHF does not know {', '.join(unknown)}")
    return vars(parser.parse_args(args))
