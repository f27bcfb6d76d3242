"""Duplicate document ids: ``on_duplicate="error" | "first" | "last"`` for every corpus loader,
with an id set whose memory stays bounded (it moves to an on-disk SQLite table when large)."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import get_args

from medr3_env.corpora.errors import CorpusFormatError
from medr3_env.corpora.jsonl import OnDuplicate, SkipCounter
from medr3_env.corpora.records import Document

logger = logging.getLogger(__name__)

MEMORY_IDS = 200_000
"""Ids kept in a Python dict before the set moves to disk (about 30 MB of memory)."""
BATCH = 2_048
_SQL_CHUNK = 500
ON_DUPLICATE: tuple[str, ...] = get_args(OnDuplicate)

Located = tuple[Document, str, int]
"""A document with the file and line it came from (for error messages)."""


class IdPositions:
    """``id -> position`` of the documents seen so far: a dict while small, then a SQLite table
    in a temporary directory (``$TMPDIR``), so memory does not grow with the corpus."""

    def __init__(self, memory_ids: int = MEMORY_IDS) -> None:
        self._memory: dict[str, int] = {}
        self._limit = memory_ids
        self._db: sqlite3.Connection | None = None
        self._dir: Path | None = None

    @property
    def on_disk(self) -> bool:
        return self._db is not None

    def _spill(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="medr3-ids-"))
        db = sqlite3.connect(self._dir / "ids.sqlite", isolation_level=None)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-65536"):
            db.execute(f"PRAGMA {pragma}")
        db.execute("CREATE TABLE ids (id TEXT PRIMARY KEY, pos INTEGER) WITHOUT ROWID")
        self._db = db
        self._write(self._memory.items())
        self._memory = {}

    def _write(self, items: Iterable[tuple[str, int]]) -> None:
        assert self._db is not None
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT INTO ids VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET pos = excluded.pos",
            items,
        )
        self._db.execute("COMMIT")

    def lookup(self, ids: Iterable[str]) -> dict[str, int]:
        """The recorded position of each of ``ids`` that has one."""
        if self._db is None:
            return {i: self._memory[i] for i in ids if i in self._memory}
        found: dict[str, int] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), _SQL_CHUNK):
            chunk = unique[start : start + _SQL_CHUNK]
            marks = ",".join("?" * len(chunk))
            found.update(self._db.execute(f"SELECT id, pos FROM ids WHERE id IN ({marks})", chunk))
        return found

    def put(self, items: dict[str, int]) -> None:
        """Record (or move) the positions of ``items``."""
        if self._db is None:
            self._memory.update(items)
            if len(self._memory) > self._limit:
                self._spill()
        else:
            self._write(items.items())

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def _duplicate_error(doc: Document, path: str, line: int, id_field: str) -> CorpusFormatError:
    return CorpusFormatError(
        f"duplicate document id {doc.id!r}; to keep one record per id pass "
        "on_duplicate='first' or 'last' (in a spec: ?on_duplicate=first)",
        path=path,
        line=line,
        field=id_field,
    )


def _note(stats: SkipCounter, doc_id: str) -> None:
    stats.duplicates += 1
    if stats.first_duplicate is None:
        stats.first_duplicate = doc_id


def _first_pass(
    records: Iterator[Located], on_duplicate: str, stats: SkipCounter, id_field: str
) -> Iterator[Document]:
    seen = IdPositions()
    position = 0
    try:
        while batch := list(islice(records, BATCH)):
            earlier = seen.lookup(doc.id for doc, _, _ in batch)
            new: dict[str, int] = {}
            for doc, path, line in batch:
                if doc.id in earlier or doc.id in new:
                    if on_duplicate == "error":
                        raise _duplicate_error(doc, path, line, id_field)
                    _note(stats, doc.id)
                    continue
                new[doc.id] = position
                position += 1
                yield doc
            seen.put(new)
    finally:
        seen.close()


def _keep_last(records: Callable[[], Iterator[Located]], stats: SkipCounter) -> Iterator[Document]:
    last = IdPositions()
    try:
        position = 0
        pass_one = records()
        while batch := list(islice(pass_one, BATCH)):
            earlier = last.lookup(doc.id for doc, _, _ in batch)
            latest: dict[str, int] = {}
            for doc, _, _ in batch:
                if doc.id in earlier or doc.id in latest:
                    _note(stats, doc.id)
                latest[doc.id] = position
                position += 1
            last.put(latest)
        position = 0
        # The second read meets the same malformed records: count them again, log them once.
        stats.quiet = True
        pass_two = records()
        while batch := list(islice(pass_two, BATCH)):
            final = last.lookup(doc.id for doc, _, _ in batch)
            for doc, _, _ in batch:
                if final.get(doc.id) == position:
                    yield doc
                position += 1
    finally:
        stats.quiet = False
        last.close()


def unique_documents(
    records: Callable[[], Iterator[Located]],
    *,
    on_duplicate: str,
    stats: SkipCounter,
    id_field: str = "id",
) -> Iterator[Document]:
    """The documents of ``records()`` with one record per id.

    ``error`` raises :class:`CorpusFormatError` at the first repeated id (naming file and line);
    ``first`` keeps the first record of each id; ``last`` keeps the last one (reading the
    records twice). Dropped records are counted in ``stats.duplicates``.
    """
    if on_duplicate not in ON_DUPLICATE:
        raise ValueError(f"on_duplicate must be one of {ON_DUPLICATE}, got {on_duplicate!r}")
    if on_duplicate == "last":
        yield from _keep_last(records, stats)
    else:
        yield from _first_pass(records(), on_duplicate, stats, id_field)
    if stats.duplicates:
        logger.warning(
            "%s",
            duplicates_message(stats.duplicates, on_duplicate, stats.first_duplicate),
            extra={DUPLICATES_LOG_MARK: True},
        )


DUPLICATES_LOG_MARK = "medr3_duplicates"
"""Attribute set on the log record of :func:`unique_documents`'s drop count, so a caller that
reports the count itself (``medr3 index build``) can filter the log line out."""


def duplicates_message(count: int, on_duplicate: str, example: str | None = None) -> str:
    """``dropped 3 records whose id was already used (on_duplicate=first: kept the first record
    of each id; e.g. id 'a')``: the one wording of a drop count, logged and printed."""
    kept = "last" if on_duplicate == "last" else "first"
    also = f"; e.g. id {example!r}" if example is not None else ""
    return (
        f"dropped {count:,} records whose id was already used "
        f"(on_duplicate={on_duplicate}: kept the {kept} record of each id{also})"
    )
