"""Test-only MedR3 plug-ins, one of each kind, registered purely through entry points
(``pyproject.toml``): nothing here is imported by MedR3 unless the package is installed."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from medr3_env.corpora import Format
from medr3_env.corpora.records import Corpus, Document
from medr3_env.search.base import IndexedDocument, IndexSearcher, Match
from medr3_env.search.indexing import annotated_batches

__all__ = ["TSV_DOCS", "KeywordBackend", "capitalised_words", "cites_a_document"]


# -- reward term ---------------------------------------------------------------------------------
def cites_a_document(ctx) -> float:
    """1 when the answering turn's reasoning names the id of a document the agent read."""
    last = ctx.last_turn
    if last is None or last.kind != "answer":
        return 0.0
    return float(any(doc_id in last.reasoning for doc_id in ctx.read_ids))


# -- corpus format: ``tsvdocs:PATH`` with lines ``id<TAB>title<TAB>text`` -------------------------
def load_tsv_docs(path: str, subset: str | None = None, *, name: str | None = None) -> Corpus:
    """Documents from a tab-separated file of ``id``, ``title``, ``text`` lines."""
    source = Path(path)

    def documents() -> Iterator[Document]:
        for line in source.read_text(encoding="utf-8").splitlines():
            if line.strip():
                doc_id, title, text = line.split("\t", 2)
                yield Document(id=doc_id, title=title, content=text)

    return Corpus(
        name or f"tsvdocs:{path}", documents, fingerprint_source=lambda: [source.read_bytes()]
    )


TSV_DOCS = Format(corpus=load_tsv_docs, description="tab-separated id, title, text (test plug-in)")


# -- entity extractor: ``capitalised`` or ``capitalised:MINLEN`` ----------------------------------
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class CapitalisedWords:
    """Every capitalised word of at least ``min_length`` letters, lower-cased, is an entity."""

    def __init__(self, min_length: int) -> None:
        self.min_length = min_length
        self.name = f"capitalised:{min_length}"
        self._word = re.compile(rf"\b[A-Z][a-z]{{{min_length - 1},}}\b")

    def extract_spans(self, text: str) -> list[tuple[int, int, str]]:
        return [(m.start(), m.end(), m.group().lower()) for m in self._word.finditer(text)]

    def extract(self, text: str) -> set[str]:
        return {entity for _, _, entity in self.extract_spans(text)}

    def extract_sentences(
        self, texts: Iterable[str], batch_size: int = 64
    ) -> Iterator[tuple[tuple[str, ...], ...]]:
        for text in texts:
            yield tuple(
                tuple(dict.fromkeys(e for _, _, e in self.extract_spans(sentence)))
                for sentence in _SENTENCE_END.split(text)
                if sentence.strip()
            )

    def canonical(self, term: str) -> str:
        return term.lower()


def capitalised_words(argument: str = "") -> CapitalisedWords:
    """Capitalised words as entities (``capitalised:MINLEN``, default 4)."""
    return CapitalisedWords(int(argument) if argument else 4)


# -- search backend: an in-memory keyword index, stored as one JSONL file -----------------------
_WORD = re.compile(r"[a-z0-9]+")


class KeywordBackend(IndexSearcher):
    """Ranks documents by how many query words they contain (title words count double)."""

    @classmethod
    def build(cls, corpus, directory, extractor, *, progress=None) -> int:
        count = 0
        with open(Path(directory) / "docs.jsonl", "w", encoding="utf-8") as out:
            for batch in annotated_batches(corpus, extractor, batch_size=64, progress=progress):
                for doc, entities in batch:
                    record = doc.model_dump(mode="json") | {"sentence_entities": entities}
                    out.write(json.dumps(record) + "\n")
                    count += 1
        return count

    def __init__(self, directory, **options) -> None:
        super().__init__(directory, **options)
        lines = (Path(directory) / "docs.jsonl").read_text(encoding="utf-8").splitlines()
        self.docs = {d.id: d for d in map(IndexedDocument.model_validate_json, lines)}
        self.postings: dict[str, dict[str, int]] = {}
        for doc in self.docs.values():
            for weight, text in ((2, doc.title), (1, doc.content)):
                for word in set(self.stems(text)):
                    found = self.postings.setdefault(word, {})
                    found[doc.id] = found.get(doc.id, 0) + weight
        self.doc_count = len(self.docs)

    def stems(self, text: str) -> list[str]:
        return _WORD.findall(text.lower())

    def doc_freq(self, stem: str) -> int:
        return len(self.postings.get(stem, ()))

    def engine(self, stems: tuple[str, ...], k: int) -> list[Match]:
        scores: dict[str, int] = {}
        for stem in stems:
            for doc_id, weight in self.postings.get(stem, {}).items():
                scores[doc_id] = scores.get(doc_id, 0) + weight
        best = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:k]
        return [self._match(self.docs[doc_id], score) for doc_id, score in best]

    @staticmethod
    def _match(doc: IndexedDocument, score: float) -> Match:
        return Match(score, doc.id, doc.title, doc.content, doc)

    def fetch(self, doc_id: str) -> IndexedDocument | None:
        return self.docs.get(doc_id)
