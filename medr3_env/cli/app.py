"""The shared typer application, console and error helper of the ``medr3`` command."""

from __future__ import annotations

import functools
import os
import statistics
from collections.abc import Callable, Sequence
from typing import Any, Literal, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

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


def run_episodes(env: Any, policy: Any, items: Sequence[Any], seed: int) -> list[Any]:
    """One recorded episode per item (``baseline.run_episode``), with a status line."""
    from medr3_env.baseline import run_episode

    records = []
    with console.status("running episodes…") as status:
        for number, item in enumerate(items, start=1):
            status.update(f"episode {number}/{len(items)}")
            records.append(run_episode(env, policy, item_id=item.id, seed=seed))
    return records


def reward_table(records: Sequence[Any], weights: dict[str, float], title: str) -> Table:
    """Mean accuracy, raw term values, total and turns: all episodes, then per answer type."""
    terms = list(weights)
    table = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        caption="mean raw value per term; total = weighted sum ("
        + ", ".join(f"{t}={w:g}" for t, w in weights.items())
        + ")",
    )
    for column in ("type", "n", "accuracy", *terms, "total", "turns"):
        justify: Literal["left", "right"] = "left" if column == "type" else "right"
        table.add_column(column, justify=justify, min_width=len(column))
    groups = {"all": list(records)}
    for kind in ("mcq", "yesno", "free"):
        subset = [r for r in records if r.item.answer_type == kind]
        if subset:
            groups[kind] = subset
    for name, group in groups.items():
        if not group:
            continue
        table.add_row(
            name,
            str(len(group)),
            f"{statistics.mean(r.correct for r in group):.3f}",
            *[f"{statistics.mean(r.reward_terms.get(t, 0.0) for r in group):.3f}" for t in terms],
            f"{statistics.mean(r.reward_total for r in group):.3f}",
            f"{statistics.mean(len(r.turns) for r in group):.1f}",
            end_section=name == "all",
        )
    return table
