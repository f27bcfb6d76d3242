"""Index integrity: what a complete index directory holds (:class:`IndexManifest`), the cheap and
the full checks, the :class:`IndexCorruptError` they raise, and the build lock that survives dead
processes."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import sys
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from filelock import FileLock, Timeout
from pydantic import BaseModel, ConfigDict, ValidationError

if TYPE_CHECKING:
    from medr3_env.search.base import Searcher

logger = logging.getLogger(__name__)

LOCK_ENV_VAR = "MEDR3_LOCK"
"""``soft``: lock files by exclusive creation (shared file systems where ``flock`` is not shared
between machines, e.g. some NFS mounts); default: ``flock``, released by the kernel on death."""
PAUSE_ENV_VAR = "MEDR3_DEBUG_PAUSE"
"""Testing hook: ``STAGE[@N][:SECONDS]`` makes a build or server pause at a named stage."""
_LOCK_NAMES = (".tantivy-meta.lock", ".tantivy-writer.lock", "MAIN_WRITELOCK")


class IndexCorruptError(ValueError):
    """An index directory that is missing, incomplete, damaged or not a MedR3 index."""

    def __init__(self, directory: str | os.PathLike[str], problem: str, fix: str | None = None):
        self.directory = Path(directory)
        self.problem = problem
        self.fix = fix or (
            "rebuild it with `medr3 index build --corpus SPEC --out DIR`, or delete it "
            "(a cached index is rebuilt on next use)"
        )
        super().__init__(f"index {self.directory}: {problem}; {self.fix}")


class IndexCacheWarning(UserWarning):
    """A cached index was damaged or incomplete and is being rebuilt."""


class FileRecord(BaseModel):
    """One file of a complete index: its size and sha256."""

    model_config = ConfigDict(frozen=True)

    size: int
    sha256: str


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def index_files(directory: Path, exclude: tuple[str, ...] = ()) -> dict[str, FileRecord]:
    """Every file under ``directory`` (lock files and ``exclude`` left out), sizes and hashes."""
    records = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        name = path.relative_to(directory).as_posix()
        if path.name in _LOCK_NAMES or name in exclude:
            continue
        records[name] = FileRecord(size=path.stat().st_size, sha256=sha256_file(path))
    return records


def check_files(directory: Path, files: dict[str, FileRecord], *, full: bool) -> None:
    """Raise :class:`IndexCorruptError` unless every recorded file exists with its size (and,
    when ``full``, its checksum)."""
    if not files:
        raise IndexCorruptError(directory, "the manifest lists no index files")
    for name, record in files.items():
        path = directory / name
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise IndexCorruptError(directory, f"file {name} is missing") from None
        if size != record.size:
            raise IndexCorruptError(
                directory, f"file {name} has {size} bytes, the manifest records {record.size}"
            )
        if full and sha256_file(path) != record.sha256:
            raise IndexCorruptError(directory, f"file {name} does not match its checksum")


_PAUSE_SEEN: dict[str, int] = {}


def debug_pause(stage: str) -> None:
    """Sleep at ``stage`` when ``$MEDR3_DEBUG_PAUSE`` names it (tests kill builds there):
    ``STAGE[:SECONDS]`` every time the stage is reached, ``STAGE@N[:SECONDS]`` the N-th time."""
    wanted = os.environ.get(PAUSE_ENV_VAR)
    if not wanted:
        return
    name, _, seconds = wanted.partition(":")
    name, _, nth = name.partition("@")
    if name != stage:
        return
    _PAUSE_SEEN[stage] = seen = _PAUSE_SEEN.get(stage, 0) + 1
    if nth and seen != int(nth):
        return
    print(f"medr3-debug-pause {stage} pid={os.getpid()}", file=sys.stderr, flush=True)
    time.sleep(float(seconds or 3600))


def _holder(marker: Path) -> tuple[int, str] | None:
    """``(pid, host)`` recorded in a soft lock file, when readable."""
    try:
        lines = marker.read_text(encoding="utf-8", errors="replace").splitlines()
        return int(lines[0]), lines[1] if len(lines) > 1 else ""
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class BuildLockError(OSError):
    """The build lock file cannot be created (a read-only or virtual file system, a missing or
    unwritable folder): raised at once, unlike a lock held by another process, which is waited
    for."""


class BuildLock:
    """The exclusive lock for building one index directory (``<dir>.lock`` beside it).

    By default an ``flock`` lock, which the kernel releases when its holder dies, SIGKILL
    included. With ``MEDR3_LOCK=soft``, a lock file created exclusively that records the pid and
    host of its holder; a file left by a process of this host that no longer runs is broken
    with a warning (a holder on another host is waited for, and named).
    """

    def __init__(self, target: Path, *, poll_s: float = 5.0) -> None:
        self.path = target.with_name(target.name + ".lock")
        self.soft = os.environ.get(LOCK_ENV_VAR, "").lower() == "soft"
        self.poll_s = poll_s
        self._flock = None if self.soft else FileLock(str(self.path))

    def _break_if_stale(self) -> None:
        holder = _holder(self.path)
        if holder is None:
            return
        pid, host = holder
        if host == socket.gethostname() and not _alive(pid):
            warnings.warn(
                f"breaking stale lock {self.path}: its holder (pid {pid}) is no longer running",
                IndexCacheWarning,
                stacklevel=3,
            )
            self.path.unlink(missing_ok=True)

    def _try_soft(self) -> bool:
        deadline = time.monotonic() + self.poll_s
        while True:
            self._break_if_stale()
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.05)
                continue
            except OSError as exc:
                raise self._cannot_create(exc) from exc
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(f"{os.getpid()}\n{socket.gethostname()}\n")
            return True

    def _cannot_create(self, exc: OSError) -> BuildLockError:
        reason = f"[Errno {exc.errno}] {exc.strerror}" if exc.strerror else str(exc)
        error = BuildLockError(f"cannot create the build lock {self.path}: {reason}")
        error.errno = exc.errno
        return error

    def _check_creatable(self) -> None:
        """Open (creating if needed) the ``flock`` lock file once, so that a place where it
        cannot exist fails now instead of being polled for ever (``filelock`` retries on any
        ``OSError``, as it does while another process holds the lock)."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise self._cannot_create(exc) from exc
        os.close(fd)

    def _try(self) -> bool:
        if self._flock is None:
            return self._try_soft()
        try:
            self._flock.acquire(timeout=self.poll_s)
        except Timeout:
            return False
        return True

    def __enter__(self) -> BuildLock:
        """Take the lock, waiting (with a log line every ``poll_s``) while another process holds
        it; :class:`BuildLockError` at once when the lock file cannot be created."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._cannot_create(exc) from exc
        if self._flock is not None:
            self._check_creatable()
        waited = 0.0
        while not self._try():
            waited += self.poll_s
            holder = _holder(self.path) if self.soft else None
            who = f" (pid {holder[0]} on {holder[1]})" if holder else ""
            logger.warning(
                "waiting %.0fs for another process building %s%s", waited, self.path, who
            )
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._flock is None:
            self.path.unlink(missing_ok=True)
        else:
            self._flock.release()


def canonical_json(data: object) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


INDEX_SCHEMA_VERSION = 2
"""2: the manifest records files, sizes and checksums."""
MANIFEST_NAME = "manifest.json"


class IndexManifest(BaseModel):
    """What an index was built from and what a complete copy of it holds.

    ``files`` records every index file's size and sha256; ``manifest_sha256`` is a checksum of
    the manifest itself, so a truncated or edited manifest is detected. ``medr3 index info DIR``
    prints it, ``medr3 index verify DIR`` checks it.
    """

    schema_version: int = INDEX_SCHEMA_VERSION
    backend: str
    corpus_name: str
    corpus_fingerprint: str
    doc_count: int
    entity_extractor: str
    built_at: str
    build_seconds: float
    medr3_version: str
    loader_options: dict[str, str] = {}
    """The corpus loader options that differ from their defaults (``on_duplicate`` ...)."""
    duplicate_ids: int = 0
    """Records dropped because their id was already used (``on_duplicate="first"|"last"``)."""
    skipped_records: int = 0
    """Malformed records skipped (``on_error="skip"``)."""
    probe_id: str | None = None
    """A document id the index holds; opening an index checks it can be read."""
    files: dict[str, FileRecord] = {}
    manifest_sha256: str = ""

    def checksum(self) -> str:
        """The sha256 of every field but ``manifest_sha256``."""
        data = self.model_dump(mode="json", exclude={"manifest_sha256"})
        return hashlib.sha256(canonical_json(data)).hexdigest()

    def write(self, directory: Path) -> None:
        """Write ``manifest.json`` (with its checksum) atomically into ``directory``."""
        self.manifest_sha256 = self.checksum()
        path = Path(directory) / MANIFEST_NAME
        tmp = path.with_name(f".{MANIFEST_NAME}.tmp-{os.getpid()}")
        tmp.write_text(self.model_dump_json(indent=2), encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def read(cls, directory: Path) -> IndexManifest:
        """The manifest of ``directory``; raises :class:`IndexCorruptError` when it is missing,
        unreadable, of another schema version or fails its checksum."""
        directory = Path(directory)
        path = directory / MANIFEST_NAME
        if not directory.is_dir():
            raise IndexCorruptError(
                directory,
                "no such index directory",
                "build one with `medr3 index build --corpus SPEC --out DIR`",
            )
        if not path.is_file():
            raise IndexCorruptError(
                directory,
                f"not a MedR3 index (no {MANIFEST_NAME}); MedR3 opens only indexes it built",
                "build one with `medr3 index build --corpus SPEC --out DIR`",
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise IndexCorruptError(directory, f"{MANIFEST_NAME} is unreadable ({exc})") from None
        if not isinstance(data, dict):
            raise IndexCorruptError(directory, f"{MANIFEST_NAME} is not a JSON object")
        version = data.get("schema_version")
        if version != INDEX_SCHEMA_VERSION:
            raise IndexCorruptError(
                directory,
                f"built with index schema {version!r}; this MedR3 reads schema "
                f"{INDEX_SCHEMA_VERSION}",
            )
        try:
            manifest = cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise IndexCorruptError(
                directory, f"{MANIFEST_NAME} field {where!r}: {first['msg']}"
            ) from None
        if manifest.manifest_sha256 != manifest.checksum():
            raise IndexCorruptError(directory, f"{MANIFEST_NAME} does not match its checksum")
        return manifest

    def check(self, directory: Path, *, full: bool = False) -> None:
        """Raise :class:`IndexCorruptError` unless every index file is present with its size
        (``full``: and its sha256)."""
        check_files(Path(directory), self.files, full=full)


def _backend_class(directory: Path, backend: str) -> type:
    from medr3_env.plugins import UnknownPluginError, registry

    try:
        cls = registry.backends.get(backend)
    except UnknownPluginError as exc:
        raise IndexCorruptError(directory, f"the manifest names {exc}") from None
    if not cls.local:
        raise IndexCorruptError(directory, f"the manifest names a non-local backend {backend!r}")
    return cls  # type: ignore[no-any-return]


def open_checked(directory: str | os.PathLike[str], *, full: bool = False) -> Searcher:
    """Open a MedR3 index after checking it: manifest checksum, every file's size (``full``:
    every file's sha256), then the backend opens it and reads the manifest's probe document.

    Any failure raises :class:`IndexCorruptError` naming the directory, never a backend's raw
    ``EOFError`` or ``ValueError``. Only directories with a valid MedR3 manifest are opened
    (a Whoosh index is a pickle: opening one runs code from whoever wrote it).
    """
    directory = Path(directory)
    manifest = IndexManifest.read(directory)
    manifest.check(directory, full=full)
    searcher_class = _backend_class(directory, manifest.backend)
    try:
        searcher = searcher_class(directory)
        if manifest.probe_id is not None and searcher.get(manifest.probe_id) is None:
            raise IndexCorruptError(
                directory, f"its document {manifest.probe_id!r} (the manifest's probe) is missing"
            )
    except (IndexCorruptError, ImportError):
        raise
    except Exception as exc:  # whatever a damaged index makes a backend raise
        reason = f"{type(exc).__name__}: {exc}".strip()[:300]
        raise IndexCorruptError(directory, f"{manifest.backend} cannot read it ({reason})") from exc
    return searcher


class VerifyReport(BaseModel):
    """What ``medr3 index verify`` checked."""

    directory: str
    backend: str
    files: int
    bytes: int
    doc_count: int
    probe_id: str | None
    probe_rank: int | None
    """Rank of the probe document for a query made of its own words (``None``: not in top 50)."""
    query_hits: int


def verify_index(directory: str | os.PathLike[str]) -> VerifyReport:
    """The full check: every file's checksum, the document count, a test query.

    Raises :class:`IndexCorruptError` on the first problem."""
    import re

    directory = Path(directory)
    searcher = open_checked(directory, full=True)
    manifest = searcher.manifest
    try:
        counted = getattr(searcher, "doc_count", manifest.doc_count)
        if counted != manifest.doc_count:
            raise IndexCorruptError(
                directory,
                f"it holds {counted} documents, the manifest records {manifest.doc_count}",
            )
        rank, hits = None, 0
        if manifest.probe_id is not None:
            probe = searcher.get(manifest.probe_id)
            assert probe is not None  # open_checked read it
            words = re.findall(r"[^\W\d_]{4,}", f"{probe.title} {probe.content}")[:12]
            found = searcher.search(" ".join(words), k=50)
            hits = len(found)
            rank = next((h.rank for h in found if h.doc_id == probe.id), None)
            if words and not found:
                raise IndexCorruptError(
                    directory, "a query of its probe document's words finds nothing"
                )
    except IndexCorruptError:
        raise
    except Exception as exc:
        raise IndexCorruptError(
            directory, f"a test query failed ({type(exc).__name__}: {exc})"
        ) from exc
    finally:
        searcher.close()
    return VerifyReport(
        directory=str(directory),
        backend=manifest.backend,
        files=len(manifest.files),
        bytes=sum(f.size for f in manifest.files.values()),
        doc_count=manifest.doc_count,
        probe_id=manifest.probe_id,
        probe_rank=rank,
        query_hits=hits,
    )
