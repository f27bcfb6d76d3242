"""Where indexes live and how they are built safely: a cache keyed by corpus fingerprint, schema
version, backend and entity extractor; atomic builds (temp dir + rename) under a file lock."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock
from platformdirs import user_cache_dir

from medr3_env.corpora.records import Corpus
from medr3_env.search.base import INDEX_SCHEMA_VERSION, MANIFEST_NAME, IndexManifest

CACHE_ENV_VAR = "MEDR3_CACHE_DIR"

# builder(corpus, directory, extractor_spec) -> number of documents written
IndexBuilder = Callable[[Corpus, Path], int]


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """``cache_dir`` if given, else ``$MEDR3_CACHE_DIR``, else the platform's user cache dir."""
    root = cache_dir or os.environ.get(CACHE_ENV_VAR) or user_cache_dir("medr3", appauthor=False)
    return Path(root).expanduser()


def index_key(corpus: Corpus, backend: str, extractor: str) -> str:
    """A directory name that changes whenever the corpus, schema, backend or extractor changes."""
    digest = hashlib.sha256(
        f"{corpus.fingerprint()}|{INDEX_SCHEMA_VERSION}|{backend}|{extractor}".encode()
    ).hexdigest()[:16]
    safe_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", corpus.name)[-48:].strip("_.") or "corpus"
    return f"{safe_name}-{backend}-{digest}"


def build_index_dir(
    corpus: Corpus,
    out_dir: Path,
    *,
    backend: str,
    extractor: str,
    builder: IndexBuilder,
) -> IndexManifest:
    """Build into a temporary sibling of ``out_dir`` and rename it into place when complete.

    An interrupted build leaves only a ``.tmp-*`` folder, which the next build removes, so a
    build always restarts cleanly and readers never see a half-written index.
    """
    from medr3_env import __version__

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.parent.glob(f"{out_dir.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        started = time.perf_counter()
        count = builder(corpus, tmp)
        manifest = IndexManifest(
            schema_version=INDEX_SCHEMA_VERSION,
            backend=backend,
            corpus_name=corpus.name,
            corpus_fingerprint=corpus.fingerprint(),
            doc_count=count,
            entity_extractor=extractor,
            built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            build_seconds=round(time.perf_counter() - started, 3),
            medr3_version=__version__,
        )
        manifest.write(tmp)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def ensure_cached_index(
    corpus: Corpus,
    *,
    backend: str,
    extractor: str,
    builder: IndexBuilder,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Return the cached index for this corpus, building it first if needed (process-safe)."""
    root = cache_root(cache_dir) / "indexes"
    root.mkdir(parents=True, exist_ok=True)
    final = root / index_key(corpus, backend, extractor)
    if (final / MANIFEST_NAME).exists():
        return final
    with FileLock(str(final) + ".lock", timeout=-1):
        # Another process may have finished the build while we waited for the lock.
        if not (final / MANIFEST_NAME).exists():
            build_index_dir(corpus, final, backend=backend, extractor=extractor, builder=builder)
    return final
