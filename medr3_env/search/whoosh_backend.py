"""The embedded default backend: a Whoosh index on disk, BM25F over title + content with an
English stemming analyser. Pure Python, no server."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Iterator
from functools import lru_cache
from itertools import islice
from pathlib import Path

from whoosh import index as whoosh_index
from whoosh import scoring
from whoosh.analysis import StemmingAnalyzer
from whoosh.fields import ID, STORED, TEXT, Schema
from whoosh.query import Or, Term

from medr3_env.corpora.records import Corpus, Document
from medr3_env.entities import EntityExtractor
from medr3_env.search.base import Hit, IndexedDocument, IndexManifest, Searcher
from medr3_env.search.progress import progress_bar
from medr3_env.search.query import query_terms

MAX_K = 50
MAX_SEARCH_TERMS = 16
"""After analysis, only the rarest terms are kept: common terms add cost but little ranking signal."""

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _schema() -> Schema:
    analyzer = StemmingAnalyzer()
    return Schema(
        id=ID(stored=True, unique=True),
        title=TEXT(analyzer=analyzer, stored=True, field_boost=1.5),
        content=TEXT(analyzer=analyzer, stored=True),
        entities=STORED,
        annotations=STORED,
    )


def _batches(documents: Iterable[Document], size: int) -> Iterator[list[Document]]:
    iterator = iter(documents)
    while batch := list(islice(iterator, size)):
        yield batch


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
        with progress_bar(
            f"indexing {corpus.name}", total=corpus.size_hint, enabled=progress
        ) as advance:
            for batch in _batches(corpus, batch_size):
                entity_lists = extractor.extract_sentences((d.content for d in batch), batch_size)
                for doc, entities in zip(batch, entity_lists, strict=True):
                    writer.add_document(
                        id=doc.id,
                        title=doc.title,
                        content=doc.content,
                        entities=json.dumps(entities),
                        annotations=json.dumps(list(doc.annotations)),
                    )
                count += len(batch)
                advance(len(batch))
    except BaseException:
        writer.cancel()
        raise
    writer.commit()
    return count


class WhooshSearcher(Searcher):
    """BM25F search over an index built by :func:`build_whoosh_index`. Thread-safe."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.manifest = IndexManifest.read(self.directory)
        self._index = whoosh_index.open_dir(str(self.directory))
        self._searcher = self._index.searcher(weighting=scoring.BM25F())
        self._reader = self._searcher.reader()
        self._analyzer = StemmingAnalyzer()
        self._lock = threading.Lock()
        self._get_cached = lru_cache(maxsize=4096)(self._get_uncached)

    def _stems(self, text: str) -> list[str]:
        return [token.text for token in self._analyzer(text)]

    def _query_stems(self, query: str) -> list[str]:
        stems = list(dict.fromkeys(self._stems(" ".join(query_terms(query)))))
        frequencies = [
            (self._reader.doc_frequency("content", s) + self._reader.doc_frequency("title", s), s)
            for s in stems
        ]
        known = sorted((df, i, s) for i, (df, s) in enumerate(frequencies) if df > 0)
        # Keep the rarest terms, then restore the query's own order for determinism.
        kept = sorted(known[:MAX_SEARCH_TERMS], key=lambda item: item[1])
        return [s for _, _, s in kept]

    def search(self, query: str, k: int = 5) -> list[Hit]:
        k = max(1, min(int(k), MAX_K))
        with self._lock:
            stems = self._query_stems(query)
            if not stems:
                return []
            q = Or([Term(field, s) for s in stems for field in ("title", "content")])
            results = self._searcher.search(q, limit=k)
            rows = [(r["id"], r["title"], r["content"], float(r.score)) for r in results]
        stem_set = set(stems)
        return [
            Hit(doc_id=i, title=t, score=round(s, 4), snippet=self._snippet(c, stem_set), rank=n)
            for n, (i, t, c, s) in enumerate(rows, start=1)
        ]

    def _snippet(self, content: str, stems: set[str], limit: int = 240) -> str:
        sentences = _SENTENCE_END.split(content)
        best = max(sentences, key=lambda s: len(stems.intersection(self._stems(s))))
        return best if len(best) <= limit else best[: limit - 1].rstrip() + "…"

    def _get_uncached(self, doc_id: str) -> IndexedDocument | None:
        with self._lock:
            stored = self._searcher.document(id=doc_id)
        if stored is None:
            return None
        return IndexedDocument(
            id=stored["id"],
            title=stored.get("title", ""),
            content=stored["content"],
            annotations=tuple(json.loads(stored.get("annotations") or "[]")),
            sentence_entities=tuple(tuple(s) for s in json.loads(stored.get("entities") or "[]")),
        )

    def get(self, doc_id: str) -> IndexedDocument | None:
        if not isinstance(doc_id, str) or not doc_id or len(doc_id) > 512 or "\x00" in doc_id:
            return None
        return self._get_cached(doc_id)

    def close(self) -> None:
        self._searcher.close()
