"""Line-by-line JSONL reading with precise errors and a skip-or-stop policy for bad lines."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from medr3_env.corpora.errors import CorpusFormatError

logger = logging.getLogger(__name__)

OnError = Literal["raise", "skip"]
OnDuplicate = Literal["error", "first", "last"]


class SkipCounter:
    """Counts the records a loader skipped or dropped, so nothing is dropped silently."""

    def __init__(self) -> None:
        self.skipped = 0
        self.first_error: str | None = None
        self.duplicates = 0
        """Records dropped because an earlier (``first``) or later (``last``) one has their id."""
        self.first_duplicate: str | None = None

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]

    def record(self, error: CorpusFormatError) -> None:
        self.skipped += 1
        if self.first_error is None:
            self.first_error = str(error)
        logger.warning("skipping malformed record: %s", error)


def read_jsonl(
    path: str | Path,
    *,
    on_error: OnError = "raise",
    counter: SkipCounter | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line of a UTF-8 JSONL file.

    Non-UTF-8 bytes and invalid JSON raise :class:`CorpusFormatError` naming the file and line,
    or are skipped and counted when ``on_error="skip"``.
    """
    path = Path(path)
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
                record = json.loads(text)
                if not isinstance(record, dict):
                    raise CorpusFormatError("expected a JSON object", path=path, line=number)
            except UnicodeDecodeError as exc:
                error = CorpusFormatError(
                    f"not UTF-8 ({exc.reason} at byte {exc.start}); re-encode the file as UTF-8",
                    path=path,
                    line=number,
                )
            except json.JSONDecodeError as exc:
                error = CorpusFormatError(f"invalid JSON ({exc.msg})", path=path, line=number)
            except CorpusFormatError as exc:
                error = exc
            else:
                yield number, record
                continue
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
