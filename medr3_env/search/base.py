"""The search interface every backend implements: :class:`Searcher`, :class:`Hit` and the
:class:`IndexManifest` written next to every index."""

from __future__ import annotations

import hashlib
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from medr3_env.corpora.records import Document
from medr3_env.entities import SentenceEntities
from medr3_env.search.integrity import (
    FileRecord,
    IndexCorruptError,
    canonical_json,
    check_files,
)

INDEX_SCHEMA_VERSION = 2
"""2: the manifest records files, sizes and checksums."""
MANIFEST_NAME = "manifest.json"
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


class Searcher(ABC):
    """Full-text search over one corpus. Implementations must never raise on query text."""

    manifest: IndexManifest

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
