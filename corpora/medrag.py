"""MedRAG chunk JSONL (``id``, ``title``, ``content``, ``contents``): the layout of the MedRAG
PubMed, StatPearls, Textbooks and Wikipedia corpora."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medr3_env.corpora.dedupe import Located, unique_documents
from medr3_env.corpora.errors import CorpusFormatError
from medr3_env.corpora.jsonl import (
    OnDuplicate,
    OnError,
    SkipCounter,
    file_chunks,
    read_jsonl,
    require_str,
)
from medr3_env.corpora.records import Corpus, Document


def _document(record: dict, path: Path, line: int) -> Document:
    doc_id = require_str(record, "id", path, line).strip()
    if not doc_id:
        raise CorpusFormatError("empty id", path=path, line=line, field="id")
    title = record.get("title") or ""
    if not isinstance(title, str):
        raise CorpusFormatError("expected a string", path=path, line=line, field="title")
    content = record.get("content")
    if content is None and "contents" not in record:
        found = ", ".join(sorted(map(str, record))) or "none"
        raise CorpusFormatError(
            f"missing: the text goes in 'content' (or MedRAG's joined 'contents'); fields: {found}",
            path=path,
            line=line,
            field="content",
        )
    if content is None:
        # Some MedRAG dumps only keep the joined ``contents`` field.
        content = require_str(record, "contents", path, line)
    elif not isinstance(content, str):
        raise CorpusFormatError("expected a string", path=path, line=line, field="content")
    if not content.strip():
        raise CorpusFormatError("empty text", path=path, line=line, field="content")
    annotations = record.get("annotations") or ()
    if not isinstance(annotations, (list, tuple)) or not all(
        isinstance(a, str) for a in annotations
    ):
        raise CorpusFormatError(
            "expected a list of strings", path=path, line=line, field="annotations"
        )
    metadata = record.get("metadata") or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(v, (str, int, float, bool)) for v in metadata.values()
    ):
        raise CorpusFormatError(
            "expected an object of strings, numbers or booleans",
            path=path,
            line=line,
            field="metadata",
        )
    if len(doc_id) > 512:
        raise CorpusFormatError("id longer than 512 characters", path=path, line=line, field="id")
    return Document(
        id=doc_id,
        title=title,
        content=content,
        annotations=tuple(annotations),
        metadata=metadata,
    )


def iter_medrag(
    path: str | Path, *, on_error: OnError = "raise", counter: SkipCounter | None = None
) -> Iterator[Located]:
    """Stream ``(document, file, line)`` from one MedRAG chunk file (ids not yet de-duplicated)."""
    path = Path(path)
    counter = counter or SkipCounter()
    for line, record in read_jsonl(path, on_error=on_error, counter=counter):
        try:
            doc = _document(record, path, line)
        except CorpusFormatError as error:
            if on_error == "skip":
                counter.record(error)
                continue
            raise
        yield doc, str(path), line


def load_medrag(
    path: str | Path,
    *,
    on_error: OnError = "raise",
    on_duplicate: OnDuplicate = "error",
    name: str | None = None,
    subset: str | None = None,
) -> Corpus:
    """A streaming :class:`Corpus` over a MedRAG chunk JSONL file (or a folder of them).

    ``on_error="skip"`` skips and counts malformed lines; ``on_duplicate`` says what a repeated
    id does: ``"error"`` (default) raises, ``"first"``/``"last"`` keep one record and count the
    others (ids are compared across all files of a folder)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"MedRAG corpus not found: {path}")
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f"no *.jsonl files in {path}")
    stats = SkipCounter()

    def located() -> Iterator[Located]:
        stats.skipped = 0  # a second pass ("last") counts again
        for file in files:
            yield from iter_medrag(file, on_error=on_error, counter=stats)

    def documents() -> Iterator[Document]:
        stats.reset()
        yield from unique_documents(located, on_duplicate=on_duplicate, stats=stats)

    def fingerprint() -> Iterator[bytes]:
        for file in files:
            yield file.name.encode()
            yield from file_chunks(file)

    return LineCountedCorpus(
        name or f"medrag:{path}",
        documents,
        fingerprint_source=fingerprint,
        stats=stats,
        files=files,
    )


class LineCountedCorpus(Corpus):
    """A file-backed corpus whose ``size_hint`` (lines in its files, for a progress ETA) is
    counted the first time it is asked for: seconds per 10 GB, never at load time."""

    def __init__(self, *args: Any, files: list[Path], **kwargs: Any) -> None:
        self._files = files
        self._lines: int | None = None
        super().__init__(*args, **kwargs)

    @property  # type: ignore[override]
    def size_hint(self) -> int | None:
        if self._lines is None:
            self._lines = sum(
                chunk.count(b"\n") for file in self._files for chunk in file_chunks(file, 1 << 24)
            )
        return self._lines

    @size_hint.setter
    def size_hint(self, value: int | None) -> None:
        if value is not None:
            self._lines = value
