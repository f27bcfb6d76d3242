"""Inspection commands: ``replay``, ``view`` and ``plot``."""

from __future__ import annotations

from pathlib import Path

import typer

from medr3_env.cli.app import app, console, fail, one_line


def _read_records(path: Path) -> list:
    from medr3_env.trajectory import read_trajectories

    if not path.is_file():
        fail(f"{path}: file not found")
    try:
        records = list(read_trajectories(path))
    except (ValueError, UnicodeDecodeError) as exc:
        fail(one_line(exc))
    if not records:
        fail(f"{path}: no trajectory records (the file is empty)")
    return records


@app.command()
def replay(
    path: Path = typer.Argument(..., help="Trajectory JSONL (from `medr3 demo` or a recorder)."),
    check: bool = typer.Option(
        False, "--check", help="Exit with status 1 when any episode does not replay identically."
    ),
    tolerance: float = typer.Option(
        1e-9, min=0.0, help="Absolute tolerance for scores and rewards."
    ),
    max_report: int = typer.Option(20, min=0, help="Print at most this many mismatches."),
) -> None:
    """Re-run the recorded actions and compare observations and rewards with the record."""
    from medr3_env.replay import replay_records

    records = _read_records(path)
    failed = 0
    shown = 0
    changed: set[str] = set()
    with console.status("replaying…") as status:
        for result in replay_records(records, tolerance=tolerance):
            status.update(f"episode {result.episode}/{len(records)}")
            if result.setup_error:  # this process lacks what the run had: not a mismatch
                fail(f"episode {result.episode} ({result.item_id}): {result.error}")
            if result.ok:
                continue
            failed += 1
            changed.update(m.field for m in result.mismatches)
            lines = (
                [f"episode {result.episode} ({result.item_id}): {result.error}"]
                if result.error
                else [m.describe() for m in result.mismatches]
            )
            for line in lines:
                if shown < max_report:
                    console.print(f"[red]mismatch[/red] {line}", soft_wrap=True, highlight=False)
                shown += 1
    if shown > max_report:
        console.print(f"… and {shown - max_report} more")
    if failed:
        console.print(f"{failed} of {len(records)} episodes differ from {path}", highlight=False)
        moved = sorted(changed & {"corpus_fingerprint", "entity_extractor"})
        if moved:
            console.print(
                f"note: {' and '.join(moved)} changed since the file was written: the corpus or "
                "the entity lexicon is not the one the episodes ran with",
                highlight=False,
            )
        if check:
            raise typer.Exit(code=1)
    else:
        console.print(f"all {len(records)} episodes replay identically", highlight=False)


@app.command()
def view(
    path: Path = typer.Argument(..., help="Trajectory JSONL."),
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="HTML file to write."),
    title: str | None = typer.Option(None, help="Page title (default: the file name)."),
    no_entities: bool = typer.Option(
        False, "--no-entities", help="Skip entity highlighting (faster for huge files)."
    ),
) -> None:
    """Write one self-contained HTML page to browse and filter the episodes."""
    from medr3_env.viewer import render_html

    records = _read_records(path)
    with console.status(f"rendering {len(records)} episodes…"):
        try:
            written = render_html(
                records, out, title=title or path.name, highlight_entities=not no_entities
            )
        except (ValueError, OSError) as exc:
            fail(one_line(exc))
    size = written.stat().st_size / 1e6
    console.print(f"viewer: {written} ({len(records)} episodes, {size:.1f} MB)", highlight=False)


@app.command()
def plot(
    logs: list[Path] = typer.Argument(..., help="Trajectory or metrics JSONL files."),
    out: Path = typer.Option(Path("plots"), "--out", "-o", help="Output folder."),
    window: int = typer.Option(
        0, min=0, help="Running-mean window for trajectory files (0: about a tenth of the run)."
    ),
) -> None:
    """Plot reward curves per term (PNG and SVG) from trajectory or training-metrics logs."""
    from medr3_env.plotting import PlotError, plot_logs

    try:
        written = plot_logs(logs, out, window=window or None)
    except PlotError as exc:
        fail(one_line(exc))
    for file in written:
        console.print(f"wrote {file}", highlight=False)
