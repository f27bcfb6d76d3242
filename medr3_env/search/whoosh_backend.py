"""The embedded default backend: a Whoosh index on disk, BM25F over title + content with an
English stemming analyser. Pure Python, no server."""

from __future__ import annotations

import json
import threading
from functools import lru_cache
from pathlib import Path

from whoosh import index as whoosh_index
from whoosh import scoring
from whoosh.analysis import StemmingAnalyzer
from whoosh.fields import ID, STORED, TEXT, Schema
from whoosh.query import Or, Term

from medr3_env.corpora.records import Corpus
from medr3_env.entities import EntityExtractor
from medr3_env.search.base import MAX_K, Hit, IndexedDocument, IndexManifest, Searcher, valid_doc_id
from medr3_env.search.hit_cache import DEFAULT_CACHE_SIZE, HitCache, RecentDocuments
from medr3_env.search.indexing import annotated_batches
from medr3_env.search.planning import plan_terms
from medr3_env.search.query import query_terms
from medr3_env.search.snippets import decode_ends, encode_ends, sentence_ends, snippet_for
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


class WhooshSearcher(Searcher):
    """BM25F search over an index built by :func:`build_whoosh_index`. Thread-safe.

    A query is planned once (:func:`~medr3_env.search.planning.plan_terms`), its terms OR-ed
    over ``title`` and ``content`` and scored with Whoosh's BM25F over whole posting lists at
    once (:class:`~medr3_env.search.whoosh_scoring.ArrayBM25F`: the same hits and scores as
    Whoosh's own matchers, which remain the path for indexes it cannot read). Scored postings
    are kept up to ``postings_cache_mb``; results are kept in an LRU of ``cache_size`` entries
    keyed by the planned terms, so repeats within a batch or across rollouts are free.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
        postings_cache_mb: float = DEFAULT_POSTINGS_CACHE_MB,
    ) -> None:
        self.directory = Path(directory)
        self.manifest = IndexManifest.read(self.directory)
        self._index = whoosh_index.open_dir(str(self.directory))
        self._searcher = self._index.searcher(weighting=scoring.BM25F())
        self._reader = self._searcher.reader()
        self._doc_count = self._reader.doc_count()
        self._analyzer = StemmingAnalyzer()
        self._lock = threading.RLock()
        self._cache = HitCache(cache_size)
        self._recent = RecentDocuments()
        self._get_cached = lru_cache(maxsize=4096)(self._get_uncached)
        self._doc_freq = lru_cache(maxsize=65_536)(self._doc_freq_uncached)
        self._term_stems = lru_cache(maxsize=65_536)(self._term_stems_uncached)
        self._array = ArrayBM25F(self._searcher, TEXT_FIELDS, cache_mb=postings_cache_mb)

    def _stems(self, text: str) -> list[str]:
        return [token.text for token in self._analyzer(text)]

    def _term_stems_uncached(self, term: str) -> tuple[str, ...]:
        # Query terms are single words, so analysing them one by one equals analysing the
        # joined query; Whoosh's pure-Python analyser costs ~10 µs a word, a cache hit ~0.1.
        return tuple(self._stems(term))

    def _doc_freq_uncached(self, stem: str) -> int:
        return self._reader.doc_frequency("content", stem) + self._reader.doc_frequency(
            "title", stem
        )

    def plan(self, query: str) -> tuple[str, ...]:
        """The analysed terms this query searches for (empty: nothing can match)."""
        terms = query_terms(query)
        if not terms:
            return ()
        with self._lock:  # Whoosh's analyser reuses its token objects
            stems = [stem for term in terms for stem in self._term_stems(term)]
            return plan_terms(stems, self._doc_freq, self._doc_count)

    def search(self, query: str, k: int = 5) -> list[Hit]:
        k = max(1, min(int(k), MAX_K))
        stems = self.plan(query)
        if not stems:
            return []
        cached = self._cache.get((stems, k))
        if cached is not None:
            return cached
        hits = [
            Hit(
                doc_id=fields["id"],
                title=fields.get("title", ""),
                score=round(score, 4),
                snippet=snippet_for(
                    fields["content"], stems, decode_ends(fields.get("sentence_ends"))
                ),
                rank=rank,
            )
            for rank, (fields, score) in enumerate(self._engine(stems, k), start=1)
        ]
        self._cache.put((stems, k), hits)
        return hits

    def _engine(self, stems: tuple[str, ...], k: int) -> list[tuple[dict, float]]:
        """``(stored fields, score)`` of the top ``k`` matches of the planned terms."""
        with self._lock:
            if self._array.supported:
                top = self._array.top(stems, k)
                found = [(self._searcher.stored_fields(doc), score) for score, doc in top]
            else:
                found = self._whoosh_engine(stems, k)
        for fields, _ in found:
            self._recent.put(fields["id"], fields)
        return found

    def _whoosh_engine(self, stems: tuple[str, ...], k: int) -> list[tuple[dict, float]]:
        """The same search through Whoosh's own matchers (its preloading union matcher)."""
        query = Or([Term(field, s) for s in stems for field in TEXT_FIELDS])
        query.matcher_type = Or.ARRAY_MATCHER
        with self._lock:
            return [(r.fields(), float(r.score)) for r in self._searcher.search(query, limit=k)]

    def _get_uncached(self, doc_id: str) -> IndexedDocument | None:
        stored = self._recent.pop(doc_id)
        if stored is None:
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
        if not valid_doc_id(doc_id):
            return None
        return self._get_cached(doc_id)

    def close(self) -> None:
        self._searcher.close()
