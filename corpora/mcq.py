"""Multiple-choice benchmarks: MedQA-USMLE JSONL, MedMCQA JSONL and MIRAGE ``benchmark.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medr3_env.corpora.errors import CorpusFormatError, SpecError
from medr3_env.corpora.jsonl import OnError, SkipCounter, read_json, read_jsonl
from medr3_env.corpora.records import QAItem, QuestionSet

MIRAGE_SUBSETS = ("medqa", "medmcqa", "pubmedqa", "mmlu", "bioasq")


def _mcq(
    item_id: str, question: Any, options: Any, answer: Any, *, source: str, evidence=(), split=None
) -> QAItem:
    if not isinstance(question, str) or not question.strip():
        raise CorpusFormatError("missing question", field="question")
    if not isinstance(options, dict) or len(options) < 2:
        raise CorpusFormatError("options must map letters to texts", field="options")
    options = {str(k): str(v) for k, v in options.items()}
    if answer not in options:
        raise CorpusFormatError(f"answer {answer!r} is not an option letter", field="answer")
    return QAItem(
        id=item_id,
        question=question.strip(),
        answer_type="mcq",
        options=options,
        answer=answer,
        evidence_ids=tuple(evidence),
        split=split,
        source=source,
    )


def _collect(
    path: Path, rows, build, on_error: OnError, name: str, counter: SkipCounter | None = None
) -> QuestionSet:
    """The items ``build`` makes of ``rows``; with ``on_error="skip"`` a malformed one is logged
    as a warning (file, line, field) and counted in ``counter`` with the file's own skips (the
    question set's ``stats``)."""
    counter = counter if counter is not None else SkipCounter()
    items = []
    for line, record in rows:
        try:
            items.append(build(line, record))
        except (CorpusFormatError, ValueError) as exc:
            field = getattr(exc, "field", None)
            error = CorpusFormatError(
                str(getattr(exc, "args", [exc])[0]), path=path, line=line, field=field
            )
            if on_error == "skip":
                counter.record(error)
                continue
            raise error from None
    return QuestionSet(name, items, stats=counter)


def load_medqa(
    path: str | Path, *, on_error: OnError = "raise", subset: str | None = None
) -> QuestionSet:
    """MedQA-USMLE JSONL: ``question``, ``options`` {letter: text}, ``answer_idx``."""
    path = Path(path).expanduser()

    def build(line: int, r: dict) -> QAItem:
        return _mcq(
            f"medqa-{line}",
            r.get("question"),
            r.get("options"),
            r.get("answer_idx"),
            source="medqa",
        )

    counter = SkipCounter()
    return _collect(
        path,
        read_jsonl(path, on_error=on_error, counter=counter),
        build,
        on_error,
        f"medqa:{path}",
        counter,
    )


def load_medmcqa(
    path: str | Path, *, on_error: OnError = "raise", subset: str | None = None, cop_base: int = 1
) -> QuestionSet:
    """MedMCQA JSONL: ``opa``..``opd`` and ``cop`` (1-4 in the released files; ``cop_base=0`` for
    the 0-3 Hugging Face export)."""
    path = Path(path).expanduser()

    def build(line: int, r: dict) -> QAItem:
        cop = r.get("cop")
        if not isinstance(cop, int) or not cop_base <= cop <= cop_base + 3:
            raise CorpusFormatError(
                f"cop must be {cop_base}..{cop_base + 3}, got {cop!r}", field="cop"
            )
        options = {letter: r.get(f"op{letter.lower()}") for letter in "ABCD"}
        if not all(isinstance(v, str) for v in options.values()):
            raise CorpusFormatError("opa..opd must be strings", field="options")
        return _mcq(
            str(r.get("id") or f"medmcqa-{line}"),
            r.get("question"),
            options,
            "ABCD"[cop - cop_base],
            source="medmcqa",
        )

    counter = SkipCounter()
    return _collect(
        path,
        read_jsonl(path, on_error=on_error, counter=counter),
        build,
        on_error,
        f"medmcqa:{path}",
        counter,
    )


def load_mirage(
    path: str | Path, *, subset: str | None = None, on_error: OnError = "raise"
) -> QuestionSet:
    """MIRAGE ``benchmark.json`` (``mirage:PATH#SUBSET``): {subset: {id: {question, options, answer[, PMID]}}}."""
    path = Path(path).expanduser()
    if subset not in MIRAGE_SUBSETS:
        raise SpecError(
            f"mirage:{path} needs a subset: mirage:{path}#SUBSET with SUBSET one of "
            f"{', '.join(MIRAGE_SUBSETS)} (got {subset!r})"
        )
    data = read_json(path)
    if not isinstance(data, dict):
        raise CorpusFormatError("expected an object mapping subset -> questions", path=path)
    if subset not in data:
        raise SpecError(f"mirage:{path} has no subset {subset!r}; it has {', '.join(sorted(data))}")
    if not isinstance(data[subset], dict):
        raise CorpusFormatError(
            "expected an object mapping id -> question", path=path, field=subset
        )

    def build(_: int, pair: tuple[str, dict]) -> QAItem:
        item_id, r = pair
        pmids = r.get("PMID") or []
        return _mcq(
            f"{subset}-{item_id}",
            r.get("question"),
            r.get("options"),
            r.get("answer"),
            source=f"mirage/{subset}",
            evidence=[str(p) for p in pmids],
        )

    rows = ((n, pair) for n, pair in enumerate(data[subset].items(), start=1))
    return _collect(path, rows, build, on_error, f"mirage:{path}#{subset}")


def load_bioasq(
    path: str | Path, *, on_error: OnError = "raise", subset: str | None = None
) -> QuestionSet:
    """BioASQ JSON (``{"questions": [...]}``): the yes/no questions, with PMIDs of their documents
    as gold evidence."""
    path = Path(path).expanduser()
    data = read_json(path)
    questions = data.get("questions") if isinstance(data, dict) else None
    if not isinstance(questions, list):
        raise CorpusFormatError('expected {"questions": [...]}', path=path)

    def build(n: int, q: dict) -> QAItem | None:
        answer = q.get("exact_answer")
        answer = answer[0] if isinstance(answer, list) and answer else answer
        if not isinstance(answer, str) or answer.lower().strip() not in ("yes", "no"):
            raise CorpusFormatError(
                f"exact_answer must be yes or no, got {answer!r}", field="exact_answer"
            )
        pmids = [str(d).rstrip("/").rsplit("/", 1)[-1] for d in q.get("documents", [])]
        return QAItem(
            id=str(q.get("id") or f"bioasq-{n}"),
            question=str(q.get("body", "")),
            answer_type="yesno",
            answer=answer.lower().strip(),
            evidence_ids=tuple(pmids),
            source="bioasq",
        )

    rows = [
        (n, q)
        for n, q in enumerate(questions, start=1)
        if isinstance(q, dict) and q.get("type") == "yesno"
    ]
    return _collect(path, rows, build, on_error, f"bioasq:{path}")
