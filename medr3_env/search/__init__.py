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
from medr3_env.paths import cache_root
from medr3_env.plugins import registry
from medr3_env.search.base import (
    Hit,
    IndexedDocument,
    IndexManifest,
    IndexSearcher,
    Match,
    Searcher,
)
from medr3_env.search.index_cache import NotAnIndexError, build_index_dir, open_cached
from medr3_env.search.integrity import (
    BuildLockError,
    IndexCorruptError,
    open_checked,
    verify_index,
)
from medr3_env.search.query import query_terms

__all__ = [
    "BuildLockError",
    "Hit",
    "IndexCorruptError",
    "IndexManifest",
    "IndexSearcher",
    "IndexedDocument",
    "Match",
    "NotAnIndexError",
    "Searcher",
    "backend_class",
    "build_index",
    "build_searcher",
    "cache_root",
    "local_backends",
    "open_index",
    "query_terms",
    "verify_index",
]


def backend_class(backend: str) -> type[Searcher]:
    """The registered backend ``backend`` (``registry.backends``); an unknown name raises
    :class:`~medr3_env.plugins.UnknownPluginError` listing the registered ones."""
    return registry.backends.get(backend)  # type: ignore[no-any-return]


def local_backends() -> list[str]:
    """The registered backends that build and open a local index."""
    return [name for name in registry.backends.names() if backend_class(name).local]


def _builder(
    backend: str, extractor_spec: str, progress: bool | None
) -> tuple[str, Callable[[Corpus, Path], int]]:
    cls = backend_class(backend)
    if not cls.local:
        raise ValueError(
            f"search backend {backend!r} does not build indexes; "
            f"local backends: {', '.join(local_backends())}"
        )
    cls.check_available()  # fail before loading the corpus when an extra is missing
    extractor = load_extractor(extractor_spec)
    return extractor.name, lambda corpus, d: cls.build(corpus, d, extractor, progress=progress)


def build_index(
    corpus: str | Corpus | None,
    out_dir: str | os.PathLike[str],
    *,
    backend: str = "whoosh",
    entity_extractor: str = "auto",
    progress: bool | None = None,
    resume: bool = True,
) -> IndexManifest:
    """Build an index for ``corpus`` into ``out_dir`` (replacing it atomically, under
    ``<out_dir>.lock``). An interrupted tantivy build of the same corpus and options continues
    from its last commit; ``resume=False`` starts over (Whoosh builds always start over).

    Raises:
        NotAnIndexError: ``out_dir`` exists and is neither empty nor a MedR3 index (nothing is
            touched).
        BuildLockError: the lock file cannot be created (not: it is held, which is waited for).
    """
    loaded = load_corpus(corpus)
    extractor_name, builder = _builder(backend, entity_extractor, progress)
    return build_index_dir(
        loaded,
        Path(out_dir),
        backend=backend,
        extractor=extractor_name,
        builder=builder,
        resume=resume,
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
    ``backend`` names any backend in ``registry.backends`` (``medr3 plugins``).
    """
    cls = backend_class(backend)
    if not cls.local:
        if not url:
            raise ValueError(
                f"backend={backend!r} needs url='http://HOST:PORT' of a medr3 serve server"
            )
        return cls(url)  # type: ignore[call-arg]
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
