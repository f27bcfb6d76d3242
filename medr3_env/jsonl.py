"""Reading JSON Lines files one object per line, with errors that name the file and the line.

A neutral module: the corpus loaders (:mod:`medr3_env.corpora.jsonl`), trajectory files
(:mod:`medr3_env.trajectory`) and training logs (:mod:`medr3_env.plotting`) all read through it,
and each wraps :class:`JsonlError` in its own error type where it needs one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class JsonlError(ValueError):
    """A line of a JSONL file is not UTF-8, not JSON, or not a JSON object.

    ``str(error)`` is ``"<path>, line <n>: <reason>"``; the parts are kept as attributes.
    """

    def __init__(self, reason: str, *, path: str | Path, line: int) -> None:
        self.reason = reason
        self.path = str(path)
        self.line = line
        super().__init__(f"{self.path}, line {line}: {reason}")


def iter_lines(path: str | Path) -> Iterator[tuple[int, dict[str, Any] | JsonlError]]:
    """``(line_number, object)`` for each non-blank line, or ``(line_number, error)`` for a line
    that cannot be read, so a caller can skip bad lines and go on. Line numbers start at 1."""
    path = Path(path)
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                # Without its line break, a line cut short reads "Unterminated string", not
                # "Invalid control character".
                value = json.loads(raw.decode("utf-8").rstrip("\r\n"))
            except UnicodeDecodeError as exc:
                reason = (
                    f"not UTF-8 ({exc.reason} at byte {exc.start}); re-encode the file as UTF-8"
                )
                yield number, JsonlError(reason, path=path, line=number)
            except json.JSONDecodeError as exc:
                where = "" if exc.msg.endswith(" at") else " at"
                reason = f"invalid JSON ({exc.msg}{where} column {exc.colno})"
                yield number, JsonlError(reason, path=path, line=number)
            else:
                if isinstance(value, dict):
                    yield number, value
                else:
                    reason = f"expected a JSON object, got {type(value).__name__}"
                    yield number, JsonlError(reason, path=path, line=number)


def read_objects(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line_number, object)`` for each non-blank line of a UTF-8 JSONL file.

    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
    ...     _ = f.write('{"a": 1}\\n\\n[2]\\n')
    >>> rows = read_objects(f.name)
    >>> next(rows)
    (1, {'a': 1})
    >>> next(rows)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    medr3_env.jsonl.JsonlError: ...jsonl, line 3: expected a JSON object, got list
    >>> os.unlink(f.name)

    Raises:
        JsonlError: at the first line that is not UTF-8, not JSON or not an object.
        OSError: the file cannot be opened.
    """
    for number, value in iter_lines(path):
        if isinstance(value, JsonlError):
            raise value
        yield number, value
