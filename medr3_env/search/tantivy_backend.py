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
import logging
import os
import time
from collections import deque
from collections.abc import Iterator, Sequence
from functools import partial
from itertools import islice
from multiprocessing.pool import AsyncResult
from pathlib import Path
from types import ModuleType
from typing import ClassVar

from medr3_env.corpora.records import Corpus, Document
from medr3_env.entities import EntityExtractor, SentenceEntities
from medr3_env.search.base import IndexedDocument, IndexSearcher, Match
from medr3_env.search.checkpoint import SkipCommitted, has_checkpoint, record_commit
from medr3_env.search.hit_cache import DEFAULT_CACHE_SIZE
from medr3_env.search.indexing import annotated_batches, indexing_progress
from medr3_env.search.integrity import IndexCorruptError, debug_pause
from medr3_env.search.parallel import OrderedPool, WorkerStartError, default_workers
from medr3_env.search.query import MAX_TERM_CHARS
from medr3_env.search.snippets import encode_ends, sentence_ends, sentence_terms

logger = logging.getLogger(__name__)

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


COMMIT_EVERY = 100_000
"""Documents between the commits of a resumable build (each is a checkpoint to resume from)."""
COMMIT_SECONDS = 300.0
"""...or seconds, whichever comes first: a killed build loses at most this much work."""
PARALLEL_AFTER = 20_000
"""Documents read before preparation moves to worker processes (small corpora never start one)."""


def build_tantivy_index(
    corpus: Corpus,
    directory: Path,
    extractor: EntityExtractor,
    *,
    progress: bool | None = None,
    batch_size: int = 256,
    memory_mb: int = 256,
    threads: int | None = None,
    commit_every: int = COMMIT_EVERY,
    commit_seconds: float = COMMIT_SECONDS,
    workers: int | None = None,
    parallel_after: int = PARALLEL_AFTER,
) -> int:
    """Stream ``corpus`` into a new tantivy index in ``directory``; returns the document count.

    Memory is bounded by ``memory_mb`` (tantivy's indexing heap, shared by ``threads`` indexing
    threads; default: every core this process may use, up to 8, tantivy's own ceiling) plus a
    few batches of documents per worker.

    Documents are prepared (entities, stored fields, snippet data) in ``workers`` processes
    (default: :func:`~medr3_env.search.parallel.default_workers`; 0: in this process) once
    ``parallel_after`` documents have been read, so small corpora never start a process; the
    index holds the same documents in the same order either way.

    When ``directory`` is the work directory of a resumable build (it holds a
    :mod:`~medr3_env.search.checkpoint`), the index is committed every ``commit_every``
    documents or ``commit_seconds``, and a directory that already holds committed documents is
    continued: its first ``num_docs`` documents of the stream are read but not indexed again.
    """
    tantivy = import_tantivy()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = threads or max(1, min(8, cores or 1))
    directory = Path(directory)
    resumable = has_checkpoint(directory)
    committed = 0
    if resumable and tantivy.Index.exists(str(directory)):
        index = tantivy.Index.open(str(directory))
        committed = index.searcher().num_docs
    else:
        index = tantivy.Index(_schema(tantivy), path=str(directory), reuse=False)
    stream: Corpus = corpus
    if committed:
        stream = SkipCommitted(corpus, committed, partial(_holds, tantivy, index))
    writer = index.writer(heap_size=max(memory_mb, 16 * threads) * 2**20, num_threads=threads)
    workers = default_workers() if workers is None else workers
    count = committed
    pending, last_commit = 0, time.monotonic()
    try:
        batches = _prepared(
            stream,
            extractor,
            index.schema,
            batch_size=batch_size,
            progress=progress,
            workers=workers,
            parallel_after=parallel_after,
        )
        for batch in batches:
            for record in batch:
                writer.add_document(record)
            count += len(batch)
            pending += len(batch)
            if resumable and (
                pending >= commit_every or time.monotonic() - last_commit >= commit_seconds
            ):
                writer.commit()
                record_commit(directory, count)
                pending, last_commit = 0, time.monotonic()
                debug_pause("committed")
        writer.commit()
        if resumable:
            record_commit(directory, count)
        writer.garbage_collect_files()
        writer.wait_merging_threads()
    except BaseException:
        writer.rollback()
        raise
    index.reload()
    held = index.searcher().num_docs
    if held != count:
        raise IndexCorruptError(
            directory,
            f"the build wrote {held} documents, the corpus stream has {count}",
            "rebuild it (a rerun starts over)",
        )
    return count


class _Preparer:
    """Documents to tantivy records: :func:`~medr3_env.search.indexing.annotated_batches`
    (entities per sentence, one extractor call per batch), then :func:`_record`. Made in each
    worker process, and in the building process for the first batches."""

    def __init__(self, extractor: EntityExtractor, batch_size: int) -> None:
        self.tantivy = import_tantivy()
        self.analyse = _analyser(self.tantivy).analyze
        self.extractor = extractor
        self.batch_size = batch_size

    def records(self, docs: list[Document]) -> list:
        batches = annotated_batches(
            Corpus.from_documents("batch", docs),
            self.extractor,
            batch_size=len(docs),
            progress=False,
        )
        return [
            _record(self.tantivy, doc, found, self.analyse)
            for batch in batches
            for doc, found in batch
        ]

    def fields(self, docs: list[Document]) -> list[dict]:
        """:meth:`records` as ``{field: [values]}`` dicts (what a worker sends back)."""
        return [record.to_dict() for record in self.records(docs)]


