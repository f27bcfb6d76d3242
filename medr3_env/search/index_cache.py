"""Where indexes live and how they are built safely: a cache keyed by corpus fingerprint, schema
version, backend and entity extractor; atomic builds under a lock; damaged entries rebuilt."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

from medr3_env.corpora.errors import EmptyCorpusError
from medr3_env.corpora.records import Corpus, Document
from medr3_env.paths import cache_root
from medr3_env.search.base import INDEX_SCHEMA_VERSION, MANIFEST_NAME, IndexManifest
from medr3_env.search.checkpoint import (
    CHECKPOINT_NAME,
    BuildCheckpoint,
    BuildIdentity,
    StaleCheckpointError,
    mismatch,
)
from medr3_env.search.integrity import (
    BuildLock,
    IndexCacheWarning,
    IndexCorruptError,
    debug_pause,
    index_files,
    verify_index,
)
from medr3_env.version import __version__

logger = logging.getLogger(__name__)

# builder(corpus, directory) -> number of documents written
IndexBuilder = Callable[[Corpus, Path], int]
T = TypeVar("T")


def index_key(corpus: Corpus, backend: str, extractor: str) -> str:
    """A directory name that changes whenever the corpus, schema, backend or extractor changes."""
    digest = hashlib.sha256(
        f"{corpus.fingerprint()}|{INDEX_SCHEMA_VERSION}|{backend}|{extractor}".encode()
    ).hexdigest()[:16]
    safe_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", corpus.name)[-48:].strip("_.") or "corpus"
    return f"{safe_name}-{backend}-{digest}"


class NotAnIndexError(FileExistsError):
    """The output path of a build exists and is not a MedR3 index (a file, or a folder that is
    neither empty nor holds a ``manifest.json``): a build never replaces it."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self.what = what
        super().__init__(
            f"{path} exists and is not a MedR3 index ({what}); pick another output directory "
            "or remove it"
        )


def _foreign(path: Path, *, own_marker: str) -> str | None:
    """Why ``path`` is not for a build to replace (``None``: missing, an empty folder, or a
    folder holding ``own_marker``)."""
    if not path.exists() and not path.is_symlink():
        return None
    if path.is_symlink() or not path.is_dir():
        return "a symbolic link" if path.is_symlink() else "a file, not a folder"
    if (path / own_marker).is_file():
        return None
    # Empty, or only the first write of the marker, cut short (``.NAME.tmp-PID``).
    if all(entry.name.startswith(f".{own_marker}.tmp-") for entry in path.iterdir()):
        return None
    return f"no {own_marker}"


def check_replaceable(out_dir: Path) -> None:
    """Raise :class:`NotAnIndexError` unless a build may replace ``out_dir`` and its
    ``.partial`` work folder: each missing, empty, or MedR3's own (a manifest, a checkpoint)."""
    what = _foreign(out_dir, own_marker=MANIFEST_NAME)
    if what is not None:
        raise NotAnIndexError(out_dir, what)
    partial = partial_dir(out_dir)
    what = _foreign(partial, own_marker=CHECKPOINT_NAME)
    if what is not None:
        raise NotAnIndexError(partial, what)


_LEFTOVER = re.compile(r"\.(?:tmp-[A-Za-z0-9_]{8}|old-\d+-\d+)")


def _remove_aside(directory: Path) -> None:
    """Move ``directory`` out of the way (one rename), then delete it."""
    if not directory.exists():
        return
    aside = directory.with_name(f"{directory.name}.old-{os.getpid()}-{time.monotonic_ns()}")
    os.replace(directory, aside)
    shutil.rmtree(aside, ignore_errors=True)


def _clear_leftovers(out_dir: Path) -> None:
    """Delete what interrupted builds of ``out_dir`` left (callers hold its build lock); a
    ``.partial`` folder is kept for :func:`_work_dir` to resume or discard."""
    for pattern in (f"{out_dir.name}.tmp-*", f"{out_dir.name}.old-*"):
        for stale in out_dir.parent.glob(pattern):
            # Only the names this module makes (mkdtemp's 8 characters, pid and clock), and
            # only folders: a user's "notes.old-2019" beside --out notes is not ours.
            suffix = stale.name[len(out_dir.name) :]
            if not _LEFTOVER.fullmatch(suffix) or stale.is_symlink() or not stale.is_dir():
                continue
            logger.info("removing %s, left by an interrupted build", stale)
            shutil.rmtree(stale, ignore_errors=True)


def _identity(corpus: Corpus, backend: str, extractor: str) -> BuildIdentity:
    return BuildIdentity(
        schema_version=INDEX_SCHEMA_VERSION,
        backend=backend,
        entity_extractor=extractor,
        corpus_name=corpus.name,
        corpus_fingerprint=corpus.fingerprint(),
        loader_options=dict(corpus.loader_options),
        medr3_version=__version__,
    )


