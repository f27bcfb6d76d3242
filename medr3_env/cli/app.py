"""The shared typer application, console and error helper of the ``medr3`` command."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from medr3_env.validation import validation_line

if TYPE_CHECKING:
    from medr3_env.agents.stage_config import StageConfig

console = Console()
"""Command output: tables, hits, what was written."""
err_console = Console(stderr=True)
"""Errors, warnings and ``interrupted``: stderr, so ``medr3 search q --json > hits.json`` or a
pipe into ``jq`` never receives them as output."""
DEBUG_ENV_VAR = "MEDR3_DEBUG"
"""Set to 1 to see the traceback of an expected error instead of its one-line message."""

EXPECTED_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, ImportError, KeyError)
"""What bad input, bad data, a damaged index, a missing extra or an unreachable server raise
(``SpecError``, ``CorpusFormatError``, ``IndexCorruptError``, ``FileNotFoundError``, pydantic's
``ValidationError``, ``SearchServerUnavailable`` ...): reported in one line, exit status 2."""


def one_line(exc: BaseException) -> str:
    """``exc`` as a single line: a pydantic error as :func:`validation_line`, other multi-line
    messages joined with ``; ``."""
    if isinstance(exc, ValidationError):
        return validation_line(exc)
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return "; ".join(lines) or type(exc).__name__


def fail(message: str) -> NoReturn:
    """Print ``message`` as an error on stderr and exit with status 2 (bad input)."""
    err_console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True, highlight=False)
    raise typer.Exit(code=2)


STAGE_HELP = "Stage: 1|reasoning, 2|retrieval, 3|joint, or a stage YAML file."
DATASET_HELP = "Question-set spec (default: the stage file's `dataset`, else starter)."


def load_stage(spec: str) -> StageConfig:
    """The stage ``spec`` names (``1``-``3``, a stage name or a stage YAML file); anything else
    is a one-line error (``unknown stage 'nope'; use 1, 2, 3 or one of ...``), exit status 2."""
    from medr3_env.agents.stage_config import load_stage_config

    try:
        return load_stage_config(spec)
    except (ValueError, FileNotFoundError) as exc:
        fail(one_line(exc))


def _reporting_errors(callback: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except EXPECTED_ERRORS as exc:
            if os.environ.get(DEBUG_ENV_VAR):
                raise
            fail(one_line(exc))
        except KeyboardInterrupt:
            err_console.print("[red]interrupted[/red]", highlight=False)
            raise typer.Exit(code=130) from None

    return run


class MedR3Typer(typer.Typer):
    """A Typer app whose commands report expected errors in one line with exit status 2."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
        register = super().command(*args, **kwargs)
        return lambda callback: register(_reporting_errors(callback))


app = MedR3Typer(help="MedR3: medical search-read-reason environments.", no_args_is_help=True)
