"""Errors raised while reading corpora and question sets.

Each error names the file, the line and the field that is wrong, so a user can fix the data.
"""

from __future__ import annotations

from pathlib import Path


class SpecError(ValueError):
    """A corpus or dataset spec string could not be resolved (unknown format, missing file)."""


class CorpusFormatError(ValueError):
    """A record in a data file is malformed."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        where = []
        if self.path:
            where.append(self.path)
        if line is not None:
            where.append(f"line {line}")
        if field:
            where.append(f"field {field!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class EmptyCorpusError(CorpusFormatError):
    """A corpus yielded no documents (an empty file, or every record skipped): an index of it
    would leave every search empty, so it is refused instead of built."""
