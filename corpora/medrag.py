"""MedRAG chunk JSONL (``id``, ``title``, ``content``, ``contents``): the layout of the MedRAG
PubMed, StatPearls, Textbooks and Wikipedia corpora."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from medr3_env.corpora.errors import CorpusFormatError
from medr3_env.corpora.jsonl import OnError, SkipCounter, file_chunks, read_jsonl, require_str
from medr3_env.corpora.records import Corpus, Document


def iter_medrag(
    path: str | Path,
    *,
    on_error: OnError = "raise",
    counter: SkipCounter | None = None,
    seen: set[str] | None = None,
) -> Iterator[Document]:
    """Stream documents from one MedRAG chunk file; ``seen`` carries ids across files."""
    seen = set() if seen is None else seen
    counter = counter or SkipCounter()
    for line, record in read_jsonl(path, on_error=on_error, counter=counter):
        try:
            doc_id = require_str(record, "id", path, line).strip()
            if not doc_id:
                raise CorpusFormatError("empty id", path=path, line=line, field="id")
            title = record.get("title") or ""
            if not isinstance(title, str):
                raise CorpusFormatError("expected a string", path=path, line=line, field="title")
            content = record.get("content")
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
        except CorpusFormatError as error:
            if on_error == "skip":
                counter.record(error)
                continue
            raise
        if doc_id in seen:
            # Duplicate ids would make read/search ambiguous: always an error, never skipped.
            raise CorpusFormatError(
                f"duplicate document id {doc_id!r}", path=path, line=line, field="id"
            )
        seen.add(doc_id)
        yield Document(
            id=doc_id,
            title=title,
            content=content,
            annotations=tuple(annotations),
            metadata=metadata,
        )


def load_medrag(
    path: str | Path, *, on_error: OnError = "raise", name: str | None = None
) -> Corpus:
    """A streaming :class:`Corpus` over a MedRAG chunk JSONL file (or a folder of them)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"MedRAG corpus not found: {path}")
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f"no *.jsonl files in {path}")

    def documents() -> Iterator[Document]:
        seen: set[str] = set()
        for file in files:
            yield from iter_medrag(file, on_error=on_error, seen=seen)

    def fingerprint() -> Iterator[bytes]:
        for file in files:
            yield file.name.encode()
            yield from file_chunks(file)

    return Corpus(name or f"medrag:{path}", documents, fingerprint_source=fingerprint)
