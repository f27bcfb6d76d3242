"""The search interface every backend implements: :class:`Searcher`, :class:`Hit`, and
:class:`IndexSearcher`, the base class that gives a local backend query planning, hit caching,
snippets, ``get`` and ``search_many``. The :class:`IndexManifest` written next to every index is
defined in :mod:`medr3_env.search.integrity` and importable from here."""

from __future__ import annotations

import inspect
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from pydantic import BaseModel, ConfigDict

from medr3_env.corpora.records import Document
from medr3_env.entities import SentenceEntities
from medr3_env.search.hit_cache import DEFAULT_CACHE_SIZE, HitCache, RecentDocuments

# The manifest lives with the integrity checks; imported from here too (as before).
from medr3_env.search.integrity import INDEX_SCHEMA_VERSION as INDEX_SCHEMA_VERSION
from medr3_env.search.integrity import MANIFEST_NAME as MANIFEST_NAME
from medr3_env.search.integrity import IndexManifest as IndexManifest
from medr3_env.search.planning import plan_terms
from medr3_env.search.query import query_terms
from medr3_env.search.snippets import decode_ends, snippet_for, snippet_from_terms, term_needles

if TYPE_CHECKING:
    from medr3_env.corpora.records import Corpus
    from medr3_env.entities import EntityExtractor

MAX_K = 50
"""The most hits one search returns (larger ``k`` is clamped)."""
MAX_DOC_ID_CHARS = 512


def valid_doc_id(doc_id: object) -> bool:
    """Whether ``doc_id`` could name a document: non-empty text, bounded, no NUL, and encodable as
    UTF-8 (a lone surrogate such as ``"\\udc80"`` names nothing and must never reach a backend)."""
    if not isinstance(doc_id, str) or not 0 < len(doc_id) <= MAX_DOC_ID_CHARS or "\x00" in doc_id:
        return False
    if doc_id.isascii():
        return True
    try:
        doc_id.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Hit(BaseModel):
    """One search result."""

    model_config = ConfigDict(frozen=True)

    doc_id: str
    title: str
    score: float
    snippet: str
    rank: int = 0


class IndexedDocument(Document):
    """A stored document with the entities of each of its sentences, computed at build time."""

    sentence_entities: SentenceEntities = ()

    @property
    def entities(self) -> frozenset[str]:
        found = {entity for sentence in self.sentence_entities for entity in sentence}
        return frozenset(found | {a.lower() for a in self.annotations})


class Searcher(ABC):
    """Full-text search over one corpus. Implementations must never raise on query text.

    A backend is a subclass registered in ``registry.backends``. A *local* backend
    (``local = True``, usually an :class:`IndexSearcher`) writes an index with :meth:`build` and
    is opened as ``cls(directory)``; a service backend (``local = False``) is opened as
    ``cls(url)``.
    """

    local: ClassVar[bool] = True
    """Whether the backend builds and opens index directories (``False``: it is given a URL)."""
    manifest: IndexManifest

    @classmethod
    def build(
        cls,
        corpus: Corpus,
        directory: Path,
        extractor: EntityExtractor,
        *,
        progress: bool | None = None,
    ) -> int:
        """Write an index of ``corpus`` into the empty ``directory``; returns the document count.
        The manifest is written around it by the caller."""
        raise NotImplementedError(f"{cls.__name__} does not build indexes")

    @classmethod  # noqa: B027  (optional hook)
    def check_available(cls) -> None:
        """Raise :class:`ImportError` saying what to install when an optional dependency is
        missing (called before a corpus is loaded)."""

    @abstractmethod
    def search(self, query: str, k: int = 5) -> list[Hit]:
        """The top ``k`` hits for free text ``query`` (empty list when nothing matches)."""

    def search_many(self, queries: Sequence[str], k: int = 5) -> list[list[Hit]]:
        """One hit list per query, in order; a query repeated in the batch is searched once.

        Backends may override this with a faster batched path (the remote backend sends the
        whole batch in one request)."""
        unique = {query: self.search(query, k) for query in dict.fromkeys(queries)}
        return [list(unique[query]) for query in queries]

    @abstractmethod
    def get(self, doc_id: str) -> IndexedDocument | None:
        """The stored document with this id, or ``None``."""

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and self.get(doc_id) is not None

    @property
    def entity_extractor(self) -> str:
        return self.manifest.entity_extractor

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Release file handles."""

    def __enter__(self) -> Searcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Match(NamedTuple):
    """One match an :meth:`IndexSearcher.engine` returns, best first."""

    score: float
    doc_id: str
    title: str
    content: str
    stored: Any
    """The backend's stored record; :meth:`IndexSearcher.document` turns it into a document."""
    sentence_ends: bytes | None = None
    """:func:`~medr3_env.search.snippets.encode_ends` of the content, when stored."""
    sentence_terms: bytes | None = None
    """:func:`~medr3_env.search.snippets.sentence_terms` of the content, when stored."""


