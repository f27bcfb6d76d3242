"""Search over a corpus: the :class:`Searcher` interface, its backends and :func:`build_searcher`.

>>> from medr3_env.search import build_searcher
>>> searcher = build_searcher()              # starter corpus, Whoosh, cached index
>>> hits = searcher.search("digoxin toxicity", k=3)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from medr3_env.corpora.records import Corpus
from medr3_env.corpora.specs import load_corpus
from medr3_env.entities import load_extractor
from medr3_env.search.base import Hit, IndexedDocument, IndexManifest, Searcher
from medr3_env.search.cache import build_index_dir, cache_root, open_cached
from medr3_env.search.integrity import IndexCorruptError, open_checked, verify_index
from medr3_env.search.query import query_terms

BACKENDS = ("whoosh", "tantivy")
"""Backends that build and open a local index; ``"remote"`` searches a ``medr3 serve`` server."""
REMOTE = "remote"

__all__ = [
    "BACKENDS",
    "REMOTE",
    "Hit",
    "IndexCorruptError",
    "IndexManifest",
    "IndexedDocument",
    "Searcher",
    "build_index",
    "build_searcher",
    "cache_root",
    "open_index",
    "query_terms",
    "verify_index",
]


def _unknown_backend(backend: str) -> ValueError:
    return ValueError(
        f"unknown search backend {backend!r}; available: {', '.join((*BACKENDS, REMOTE))}"
    )


def _builder(backend: str, extractor_spec: str, progress: bool | None):
    if backend not in BACKENDS:
        raise _unknown_backend(backend)
    build: Callable[..., int]
    if backend == "tantivy":
        from medr3_env.search.tantivy_backend import build_tantivy_index, import_tantivy

        import_tantivy()  # fail before loading the corpus when the extra is missing
        build = build_tantivy_index
    else:
        from medr3_env.search.whoosh_backend import build_whoosh_index

        build = build_whoosh_index
    extractor = load_extractor(extractor_spec)
    return extractor.name, lambda corpus, d: build(corpus, d, extractor, progress=progress)


def build_index(
    corpus: str | Corpus | None,
    out_dir: str | os.PathLike[str],
    *,
    backend: str = "whoosh",
    entity_extractor: str = "auto",
    progress: bool | None = None,
) -> IndexManifest:
    """Build an index for ``corpus`` into ``out_dir`` (replacing it atomically, under
    ``<out_dir>.lock``)."""
    loaded = load_corpus(corpus)
    extractor_name, builder = _builder(backend, entity_extractor, progress)
    return build_index_dir(
        loaded, Path(out_dir), backend=backend, extractor=extractor_name, builder=builder
    )


def open_index(directory: str | os.PathLike[str]) -> Searcher:
    """Open an index directory with the backend its manifest records, after the cheap integrity
    check (:func:`~medr3_env.search.integrity.open_checked`); a damaged or foreign directory
    raises :class:`IndexCorruptError`."""
    return open_checked(directory)


def build_searcher(
    corpus: str | Corpus | None = None,
    backend: str = "whoosh",
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    index_dir: str | os.PathLike[str] | None = None,
    entity_extractor: str = "auto",
    progress: bool | None = None,
    url: str | None = None,
    **options: Any,
) -> Searcher:
    """A ready :class:`Searcher` for ``corpus`` (``None``: the starter corpus).

    The index is built on first use into the cache (``cache_dir``, ``$MEDR3_CACHE_DIR`` or the
    user cache dir), keyed by the corpus fingerprint, and reused while the corpus is unchanged.
    ``index_dir`` opens a prebuilt index instead (``medr3 index build``). ``backend="remote"``
    with ``url="http://host:port"`` searches a ``medr3 serve`` server instead of a local index.
    ``entity_extractor="none"`` builds a search-only index without document entities.
    """
    if backend == REMOTE:
        if not url:
            raise ValueError(
                "backend='remote' needs url='http://HOST:PORT' of a medr3 serve server"
            )
        from medr3_env.search.remote_backend import RemoteSearcher

        return RemoteSearcher(url)
    if index_dir is not None:
        return open_index(index_dir)
    loaded = load_corpus(corpus, **options)
    extractor_name, builder = _builder(backend, entity_extractor, progress)
    return open_cached(
        loaded,
        open_index,
        backend=backend,
        extractor=extractor_name,
        builder=builder,
        cache_dir=cache_dir,
    )
