"""PubMedQA (``ori_pqal.json``): yes/no/maybe questions, and their abstracts as a corpus.

Each abstract's CONTEXTS become one document (id = PMID) with its MeSH headings as annotations;
LONG_ANSWER (the abstract's conclusion) is left out of the document. A question's gold evidence
is its own abstract. If ``test_ground_truth.json`` sits next to the file, its PMIDs form the
``test`` split and the rest ``train``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medr3_env.corpora.errors import CorpusFormatError
from medr3_env.corpora.jsonl import OnError, SkipCounter, file_chunks, read_json
from medr3_env.corpora.records import Corpus, Document, QAItem, QuestionSet


def _read(path: Path) -> dict[str, dict[str, Any]]:
    data = read_json(path)
    if not isinstance(data, dict):
        raise CorpusFormatError("expected an object mapping PMID -> record", path=path)
    return data


def _contexts(pmid: str, record: Any, path: Path) -> list[str]:
    if not isinstance(record, dict):
        raise CorpusFormatError("expected an object", path=path, field=pmid)
    contexts = record.get("CONTEXTS")
    if (
        not isinstance(contexts, list)
        or not contexts
        or not all(isinstance(c, str) for c in contexts)
    ):
        raise CorpusFormatError(
            "CONTEXTS must be a non-empty list of strings", path=path, field=f"{pmid}.CONTEXTS"
        )
    return contexts


def load_pubmedqa_corpus(
    path: str | Path, *, on_error: OnError = "raise", subset: str | None = None
) -> Corpus:
    """The abstracts of a PubMedQA file as a corpus."""
    path = Path(path).expanduser()
    counter = SkipCounter()  # exposed as Corpus.stats; the index manifest stores the count

    def documents() -> Iterator[Document]:
        counter.reset()
        for pmid, record in _read(path).items():
            try:
                contexts = _contexts(pmid, record, path)
            except CorpusFormatError as error:
                if on_error == "skip":
                    counter.record(error)
                    continue
                raise
            meshes = record.get("MESHES") or []
            yield Document(
                id=str(pmid),
                title=f"PMID {pmid}",
                content=" ".join(c.strip() for c in contexts),
                annotations=tuple(m for m in meshes if isinstance(m, str)),
            )

    return Corpus(
        f"pubmedqa:{path}",
        documents,
        fingerprint_source=lambda: file_chunks(path),
        stats=counter,
    )


def load_pubmedqa_questions(
    path: str | Path, *, on_error: OnError = "raise", subset: str | None = None
) -> QuestionSet:
    """PubMedQA questions (answer_type ``yesno``) with the abstracts as their corpus."""
    path = Path(path).expanduser()
    truth = path.with_name("test_ground_truth.json")
    test_ids = set(read_json(truth)) if truth.exists() else None
    counter = SkipCounter()
    items = []
    for pmid, record in _read(path).items():
        try:
            _contexts(pmid, record, path)
            question, decision = record.get("QUESTION"), record.get("final_decision")
            if not isinstance(question, str) or not question.strip():
                raise CorpusFormatError("missing", path=path, field=f"{pmid}.QUESTION")
            if decision not in ("yes", "no", "maybe"):
                raise CorpusFormatError(
                    f"expected yes/no/maybe, got {decision!r}",
                    path=path,
                    field=f"{pmid}.final_decision",
                )
        except CorpusFormatError as error:
            if on_error == "skip":
                counter.record(error)
                continue
            raise
        split = None if test_ids is None else ("test" if pmid in test_ids else "train")
        items.append(
            QAItem(
                id=str(pmid),
                question=question.strip(),
                answer_type="yesno",
                answer=decision,
                evidence_ids=(str(pmid),),
                split=split,
                source="pubmedqa",
                metadata={"long_answer": str(record.get("LONG_ANSWER", ""))},
            )
        )
    corpus = load_pubmedqa_corpus(path, on_error=on_error)
    return QuestionSet(f"pubmedqa:{path}", items, corpus, stats=counter)
