"""JSONL reading for corpus loaders: :mod:`medr3_env.jsonl` lines as :class:`CorpusFormatError`
with a skip-or-stop policy for bad lines, plus field and fingerprint helpers."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from medr3_env.corpora.errors import CorpusFormatError
from medr3_env.jsonl import JsonlError, iter_lines

logger = logging.getLogger(__name__)

OnError = Literal["raise", "skip"]
OnDuplicate = Literal["error", "first", "last"]


class SkipCounter:
    """Counts the records a loader skipped or dropped, so nothing is dropped silently.

    A corpus exposes its counter as ``Corpus.stats``; the index manifest stores both counts
    (``skipped_records``, ``duplicate_ids``) and ``medr3 index build`` prints them.
    """

    def __init__(self) -> None:
        self.skipped = 0
        """Malformed records skipped (``on_error="skip"``); each is also logged as a warning."""
        self.duplicates = 0
        """Records dropped because an earlier (``first``) or later (``last``) one has their id."""
        self.first_duplicate: str | None = None
        """The first id found twice, for the log message."""
        self.quiet = False
        """Count without logging: set while a loader re-reads records it has logged already
        (the second pass of ``on_duplicate="last"``)."""

    def reset(self) -> None:
        """Zero the counts before a new pass over the files."""
        self.__init__()  # type: ignore[misc]

    def record(self, error: CorpusFormatError) -> None:
        """Count and log one skipped record."""
        self.skipped += 1
        if not self.quiet:
            logger.warning("skipping malformed record: %s", error)


def read_jsonl(
    path: str | Path,
    *,
    on_error: OnError = "raise",
    counter: SkipCounter | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line of a UTF-8 JSONL file
    (:func:`medr3_env.jsonl.iter_lines`).

    Non-UTF-8 bytes, invalid JSON and lines that are not objects raise :class:`CorpusFormatError`
    naming the file and line, or are skipped and counted when ``on_error="skip"``.
    """
    for number, value in iter_lines(path):
        if not isinstance(value, JsonlError):
            yield number, value
            continue
        error = CorpusFormatError(value.reason, path=value.path, line=number)
        if on_error == "skip" and counter is not None:
            counter.record(error)
            continue
        raise error


def require_str(record: dict[str, Any], field: str, path: Path | str, line: int) -> str:
    """Return ``record[field]`` as a string or raise naming the file, line and field."""
    value = record.get(field)
    if value is None:
        raise CorpusFormatError("missing", path=path, line=line, field=field)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise CorpusFormatError(
            f"expected a string, got {type(value).__name__}", path=path, line=line, field=field
        )
    return value


def file_chunks(path: str | Path, size: int = 1 << 20) -> Iterator[bytes]:
    """The bytes of a file in chunks, for fingerprints."""
    with Path(path).open("rb") as handle:
        while chunk := handle.read(size):
            yield chunk


def read_json(path: Path) -> Any:
    """A whole JSON file; bytes that are not UTF-8 or invalid JSON raise CorpusFormatError."""
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CorpusFormatError(
            f"not UTF-8 ({exc.reason} at byte {exc.start})", path=path
        ) from None
    except json.JSONDecodeError as exc:
        raise CorpusFormatError(f"invalid JSON ({exc.msg})", path=path, line=exc.lineno) from None
