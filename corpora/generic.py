"""Generic JSONL/CSV corpora and JSONL question sets with a field mapping, and ``hf:NAME`` specs.

``jsonl:PATH`` and ``csv:PATH`` take the mapping as keyword options, e.g.
``load_corpus("csv:/data/notes.csv", id_field="note_id", text_field="body")``.
"""

from __future__ import annotations

import csv
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medr3_env.corpora.dedupe import Located, unique_documents
from medr3_env.corpora.errors import CorpusFormatError, SpecError
from medr3_env.corpora.jsonl import OnDuplicate, OnError, SkipCounter, file_chunks, read_jsonl
from medr3_env.corpora.records import Corpus, Document, QAItem, QuestionSet


def _document(
    record: dict[str, Any], id_field: str, title_field: str, text_field: str, path: Path, line: int
) -> Document:
    doc_id, text = record.get(id_field), record.get(text_field)
    if doc_id in (None, "") or not str(doc_id).strip():
        raise CorpusFormatError("missing", path=path, line=line, field=id_field)
    if len(str(doc_id)) > 512:
        raise CorpusFormatError(
            "id longer than 512 characters", path=path, line=line, field=id_field
        )
    if not isinstance(text, str) or not text.strip():
        raise CorpusFormatError("missing or empty text", path=path, line=line, field=text_field)
    return Document(id=str(doc_id), title=str(record.get(title_field) or ""), content=text)


def load_table_corpus(
    path: str | Path,
    *,
    id_field: str = "id",
    title_field: str = "title",
    text_field: str = "content",
    on_error: OnError = "raise",
    on_duplicate: OnDuplicate = "error",
    subset: str | None = None,
) -> Corpus:
    """A JSONL or CSV corpus (chosen by file suffix) with the given column names."""
    path = Path(path).expanduser()
    stats = SkipCounter()

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        if path.suffix.lower() == ".csv":
            with path.open(encoding="utf-8", newline="") as handle:
                try:
                    yield from enumerate(csv.DictReader(handle), start=2)
                except UnicodeDecodeError as exc:
                    raise CorpusFormatError(f"not UTF-8 ({exc.reason})", path=path) from None
        else:
            yield from read_jsonl(path, on_error=on_error, counter=stats)

    def located() -> Iterator[Located]:
        stats.skipped = 0
        for line, record in rows():
            try:
                doc = _document(record, id_field, title_field, text_field, path, line)
            except CorpusFormatError as error:
                if on_error == "skip":
                    stats.record(error)
                    continue
                raise
            yield doc, str(path), line

    def documents() -> Iterator[Document]:
        stats.reset()
        yield from unique_documents(
            located, on_duplicate=on_duplicate, stats=stats, id_field=id_field
        )

    return Corpus(
        f"{path.suffix.lstrip('.')}:{path}",
        documents,
        fingerprint_source=lambda: file_chunks(path),
        stats=stats,
    )


def load_jsonl_questions(
    path: str | Path,
    *,
    id_field: str = "id",
    question_field: str = "question",
    answer_field: str = "answer",
    options_field: str = "options",
    evidence_field: str = "evidence_ids",
    answer_type: str | None = None,
    on_error: OnError = "raise",
    subset: str | None = None,
) -> QuestionSet:
    """Questions from any JSONL with a field mapping; ``answer_type`` is inferred when not given
    (options → mcq, yes/no/maybe → yesno, else free)."""
    path = Path(path).expanduser()
    counter = SkipCounter()
    items = []
    for line, r in read_jsonl(path, on_error=on_error, counter=counter):
        try:
            options = r.get(options_field) or None
            answer = str(r.get(answer_field, "")).strip()
            kind = answer_type or (
                "mcq"
                if options
                else "yesno"
                if answer.lower() in ("yes", "no", "maybe")
                else "free"
            )
            evidence = r.get(evidence_field) or ()
            items.append(
                QAItem(
                    id=str(r.get(id_field) or f"{path.stem}-{line}"),
                    question=str(r.get(question_field, "")),
                    answer_type=kind,  # type: ignore[arg-type]
                    options=options,
                    answer=answer.lower() if kind == "yesno" else answer,
                    evidence_ids=tuple(str(e) for e in evidence),
                    source=f"jsonl:{path.name}",
                )
            )
        except ValueError as exc:
            error = CorpusFormatError(str(exc).splitlines()[0], path=path, line=line)
            if on_error == "skip":
                counter.record(error)
                continue
            raise error from None
    return QuestionSet(f"jsonl:{path}", items, stats=counter)


def _require_datasets(name: str):
    if importlib.util.find_spec("datasets") is None:
        raise SpecError(
            f"hf:{name} needs the Hugging Face `datasets` package (pip install datasets) and access to the hub. "
            "Offline, download the dataset elsewhere, export it to JSONL, and use a file spec such as "
            "medrag:PATH, pubmedqa:PATH, medqa:PATH or medmcqa:PATH."
        )
    import datasets

    return datasets


def load_hf_corpus(
    name: str,
    *,
    subset: str | None = None,
    split: str = "train",
    on_duplicate: OnDuplicate = "error",
) -> Corpus:
    """A MedRAG-schema corpus from the Hugging Face hub (e.g. ``hf:MedRAG/textbooks``)."""
    datasets = _require_datasets(name)
    stats = SkipCounter()

    def located() -> Iterator[Located]:
        try:
            rows = datasets.load_dataset(name, subset, split=split, streaming=True)
        except Exception as exc:  # network or hub errors
            raise SpecError(
                f"could not load hf:{name} ({exc}); offline, use a local file spec instead"
            ) from exc
        for number, row in enumerate(rows, start=1):
            doc = Document(
                id=str(row["id"]),
                title=str(row.get("title") or ""),
                content=str(row.get("content") or row["contents"]),
            )
            yield doc, f"hf:{name}", number

    def documents() -> Iterator[Document]:
        stats.reset()
        yield from unique_documents(located, on_duplicate=on_duplicate, stats=stats)

    return Corpus(
        f"hf:{name}",
        documents,
        fingerprint_source=lambda: iter([f"hf:{name}:{subset}:{split}".encode()]),
        stats=stats,
    )