def partial_dir(out_dir: Path) -> Path:
    """Where a resumable build of ``out_dir`` commits its work until it is complete."""
    return out_dir.with_name(f"{out_dir.name}.partial")


def _resumable(backend: str) -> bool:
    from medr3_env.plugins import UnknownPluginError, registry

    try:
        return bool(getattr(registry.backends.get(backend), "resumable", False))
    except UnknownPluginError:
        return False


def _work_dir(out_dir: Path, identity: BuildIdentity, *, resumable: bool, resume: bool) -> Path:
    """The directory to build in: ``<out>.partial`` (resumed when its checkpoint matches) for
    a resumable backend, else a fresh ``<out>.tmp-*``. Callers hold the build lock."""
    partial = partial_dir(out_dir)
    if partial.exists():
        checkpoint = BuildCheckpoint.read(partial)
        reason: str | None
        if not resumable:
            reason = f"a {identity.backend} build does not resume"
        elif not resume:
            reason = "a restart was asked for"
        else:
            reason = mismatch(checkpoint, identity)
        if reason is None and checkpoint is not None and not checkpoint.documents_committed:
            reason = "it stopped before its first commit, so the build starts over"
        if reason is None and checkpoint is not None:
            for stale in partial.glob(".*.tmp-*"):  # a checkpoint or manifest write cut short
                stale.unlink(missing_ok=True)
            logger.warning(
                "resuming the interrupted build in %s: %s documents were committed at its "
                "last checkpoint",
                partial,
                f"{checkpoint.documents_committed:,}",
            )
            return partial
        logger.warning("discarding the interrupted build in %s: %s", partial, reason)
        shutil.rmtree(partial, ignore_errors=True)
    if not resumable:
        return Path(tempfile.mkdtemp(prefix=f"{out_dir.name}.tmp-", dir=out_dir.parent))
    partial.mkdir()
    BuildCheckpoint(identity=identity).write(partial)
    return partial


def _build_locked(
    corpus: Corpus,
    out_dir: Path,
    *,
    backend: str,
    extractor: str,
    builder: IndexBuilder,
    resume: bool = True,
) -> IndexManifest:

    _clear_leftovers(out_dir)
    identity = _identity(corpus, backend, extractor)
    resumable = _resumable(backend)
    tmp = _work_dir(out_dir, identity, resumable=resumable, resume=resume)
    resumed = resumable and (tmp / "meta.json").exists()
    try:
        started = time.perf_counter()
        probe: list[str] = []
        try:
            count = builder(_RecordingFirstId(corpus, probe), tmp)
        except StaleCheckpointError as exc:
            logger.warning("discarding the interrupted build in %s: %s", tmp, exc)
            shutil.rmtree(tmp, ignore_errors=True)
            tmp = _work_dir(out_dir, identity, resumable=resumable, resume=False)
            probe.clear()
            resumed = False
            count = builder(_RecordingFirstId(corpus, probe), tmp)
        debug_pause("files-written")
        stats = corpus.stats
        if count == 0:
            shutil.rmtree(tmp, ignore_errors=True)
            skipped = f"; {stats.skipped} records were skipped" if stats and stats.skipped else ""
            raise EmptyCorpusError(
                f"corpus {corpus.name!r} has no documents{skipped}; nothing to index"
            )
        manifest = IndexManifest(
            schema_version=INDEX_SCHEMA_VERSION,
            backend=backend,
            corpus_name=corpus.name,
            corpus_fingerprint=identity.corpus_fingerprint,
            doc_count=count,
            entity_extractor=extractor,
            built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            build_seconds=round(time.perf_counter() - started, 3),
            medr3_version=__version__,
            loader_options=dict(corpus.loader_options),
            duplicate_ids=stats.duplicates if stats else 0,
            skipped_records=stats.skipped if stats else 0,
            probe_id=probe[0] if probe else None,
            files=index_files(tmp, exclude=(MANIFEST_NAME, CHECKPOINT_NAME)),
        )
        manifest.write(tmp)
        if resumed:
            # A resumed index passes the full check before it replaces anything: every file's
            # checksum, the backend's document count against the stream's, a test query.
            verify_index(tmp)
        debug_pause("manifest-written")
        # Readers of the old copy keep their open files; new readers see the new copy.
        _remove_aside(out_dir)
        os.replace(tmp, out_dir)
        (out_dir / CHECKPOINT_NAME).unlink(missing_ok=True)
        debug_pause("renamed")
    except BaseException as exc:
        # A resumable build keeps its committed work for the next run, unless it is wrong.
        if not resumable or isinstance(exc, IndexCorruptError):
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


