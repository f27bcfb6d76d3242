"""MedR3's own question JSONL (the starter set's format): one :class:`QAItem` per line."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from medr3_env.corpora.errors import CorpusFormatError
from medr3_env.corpora.jsonl import OnError, SkipCounter, read_jsonl
from medr3_env.corpora.records import QAItem, QuestionSet


def load_native_questions(
    path: str | Path,
    *,
    on_error: OnError = "raise",
    name: str | None = None,
    subset: str | None = None,
) -> QuestionSet:
    """Read ``{"id", "question", "answer_type", "options", "answer", "aliases", "evidence_ids",
    "split"}`` records."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"question file not found: {path}")
    counter = SkipCounter()
    items = []
    for line, record in read_jsonl(path, on_error=on_error, counter=counter):
        try:
            items.append(QAItem.model_validate(record))
        except ValidationError as exc:
            first = exc.errors()[0]
            error = CorpusFormatError(
                first["msg"],
                path=path,
                line=line,
                field=".".join(str(p) for p in first["loc"]) or None,
            )
            if on_error == "skip":
                counter.record(error)
                continue
            raise error from None
    return QuestionSet(name or f"medr3:{path}", items, stats=counter)
