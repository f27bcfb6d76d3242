"""Spec strings: ``FORMAT:PATH[#SUBSET]`` or a registered name such as ``starter``.

The same strings work in ``gym.make``, :func:`medr3_env.search.build_searcher` and the CLI.
New formats are added with :func:`register_format`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medr3_env.corpora.errors import SpecError
from medr3_env.corpora.records import Corpus, QuestionSet

CorpusLoader = Callable[..., Corpus]
QuestionLoader = Callable[..., QuestionSet]

_CORPUS_FORMATS: dict[str, CorpusLoader] = {}
_QUESTION_FORMATS: dict[str, QuestionLoader] = {}


@dataclass(frozen=True)
class Spec:
    """A parsed spec: ``format``, ``path`` (may be empty for named sets) and ``subset``."""

    format: str
    path: str
    subset: str | None = None

    @classmethod
    def parse(cls, spec: str) -> Spec:
        if not isinstance(spec, str) or not spec.strip():
            raise SpecError("a spec must be a non-empty string such as 'starter' or 'medrag:PATH'")
        spec = spec.strip()
        fmt, sep, rest = spec.partition(":")
        if not sep:
            return cls(format=spec, path="")
        path, _, subset = rest.partition("#")
        return cls(format=fmt.lower(), path=path, subset=subset or None)


def register_format(
    name: str, *, corpus: CorpusLoader | None = None, questions: QuestionLoader | None = None
) -> None:
    """Register loaders for ``name:PATH`` specs. Loaders take ``(path, subset=..., **options)``."""
    if corpus is not None:
        _CORPUS_FORMATS[name] = corpus
    if questions is not None:
        _QUESTION_FORMATS[name] = questions


def _check_path(spec: Spec) -> None:
    if spec.format != "hf" and spec.path and not Path(spec.path).expanduser().exists():
        raise SpecError(f"{spec.format}:{spec.path}: file not found")


def load_corpus(spec: str | Corpus | None = None, **options: Any) -> Corpus:
    """Resolve a corpus spec (``None`` is the starter corpus)."""
    if isinstance(spec, Corpus):
        return spec
    parsed = Spec.parse(spec or "starter")
    loader = _CORPUS_FORMATS.get(parsed.format)
    if loader is None:
        raise SpecError(
            f"unknown corpus format {parsed.format!r} in {spec!r}; known: {sorted(_CORPUS_FORMATS)}"
        )
    _check_path(parsed)
    return loader(parsed.path, subset=parsed.subset, **options)


def load_questions(spec: str | QuestionSet | None = None, **options: Any) -> QuestionSet:
    """Resolve a question-set spec (``None`` is the starter question set)."""
    if isinstance(spec, QuestionSet):
        return spec
    parsed = Spec.parse(spec or "starter")
    loader = _QUESTION_FORMATS.get(parsed.format)
    if loader is None:
        raise SpecError(
            f"unknown dataset format {parsed.format!r} in {spec!r}; known: {sorted(_QUESTION_FORMATS)}"
        )
    _check_path(parsed)
    return loader(parsed.path, subset=parsed.subset, **options)


def corpus_formats() -> list[str]:
    return sorted(_CORPUS_FORMATS)


def question_formats() -> list[str]:
    return sorted(_QUESTION_FORMATS)


def _register_builtins() -> None:
    from medr3_env.corpora.medrag import load_medrag
    from medr3_env.corpora.native import load_native_questions
    from medr3_env.corpora.starter import load_starter_corpus, load_starter_questions

    register_format(
        "starter",
        corpus=lambda path="", subset=None, **_: load_starter_corpus(),
        questions=lambda path="", subset=None, **_: load_starter_questions(),
    )
    register_format("medrag", corpus=lambda path, subset=None, **kw: load_medrag(path, **kw))
    register_format(
        "medr3", questions=lambda path, subset=None, **kw: load_native_questions(path, **kw)
    )
    from medr3_env.corpora.generic import load_hf_corpus, load_jsonl_questions, load_table_corpus
    from medr3_env.corpora.mcq import load_bioasq, load_medmcqa, load_medqa, load_mirage
    from medr3_env.corpora.pubmedqa import load_pubmedqa_corpus, load_pubmedqa_questions

    register_format("pubmedqa", corpus=load_pubmedqa_corpus, questions=load_pubmedqa_questions)
    register_format("medqa", questions=load_medqa)
    register_format("medmcqa", questions=load_medmcqa)
    register_format("mirage", questions=load_mirage)
    register_format("bioasq", questions=load_bioasq)
    register_format("jsonl", corpus=load_table_corpus, questions=load_jsonl_questions)
    register_format("csv", corpus=load_table_corpus)
    register_format("hf", corpus=load_hf_corpus)


_register_builtins()