class IndexSearcher(Searcher):
    """A local backend: subclasses implement only their engine calls.

    :meth:`stems` (analysis), :meth:`doc_freq`, :meth:`engine` (the top ``k`` matches of planned
    terms), :meth:`fetch` (a stored record by id), :meth:`document` and :meth:`build`. They open
    their index in ``__init__`` after ``super().__init__(directory)`` and set ``doc_count``.

    This class plans queries once (:func:`~medr3_env.search.planning.plan_terms` over cached
    stems and document frequencies), caches hits by planned terms and ``k``, makes snippets, and
    answers ``get`` from the records of recent hits before asking the index. Thread-safe when
    the engine calls are.
    """

    doc_count: int = 0

    def __init__(self, directory: str | os.PathLike[str], *, cache_size: int = DEFAULT_CACHE_SIZE):
        self.directory = Path(directory)
        self.manifest = IndexManifest.read(self.directory)
        self._cache = HitCache(cache_size)
        self._recent = RecentDocuments()
        self._get_cached = lru_cache(maxsize=4096)(self._get_uncached)
        self._doc_freq = lru_cache(maxsize=65_536)(self.doc_freq)
        # Query terms are single words, so analysing them one by one equals analysing the joined
        # query, and a cache hit (~0.1 µs) is far cheaper than an analyser call.
        self._term_stems = lru_cache(maxsize=65_536)(lambda term: tuple(self.stems(term)))

    # ------------------------------------------------------------------ engine calls
    @abstractmethod
    def stems(self, text: str) -> Sequence[str]:
        """The analysed (stemmed) terms of ``text``, as the index stores them."""

    @abstractmethod
    def doc_freq(self, stem: str) -> int:
        """How many documents hold ``stem`` (summed over the searched fields)."""

    @abstractmethod
    def engine(self, stems: tuple[str, ...], k: int) -> list[Match]:
        """The top ``k`` matches of the planned ``stems``, best first."""

    @abstractmethod
    def fetch(self, doc_id: str) -> Any | None:
        """The stored record of ``doc_id`` (what :class:`Match` carries), or ``None``."""

    def document(self, stored: Any) -> IndexedDocument:
        """The document of a stored record (default: the record is an :class:`IndexedDocument`)."""
        return stored  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ Searcher API
    def plan(self, query: str) -> tuple[str, ...]:
        """The analysed terms this query searches for (empty: nothing can match)."""
        terms = query_terms(query)
        if not terms:
            return ()
        return plan_terms(self.query_stems(terms), self._doc_freq, self.doc_count)

    def query_stems(self, terms: Sequence[str]) -> Sequence[str]:
        """The stems of the sanitised query ``terms``: each term analysed once and cached. A
        backend whose analyser is cheaper on the joined query may override this."""
        return [stem for term in terms for stem in self._term_stems(term)]

    def search(self, query: str, k: int = 5) -> list[Hit]:
        k = max(1, min(int(k), MAX_K))
        stems = self.plan(query)
        if not stems:
            return []
        key = (stems, k)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        hits = self._hits(self.engine(stems, k), stems)
        self._cache.put(key, hits)
        return hits

    def _hits(self, matches: list[Match], stems: tuple[str, ...]) -> list[Hit]:
        needles: tuple[bytes, ...] | None = None
        hits = []
        for rank, match in enumerate(matches, start=1):
            ends, terms = match.sentence_ends, match.sentence_terms
            if ends is not None and terms is not None:
                if needles is None:
                    needles = term_needles(stems)
                snippet = snippet_from_terms(match.content, ends, terms, needles)
            else:  # no stored sentence terms: find the terms in the text
                snippet = snippet_for(match.content, stems, decode_ends(ends))
            hits.append(
                Hit(
                    doc_id=match.doc_id,
                    title=match.title,
                    score=round(float(match.score), 4),
                    snippet=snippet,
                    rank=rank,
                )
            )
        self._recent.put_many((match.doc_id, match.stored) for match in matches)
        return hits

    def _get_uncached(self, doc_id: str) -> IndexedDocument | None:
        stored = self._recent.pop(doc_id)
        if stored is None:
            stored = self.fetch(doc_id)
        return None if stored is None else self.document(stored)

    def get(self, doc_id: str) -> IndexedDocument | None:
        if not valid_doc_id(doc_id):
            return None
        return self._get_cached(doc_id)


def _binds(function: Any, *args: object) -> bool:
    try:
        inspect.signature(function).bind(*args)
    except TypeError:
        return False
    return True


def check_backend(name: str, obj: object) -> type[Searcher]:
    """The registry's check: a concrete :class:`Searcher` subclass; a local one opens as
    ``cls(directory)`` and overrides ``build(corpus, directory, extractor, *, progress=None)``,
    a service one (``local = False``) opens as ``cls(url)``."""
    from medr3_env.plugins import PluginError

    what = f"search backend {name!r}"
    if not (isinstance(obj, type) and issubclass(obj, Searcher)):
        raise PluginError(f"{what}: expected a subclass of medr3_env.search.Searcher, got {obj!r}")
    if inspect.isabstract(obj):
        missing = ", ".join(sorted(getattr(obj, "__abstractmethods__", ())))
        raise PluginError(f"{what}: {obj.__qualname__} does not implement {missing}")
    if not isinstance(obj.__dict__.get("local", obj.local), bool):
        raise PluginError(f"{what}: the class attribute 'local' must be True or False")
    if not obj.local:
        if not _binds(obj, "http://host:8000"):
            raise PluginError(f"{what}: a service backend must open as {obj.__qualname__}(url)")
        return obj
    if not _binds(obj, "DIRECTORY"):
        raise PluginError(f"{what}: a local backend must open as {obj.__qualname__}(directory)")
    if getattr(obj.build, "__func__", obj.build) is getattr(Searcher.build, "__func__", None):
        raise PluginError(
            f"{what}: a local backend must define the classmethod "
            "build(corpus, directory, extractor, *, progress=None)"
        )
    try:
        inspect.signature(obj.build).bind("corpus", "directory", "extractor", progress=None)
    except (TypeError, ValueError):
        raise PluginError(
            f"{what}: {obj.__qualname__}.build must accept "
            f"(corpus, directory, extractor, *, progress=None), got "
            f"{obj.__qualname__}.build{inspect.signature(obj.build)}"
        ) from None
    return obj