class _RecordingFirstId(Corpus):
    """``corpus`` as the builder sees it, noting the first document id (the manifest's probe)."""

    def __init__(self, corpus: Corpus, first: list[str]) -> None:
        def documents() -> Iterator[Document]:
            for doc in corpus:
                if not first:
                    first.append(doc.id)
                yield doc

        super().__init__(corpus.name, documents)
        self._inner = corpus

    @property  # type: ignore[override]
    def size_hint(self) -> int | None:
        return self._inner.size_hint  # counted lazily by some corpora (a MedRAG file's lines)

    @size_hint.setter
    def size_hint(self, value: int | None) -> None:
        pass


def build_index_dir(
    corpus: Corpus,
    out_dir: Path,
    *,
    backend: str,
    extractor: str,
    builder: IndexBuilder,
    resume: bool = True,
) -> IndexManifest:
    """Build into a sibling of ``out_dir`` and rename it into place when complete.

    The build holds ``<out_dir>.lock``, which the kernel releases when its holder dies, and
    readers never see a half-written index. A build killed at any point (SIGKILL included)
    leaves a ``.tmp-*`` folder, which the next build removes (a restart), or, for a resumable
    backend (tantivy), ``<out_dir>.partial`` with the documents committed so far and a
    checkpoint: the next build of the same corpus, options, schema and extractor continues
    from there (``resume=False``: starts over), verifies the result fully and renames it.

    An existing ``out_dir`` (or ``<out_dir>.partial``) that is not MedR3's own (see
    :func:`check_replaceable`) raises :class:`NotAnIndexError` and is left as it is; one that is
    the working directory or holds it raises ``ValueError`` (replacing it would leave the process
    in a deleted folder).
    """
    out_dir = Path(os.path.abspath(Path(out_dir).expanduser()))
    here = Path.cwd().resolve()
    if out_dir.resolve() in (here, *here.parents):
        raise ValueError(
            f"{out_dir} is the current directory or holds it, and a build replaces it as a "
            "whole; build into a folder of its own, e.g. index/"
        )
    check_replaceable(out_dir)  # before the lock file is made beside it
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with BuildLock(out_dir):
        check_replaceable(out_dir)  # again: what another build left while we waited
        debug_pause("locked")
        return _build_locked(
            corpus, out_dir, backend=backend, extractor=extractor, builder=builder, resume=resume
        )


def cached_problem(directory: Path) -> str | None:
    """Why ``directory`` is not a usable cache entry (``None``: it passes the cheap check)."""
    if not directory.exists():
        return "missing"
    try:
        IndexManifest.read(directory).check(directory)
    except IndexCorruptError as exc:
        return exc.problem
    return None


def ensure_cached_index(
    corpus: Corpus,
    *,
    backend: str,
    extractor: str,
    builder: IndexBuilder,
    cache_dir: str | os.PathLike[str] | None = None,
    damaged: str | None = None,
) -> Path:
    """The cached index for this corpus, built first if missing, rebuilt if damaged
    (process-safe). ``damaged`` says a caller found the current entry unusable."""
    root = cache_root(cache_dir) / "indexes"
    root.mkdir(parents=True, exist_ok=True)
    final = root / index_key(corpus, backend, extractor)
    if damaged is None and cached_problem(final) is None:
        return final
    seen = _manifest_sum(final)
    with BuildLock(final):
        # Another process may have finished (or repaired) the build while we waited.
        problem = cached_problem(final)
        if damaged is not None and problem is None and _manifest_sum(final) == seen:
            problem = damaged
        if problem is None:
            return final
        if problem != "missing":
            warnings.warn(
                f"cached index {final} is damaged ({problem}); rebuilding it",
                IndexCacheWarning,
                stacklevel=3,
            )
        debug_pause("locked")
        _build_locked(corpus, final, backend=backend, extractor=extractor, builder=builder)
    return final


def _manifest_sum(directory: Path) -> str | None:
    try:
        return IndexManifest.read(directory).manifest_sha256
    except IndexCorruptError:
        return None


def open_cached(
    corpus: Corpus,
    opener: Callable[[Path], T],
    *,
    backend: str,
    extractor: str,
    builder: IndexBuilder,
    cache_dir: str | os.PathLike[str] | None = None,
) -> T:
    """Open the cached index for ``corpus``; an entry that fails to open is rebuilt once."""
    directory = ensure_cached_index(
        corpus, backend=backend, extractor=extractor, builder=builder, cache_dir=cache_dir
    )
    try:
        return opener(directory)
    except IndexCorruptError as exc:
        directory = ensure_cached_index(
            corpus,
            backend=backend,
            extractor=extractor,
            builder=builder,
            cache_dir=cache_dir,
            damaged=exc.problem,
        )
        return opener(directory)
