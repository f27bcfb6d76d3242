"""What every CLI test expects of a failed command."""

from __future__ import annotations

from typer.testing import Result


def error_of(result: Result) -> str:
    """The one error line of a failed command: on stderr (exit status 2), nothing on stdout."""
    assert result.exit_code == 2, result.output
    assert result.stdout == "", result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]