def _prepared(
    corpus: Corpus,
    extractor: EntityExtractor,
    schema,
    *,
    batch_size: int,
    progress: bool | None,
    workers: int,
    parallel_after: int,
) -> Iterator[list]:
    """Yield the tantivy records of ``corpus`` batch by batch, in corpus order, with a progress
    bar; batches after the first ``parallel_after`` documents are prepared by ``workers``
    processes, at most ``2 * workers`` batches ahead of the index."""
    tantivy = import_tantivy()
    local = _Preparer(extractor, batch_size)
    documents = iter(corpus)
    pool: OrderedPool | None = None
    pending: deque[list | AsyncResult] = deque()
    read = 0
    with indexing_progress(corpus, progress) as advance:
        try:
            while True:
                batch = list(islice(documents, batch_size))
                read += len(batch)
                if batch and pool is None and workers > 0 and read > parallel_after:
                    try:
                        pool = OrderedPool(workers, _Preparer, (extractor, batch_size), "fields")
                    except WorkerStartError as exc:
                        logger.warning("preparing documents in this process: %s", exc)
                        workers = 0
                if batch:
                    pending.append(pool.submit(batch) if pool else local.records(batch))
                while pending and (
                    not batch
                    or isinstance(pending[0], list)
                    or (pool is not None and len(pending) > pool.in_flight)
                ):
                    item = pending.popleft()
                    if isinstance(item, list):
                        records = item
                    else:
                        records = [tantivy.Document.from_dict(f, schema) for f in item.get()]
                    yield records
                    advance(len(records))
                if not batch:
                    return
        finally:
            if pool is not None:
                pool.close()


def _holds(tantivy: ModuleType, index, doc_id: str) -> bool:
    query = tantivy.Query.term_query(index.schema, "id", doc_id, index_option="basic")
    return bool(index.searcher().search(query, limit=1, count=False).hits)


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


class TantivySearcher(IndexSearcher):
    """BM25 search over an index built by :func:`build_tantivy_index`. Thread-safe."""

    resumable: ClassVar[bool] = True
    """An interrupted build continues from its last commit (:mod:`~medr3_env.search.checkpoint`)."""

    def __init__(self, directory: str | Path, *, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        super().__init__(directory, cache_size=cache_size)
        self._tantivy = import_tantivy()
        self._index = self._tantivy.Index.open(str(self.directory))
        self._schema = self._index.schema
        self._searcher = self._index.searcher()
        self.doc_count = self._searcher.num_docs
        self._analyser = _analyser(self._tantivy)

    @classmethod
    def check_available(cls) -> None:
        import_tantivy()

    @classmethod
    def build(
        cls,
        corpus: Corpus,
        directory: Path,
        extractor: EntityExtractor,
        *,
        progress: bool | None = None,
    ) -> int:
        return build_tantivy_index(corpus, directory, extractor, progress=progress)

    def stems(self, text: str) -> list[str]:
        return self._analyser.analyze(text)  # type: ignore[no-any-return]

    def query_stems(self, terms: Sequence[str]) -> list[str]:
        # One call into Rust for the whole query beats a Python cache lookup per word.
        return self.stems(" ".join(terms))

    def doc_freq(self, stem: str) -> int:
        return sum(self._searcher.doc_freq(field, stem) for field in TEXT_FIELDS)

    def _query(self, stems: tuple[str, ...]):
        query_cls, should = self._tantivy.Query, self._tantivy.Occur.Should
        clauses = []
        for stem in stems:
            title = query_cls.term_query(self._schema, "title", stem, index_option="freq")
            clauses.append((should, query_cls.boost_query(title, TITLE_BOOST)))
            content = query_cls.term_query(self._schema, "content", stem, index_option="freq")
            clauses.append((should, content))
        return query_cls.boolean_query(clauses)

    def engine(self, stems: tuple[str, ...], k: int) -> list[Match]:
        searcher = self._searcher
        matches = []
        for score, address in searcher.search(self._query(stems), limit=k, count=False).hits:
            stored = searcher.doc(address)
            get = stored.get_first
            matches.append(
                Match(
                    score,
                    get("id"),
                    get("title") or "",
                    get("content") or "",
                    stored,
                    get("sentence_ends"),
                    get("sentence_terms"),
                )
            )
        return matches

    def fetch(self, doc_id: str) -> object | None:
        query = self._tantivy.Query.term_query(self._schema, "id", doc_id, index_option="basic")
        found = self._searcher.search(query, limit=1, count=False).hits
        return self._searcher.doc(found[0][1]) if found else None

    def document(self, stored) -> IndexedDocument:
        entities = json.loads(bytes(stored.get_first("entities") or b"[]"))
        annotations = json.loads(bytes(stored.get_first("annotations") or b"[]"))
        return IndexedDocument(
            id=stored.get_first("id"),
            title=stored.get_first("title") or "",
            content=stored.get_first("content") or "",
            annotations=tuple(annotations),
            sentence_entities=tuple(tuple(sentence) for sentence in entities),
        )
