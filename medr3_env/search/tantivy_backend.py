"""The fast backend: a tantivy (Rust) index on disk with the same query semantics as Whoosh.

Queries are never given to tantivy's query parser (it raises on ordinary text such as
``type 1 diabetes: 10 km``). The sanitised terms of :func:`~medr3_env.search.query.query_terms`
are analysed with tantivy's English stemming analyser, planned like Whoosh
(:func:`~medr3_env.search.planning.plan_terms`) and combined into a boolean query of term
queries over ``title`` (boosted 1.5, as in Whoosh) and ``content``, scored with BM25.
Sentence boundaries are stored with each document at build time, so a hit's snippet
(:func:`~medr3_env.search.snippets.snippet_for`) costs a few substring searches.
Needs the ``fast`` extra: ``pip install 'medr3-env[fast]'``.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from types import ModuleType

from medr3_env.corpora.records import Corpus, Document
from medr3_env.entities import EntityExtractor, SentenceEntities
from medr3_env.search.base import MAX_K, Hit, IndexedDocument, IndexManifest, Searcher, valid_doc_id
from medr3_env.search.hit_cache import DEFAULT_CACHE_SIZE, HitCache, RecentDocuments
from medr3_env.search.indexing import annotated_batches
from medr3_env.search.planning import plan_terms
from medr3_env.search.query import MAX_TERM_CHARS, query_terms
from medr3_env.search.snippets import (
    encode_ends,
    sentence_ends,
    sentence_terms,
    snippet_for,
    snippet_from_terms,
    term_needles,
)

TOKENIZER = "en_stem"
"""tantivy's built-in English analyser: simple tokenizer, long-token removal, lower-casing and
the Snowball English stemmer. Queries are analysed with the same chain."""
TITLE_BOOST = 1.5
TEXT_FIELDS = ("title", "content")
INSTALL_HINT = "the tantivy backend needs the 'tantivy' package: pip install 'medr3-env[fast]'"


def import_tantivy() -> ModuleType:
    """The ``tantivy`` module, or an :class:`ImportError` that says how to install it."""
    try:
        import tantivy
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return tantivy


def _schema(tantivy: ModuleType):
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
    for field in TEXT_FIELDS:
        builder.add_text_field(field, stored=True, tokenizer_name=TOKENIZER, index_option="freq")
    builder.add_bytes_field("entities", stored=True)
    builder.add_bytes_field("annotations", stored=True)
    builder.add_bytes_field("sentence_ends", stored=True)
    builder.add_bytes_field("sentence_terms", stored=True)
    return builder.build()


def _analyser(tantivy: ModuleType):
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(MAX_TERM_CHARS))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


def build_tantivy_index(
    corpus: Corpus,
    directory: Path,
    extractor: EntityExtractor,
    *,
    progress: bool | None = None,
    batch_size: int = 256,
    memory_mb: int = 256,
    threads: int | None = None,
) -> int:
    """Stream ``corpus`` into a new tantivy index in ``directory``; returns the document count.

    Memory is bounded by ``memory_mb`` (tantivy's indexing heap, shared by ``threads`` indexing
    threads; default: every core this process may use, up to 8, tantivy's own ceiling) plus one
    batch of documents."""
    tantivy = import_tantivy()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = threads or max(1, min(8, cores or 1))
    index = tantivy.Index(_schema(tantivy), path=str(directory), reuse=False)
    writer = index.writer(heap_size=max(memory_mb, 16 * threads) * 2**20, num_threads=threads)
    analyse = _analyser(tantivy).analyze
    count = 0
    try:
        for batch in annotated_batches(corpus, extractor, batch_size=batch_size, progress=progress):
            for doc, entities in batch:
                writer.add_document(_record(tantivy, doc, entities, analyse))
            count += len(batch)
        writer.commit()
        writer.wait_merging_threads()
    except BaseException:
        writer.rollback()
        raise
    return count


def _record(tantivy: ModuleType, doc: Document, entities: SentenceEntities, analyse):
    record = tantivy.Document()
    record.add_text("id", doc.id)
    record.add_text("title", doc.title)
    record.add_text("content", doc.content)
    record.add_bytes("entities", json.dumps(entities).encode("utf-8"))
    record.add_bytes("annotations", json.dumps(list(doc.annotations)).encode("utf-8"))
    ends = sentence_ends(doc.content)
    record.add_bytes("sentence_ends", encode_ends(ends))
    record.add_bytes("sentence_terms", sentence_terms(doc.content, ends, analyse))
    return record


class TantivySearcher(Searcher):
    """BM25 search over an index built by :func:`build_tantivy_index`. Thread-safe."""

    def __init__(self, directory: str | Path, *, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self.directory = Path(directory)
        self.manifest = IndexManifest.read(self.directory)
        self._tantivy = import_tantivy()
        self._index = self._tantivy.Index.open(str(self.directory))
        self._schema = self._index.schema
        self._searcher = self._index.searcher()
        self._doc_count = self._searcher.num_docs
        self._analyser = _analyser(self._tantivy)
        self._cache = HitCache(cache_size)
        self._recent = RecentDocuments()
        self._get_cached = lru_cache(maxsize=4096)(self._get_uncached)
        self._doc_freq = lru_cache(maxsize=65_536)(self._doc_freq_uncached)

    def _stems(self, text: str) -> list[str]:
        return self._analyser.analyze(text)

    def _doc_freq_uncached(self, stem: str) -> int:
        return sum(self._searcher.doc_freq(field, stem) for field in TEXT_FIELDS)

    def plan(self, query: str) -> tuple[str, ...]:
        """The analysed terms this query searches for (empty: nothing can match)."""
        terms = query_terms(query)
        if not terms:
            return ()
        return plan_terms(self._stems(" ".join(terms)), self._doc_freq, self._doc_count)

    def _query(self, stems: tuple[str, ...]):
        query_cls, should = self._tantivy.Query, self._tantivy.Occur.Should
        clauses = []
        for stem in stems:
            title = query_cls.term_query(self._schema, "title", stem, index_option="freq")
            clauses.append((should, query_cls.boost_query(title, TITLE_BOOST)))
            content = query_cls.term_query(self._schema, "content", stem, index_option="freq")
            clauses.append((should, content))
        return query_cls.boolean_query(clauses)

    def search(self, query: str, k: int = 5) -> list[Hit]:
        k = max(1, min(int(k), MAX_K))
        stems = self.plan(query)
        if not stems:
            return []
        key = (stems, k)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        hits = self._hits(self._engine(stems, k), stems)
        self._cache.put(key, hits)
        return hits

    def _engine(self, stems: tuple[str, ...], k: int) -> list[tuple[float, object]]:
        """``(score, stored document)`` of the top ``k`` matches of the planned terms."""
        searcher = self._searcher
        found = searcher.search(self._query(stems), limit=k, count=False).hits
        return [(score, searcher.doc(address)) for score, address in found]

    def _hits(self, found: list[tuple[float, object]], stems: tuple[str, ...]) -> list[Hit]:
        needles = term_needles(stems)
        hits = []
        for rank, (score, stored) in enumerate(found, start=1):
            get = stored.get_first  # type: ignore[attr-defined]
            content = get("content") or ""
            ends, terms = get("sentence_ends"), get("sentence_terms")
            if ends is not None and terms is not None:
                snippet = snippet_from_terms(content, ends, terms, needles)
            else:  # an index built before sentence data was stored
                snippet = snippet_for(content, stems)
            doc_id = get("id")
            self._recent.put(doc_id, stored)
            hits.append(
                Hit(
                    doc_id=doc_id,
                    title=get("title") or "",
                    score=round(float(score), 4),
                    snippet=snippet,
                    rank=rank,
                )
            )
        return hits

    def _get_uncached(self, doc_id: str) -> IndexedDocument | None:
        stored = self._recent.pop(doc_id)
        if stored is None:
            query = self._tantivy.Query.term_query(self._schema, "id", doc_id, index_option="basic")
            found = self._searcher.search(query, limit=1, count=False).hits
            if not found:
                return None
            stored = self._searcher.doc(found[0][1])
        entities = json.loads(bytes(stored.get_first("entities") or b"[]"))
        annotations = json.loads(bytes(stored.get_first("annotations") or b"[]"))
        return IndexedDocument(
            id=stored.get_first("id"),
            title=stored.get_first("title") or "",
            content=stored.get_first("content") or "",
            annotations=tuple(annotations),
            sentence_entities=tuple(tuple(sentence) for sentence in entities),
        )

    def get(self, doc_id: str) -> IndexedDocument | None:
        if not valid_doc_id(doc_id):
            return None
        return self._get_cached(doc_id)
