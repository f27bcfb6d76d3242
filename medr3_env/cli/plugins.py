"""``medr3 plugins``: every registered reward term, search backend, corpus format and entity
extractor, with where it came from (built in, an installed package's entry point, or runtime)."""

from __future__ import annotations

import json

import typer
from rich import box
from rich.table import Table

from medr3_env.cli.app import app, console, fail
from medr3_env.plugins import KINDS, registry


@app.command("plugins")
def plugins(
    kind: str = typer.Option(None, "--kind", help=f"Only one kind: {', '.join(KINDS)}."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List registered plug-ins by kind."""
    if kind is not None and kind not in KINDS:
        fail(f"unknown plug-in kind {kind!r}; kinds: {', '.join(KINDS)}")
    registries = registry.by_kind()
    found = {k: registries[k].info() for k in ([kind] if kind else KINDS)}
    if as_json:
        payload = {k: [info.model_dump() for info in entries] for k, entries in found.items()}
        typer.echo(json.dumps(payload, indent=2))
        return
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("kind", "name", "origin", "source", "description"):
        table.add_column(column, overflow="fold")
    for k, entries in found.items():
        for info in entries:
            origin = f"{info.origin} ({info.distribution})" if info.distribution else info.origin
            table.add_row(k, info.name, origin, info.source, info.description)
    console.print(table)
