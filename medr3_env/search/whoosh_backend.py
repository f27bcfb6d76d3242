"""The embedded default backend: a Whoosh index on disk, BM25F over title + content with an
English stemming analyser. Pure Python, no server."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from whoosh import index as whoosh_index
from whoosh import scoring
from whoosh.analysis import StemmingAnalyzer
from whoosh.fields import ID, STORED, TEXT, Schema
from whoosh.query import Or, Term

from medr3_env.corpora.records import Corpus
from medr3_env.entities import EntityExtractor
from medr3_env.search.base import IndexedDocument, IndexSearcher, Match
from medr3_env.search.hit_cache import DEFAULT_CACHE_SIZE
from medr3_env.search.indexing import annotated_batches
from medr3_env.search.snippets import encode_ends, sentence_ends
from medr3_env.search.whoosh_scoring import DEFAULT_POSTINGS_CACHE_MB, ArrayBM25F

TEXT_FIELDS = ("title", "content")


def _schema() -> Schema:
    analyzer = StemmingAnalyzer()
    return Schema(
        id=ID(stored=True, unique=True),
        title=TEXT(analyzer=analyzer, stored=True, field_boost=1.5),
        content=TEXT(analyzer=analyzer, stored=True),
        entities=STORED,
        annotations=STORED,
        sentence_ends=STORED,
    )


def build_whoosh_index(
    corpus: Corpus,
    directory: Path,
    extractor: EntityExtractor,
    *,
    progress: bool | None = None,
    batch_size: int = 256,
    memory_mb: int = 256,
) -> int:
    """Stream ``corpus`` into a new Whoosh index in ``directory``; returns the document count."""
    ix = whoosh_index.create_in(str(directory), _schema())
    writer = ix.writer(limitmb=memory_mb)
    count = 0
    try:
        for batch in annotated_batches(corpus, extractor, batch_size=batch_size, progress=progress):
            for doc, entities in batch:
                writer.add_document(
                    id=doc.id,
                    title=doc.title,
                    content=doc.content,
                    entities=json.dumps(entities),
                    annotations=json.dumps(list(doc.annotations)),
                    sentence_ends=encode_ends(sentence_ends(doc.content)),
                )
            count += len(batch)
    except BaseException:
        writer.cancel()
        raise
    writer.commit()
    return count


class WhooshSearcher(IndexSearcher):
    """BM25F search over an index built by :func:`build_whoosh_index`. Thread-safe.

    A query's planned terms (:class:`~medr3_env.search.base.IndexSearcher`) are OR-ed over
    ``title`` and ``content`` and scored with Whoosh's BM25F over whole posting lists at once
    (:class:`~medr3_env.search.whoosh_scoring.ArrayBM25F`: the same hits and scores as Whoosh's
    own matchers, which remain the path for indexes it cannot read). Scored postings are kept up
    to ``postings_cache_mb``.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
        postings_cache_mb: float = DEFAULT_POSTINGS_CACHE_MB,
    ) -> None:
        super().__init__(directory, cache_size=cache_size)
        self._index = whoosh_index.open_dir(str(self.directory))
        self._searcher = self._index.searcher(weighting=scoring.BM25F())
        self._reader = self._searcher.reader()
        self.doc_count = self._reader.doc_count()
        self._analyzer = StemmingAnalyzer()
        self._lock = threading.RLock()
        self._array = ArrayBM25F(self._searcher, TEXT_FIELDS, cache_mb=postings_cache_mb)

    @classmethod
    def build(
        cls,
        corpus: Corpus,
        directory: Path,
        extractor: EntityExtractor,
        *,
        progress: bool | None = None,
    ) -> int:
        return build_whoosh_index(corpus, directory, extractor, progress=progress)

    def stems(self, text: str) -> list[str]:
        with self._lock:  # Whoosh's analyser reuses its token objects
            return [token.text for token in self._analyzer(text)]

    def doc_freq(self, stem: str) -> int:
        with self._lock:
            reader = self._reader
            return reader.doc_frequency("content", stem) + reader.doc_frequency("title", stem)

    def engine(self, stems: tuple[str, ...], k: int) -> list[Match]:
        with self._lock:
            if self._array.supported:
                top = self._array.top(stems, k)
                found = [(self._searcher.stored_fields(doc), score) for score, doc in top]
            else:
                found = self._whoosh_engine(stems, k)
        return [
            Match(
                score,
                fields["id"],
                fields.get("title", ""),
                fields["content"],
                fields,
                fields.get("sentence_ends"),
            )
            for fields, score in found
        ]

    def _whoosh_engine(self, stems: tuple[str, ...], k: int) -> list[tuple[dict, float]]:
        """The same search through Whoosh's own matchers (its preloading union matcher)."""
        query = Or([Term(field, s) for s in stems for field in TEXT_FIELDS])
        query.matcher_type = Or.ARRAY_MATCHER
        with self._lock:
            return [(r.fields(), float(r.score)) for r in self._searcher.search(query, limit=k)]

    def fetch(self, doc_id: str) -> dict | None:
        with self._lock:
            return self._searcher.document(id=doc_id)  # type: ignore[no-any-return]

    def document(self, stored: dict) -> IndexedDocument:
        return IndexedDocument(
            id=stored["id"],
            title=stored.get("title", ""),
            content=stored["content"],
            annotations=tuple(json.loads(stored.get("annotations") or "[]")),
            sentence_entities=tuple(tuple(s) for s in json.loads(stored.get("entities") or "[]")),
        )

    def close(self) -> None:
        self._searcher.close()
