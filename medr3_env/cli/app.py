"""The shared typer application, console and error helper of the ``medr3`` command."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

console = Console()
DEBUG_ENV_VAR = "MEDR3_DEBUG"
"""Set to 1 to see the traceback of an expected error instead of its one-line message."""

EXPECTED_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, ImportError, KeyError)
"""What bad input, bad data, a damaged index, a missing extra or an unreachable server raise
(``SpecError``, ``CorpusFormatError``, ``IndexCorruptError``, ``FileNotFoundError``, pydantic's
``ValidationError``, ``SearchServerUnavailable`` ...): reported in one line, exit status 2."""


def one_line(exc: BaseException) -> str:
    """``exc`` as a single line (pydantic's multi-line messages joined with ``; ``)."""
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return "; ".join(lines) or type(exc).__name__


def fail(message: str) -> NoReturn:
    """Print ``message`` as an error and exit with status 2 (bad input)."""
    console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True, highlight=False)
    raise typer.Exit(code=2)


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
            console.print("[red]interrupted[/red]", highlight=False)
            raise typer.Exit(code=130) from None

    return run


class MedR3Typer(typer.Typer):
    """A Typer app whose commands report expected errors in one line with exit status 2."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
        register = super().command(*args, **kwargs)
        return lambda callback: register(_reporting_errors(callback))


app = MedR3Typer(help="MedR3: medical search-read-reason environments.", no_args_is_help=True)
