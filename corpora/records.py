"""The records every loader produces: :class:`Document` (a passage to index) and :class:`QAItem`
(a question to answer), plus the :class:`Corpus` and :class:`QuestionSet` containers."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from medr3_env.corpora.jsonl import SkipCounter

AnswerType = Literal["mcq", "yesno", "free"]
MetadataValue = str | int | float | bool
"""A metadata value keeps its JSON type: ``true`` stays a bool, ``2`` an int (never ``"2"``)."""
Metadata = dict[str, MetadataValue]


class Document(BaseModel):
    """One retrievable passage (the MedRAG chunk schema plus optional annotations)."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1, max_length=512)
    title: str = ""
    content: str
    annotations: tuple[str, ...] = ()
    """Entity strings the corpus itself provides (e.g. PubMedQA MeSH headings)."""
    metadata: Metadata = Field(default_factory=dict)
    """Provenance, e.g. ``{"source": "ESC AF guideline", "year": 2024, "region": "international"}``."""

    @property
    def contents(self) -> str:
        """Title and content joined, as MedRAG's ``contents`` field."""
        return f"{self.title}. {self.content}" if self.title else self.content

    def to_medrag(self) -> dict[str, str]:
        return {
            "id": self.id,
            "title": self.title,
            "content": self.content,
            "contents": self.contents,
        }


class QAItem(BaseModel):
    """One question with its gold answer and, when known, the ids of the passages that support it."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    answer_type: AnswerType
    options: dict[str, str] | None = None
    """Option letter -> option text for multiple-choice questions, else ``None``."""
    answer: str
    """Gold answer: an option letter (mcq), ``yes``/``no``/``maybe`` (yesno) or a short phrase (free)."""
    aliases: tuple[str, ...] = ()
    evidence_ids: tuple[str, ...] = ()
    split: str | None = None
    source: str = ""
    metadata: Metadata = Field(default_factory=dict)
    """Typed annotations, e.g. starter items: ``specialty`` and ``topic`` (str), ``hops`` (int,
    1 or 2), ``needs_corpus`` (bool)."""

    @field_validator("answer")
    @classmethod
    def _answer_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("answer must not be empty")
        return value.strip()

    def model_post_init(self, __context: object) -> None:
        if self.answer_type == "mcq":
            if not self.options or len(self.options) < 2:
                raise ValueError(f"question {self.id!r}: mcq needs at least two options")
            if self.answer not in self.options:
                raise ValueError(
                    f"question {self.id!r}: answer {self.answer!r} is not an option letter "
                    f"({', '.join(self.options)})"
                )
        elif self.answer_type == "yesno" and self.answer.lower() not in {"yes", "no", "maybe"}:
            raise ValueError(f"question {self.id!r}: yes/no answer must be yes, no or maybe")

    @property
    def answer_text(self) -> str:
        """The gold answer as text (the option text for multiple-choice questions)."""
        if self.answer_type == "mcq" and self.options:
            return self.options[self.answer]
        return self.answer


class Corpus:
    """A re-iterable stream of documents with a content fingerprint.

    ``factory`` is called every time the corpus is iterated, so large files are streamed, never held
    in memory. ``fingerprint_source`` returns the bytes that identify the content (file bytes for
    file-backed corpora); by default the documents themselves are hashed.
    """

    def __init__(
        self,
        name: str,
        factory: Callable[[], Iterable[Document]],
        *,
        fingerprint_source: Callable[[], Iterable[bytes]] | None = None,
        size_hint: int | None = None,
        stats: SkipCounter | None = None,
    ) -> None:
        self.name = name
        self._factory = factory
        self._fingerprint_source = fingerprint_source
        self.size_hint = size_hint
        self.stats = stats
        """What the last pass skipped or dropped (malformed records, duplicate ids), if counted."""
        self.loader_options: dict[str, str] = {}
        """Loader options that differ from their defaults; part of the fingerprint."""
        self._fingerprint: str | None = None

    @classmethod
    def from_documents(cls, name: str, documents: Sequence[Document]) -> Corpus:
        docs = list(documents)
        return cls(name, lambda: iter(docs), size_hint=len(docs))

    def __iter__(self) -> Iterator[Document]:
        return iter(self._factory())

    def fingerprint(self) -> str:
        """A sha256 of the corpus content, stable across runs and machines."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            if self._fingerprint_source is not None:
                for chunk in self._fingerprint_source():
                    digest.update(chunk)
            else:
                for doc in self:
                    digest.update(doc.model_dump_json().encode("utf-8"))
                    digest.update(b"\n")
            if self.loader_options:
                # Options such as on_duplicate change what is indexed from the same bytes.
                digest.update(b"\x00options:" + repr(sorted(self.loader_options.items())).encode())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    def __repr__(self) -> str:
        return f"Corpus(name={self.name!r})"


class QuestionSet:
    """An ordered, indexable list of :class:`QAItem` records with an optional default corpus."""

    def __init__(
        self,
        name: str,
        items: Sequence[QAItem],
        corpus: Corpus | None = None,
        *,
        stats: SkipCounter | None = None,
    ) -> None:
        self.name = name
        self.items = list(items)
        self.corpus = corpus
        self.stats = stats
        """What the loader skipped (malformed records with ``on_error="skip"``), if it counted."""
        self._by_id = {item.id: item for item in self.items}
        if len(self._by_id) != len(self.items):
            raise ValueError(f"question set {name!r} has duplicate item ids")

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[QAItem]:
        return iter(self.items)

    def __getitem__(self, index: int) -> QAItem:
        return self.items[index]

    def get(self, item_id: str) -> QAItem:
        try:
            return self._by_id[item_id]
        except KeyError:
            raise KeyError(f"no question with id {item_id!r} in {self.name!r}") from None

    def split(self, split: str | None) -> QuestionSet:
        """The items of one split (``None`` or ``"all"`` keeps everything)."""
        if split in (None, "all") or all(item.split is None for item in self.items):
            return self  # sets without split information are used whole
        items = [item for item in self.items if item.split == split]
        if not items:
            known = sorted({str(item.split) for item in self.items})
            raise ValueError(f"split {split!r} is empty in {self.name!r}; splits: {known}")
        return QuestionSet(f"{self.name}:{split}", items, self.corpus, stats=self.stats)
