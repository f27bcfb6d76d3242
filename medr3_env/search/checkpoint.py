"""Resumable builds: the checkpoint an interrupted build leaves in ``<out>.partial/`` and the
corpus view that skips the documents a resumed build has already committed.

A resumable backend (tantivy) commits every so many documents into ``<out>.partial/``; the
committed document count is the backend's own (tantivy publishes a commit atomically), and
``medr3-checkpoint.json`` says what the partial index was built from. A rerun of the same build
continues after the committed documents; a checkpoint of another corpus, loader options, schema,
backend, entity extractor or MedR3 version is discarded with a message naming the difference.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ValidationError

from medr3_env.corpora.records import Corpus, Document

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "medr3-checkpoint.json"
CHECKPOINT_FORMAT = "medr3-build-checkpoint"


class StaleCheckpointError(RuntimeError):
    """The committed part of a partial index is not the start of this corpus's stream."""


class BuildIdentity(BaseModel):
    """What decides an index's content: a checkpoint is resumed only when all of it matches
    (``corpus_name`` is informative: the same content under another name resumes)."""

    schema_version: int
    backend: str
    entity_extractor: str
    corpus_name: str
    corpus_fingerprint: str
    loader_options: dict[str, str] = {}
    medr3_version: str


class BuildCheckpoint(BaseModel):
    """``medr3-checkpoint.json``: the identity of a partial build and its progress so far."""

    format: str = CHECKPOINT_FORMAT
    identity: BuildIdentity
    documents_committed: int = 0
    """Documents of the corpus stream committed so far (as of the last checkpoint write)."""
    updated_at: str = ""

    def write(self, directory: Path) -> None:
        """Write the checkpoint atomically into ``directory``."""
        self.updated_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        path = Path(directory) / CHECKPOINT_NAME
        tmp = path.with_name(f".{CHECKPOINT_NAME}.tmp-{os.getpid()}")
        tmp.write_text(self.model_dump_json(indent=2), encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def read(cls, directory: Path) -> BuildCheckpoint | None:
        """The checkpoint in ``directory``; ``None`` when missing or unreadable."""
        try:
            data = json.loads((Path(directory) / CHECKPOINT_NAME).read_text(encoding="utf-8"))
            checkpoint = cls.model_validate(data)
        except (OSError, ValueError, ValidationError):
            return None
        return checkpoint if checkpoint.format == CHECKPOINT_FORMAT else None


def has_checkpoint(directory: Path) -> bool:
    """Whether ``directory`` is the work directory of a resumable build."""
    return (Path(directory) / CHECKPOINT_NAME).is_file()


def mismatch(checkpoint: BuildCheckpoint | None, identity: BuildIdentity) -> str | None:
    """Why ``checkpoint`` cannot be resumed by a build of ``identity`` (``None``: it can)."""
    if checkpoint is None:
        return "it has no readable checkpoint"
    theirs, ours = checkpoint.identity.model_dump(), identity.model_dump()
    labels = {
        "corpus_fingerprint": "corpus content",
        "loader_options": "loader options",
        "schema_version": "index schema version",
        "entity_extractor": "entity extractor",
        "medr3_version": "MedR3 version",
    }
    if theirs["backend"] != ours["backend"]:
        return f"it is a {theirs['backend']} index, this build is {ours['backend']}"
    for field, label in labels.items():
        if theirs[field] != ours[field]:
            return f"it was built with another {label} ({theirs[field]!r}, now {ours[field]!r})"
    return None


def record_commit(directory: Path, committed: int) -> None:
    """Note in the checkpoint of ``directory`` that ``committed`` documents are committed (a
    no-op when the build has no checkpoint, e.g. a builder called directly)."""
    checkpoint = BuildCheckpoint.read(directory)
    if checkpoint is None:
        return
    checkpoint.documents_committed = committed
    checkpoint.write(directory)


class SkipCommitted(Corpus):
    """``corpus`` without its first ``committed`` documents, which a resumed build already holds.

    The skipped documents are still read (so duplicate-id detection and the skip counts of the
    whole stream stay right), but not prepared or indexed. ``holds(doc_id)`` is asked for the first
    and the last skipped document; if either is missing, or the stream is shorter than
    ``committed``, iteration raises :class:`StaleCheckpointError`.
    """

    def __init__(self, corpus: Corpus, committed: int, holds: Callable[[str], bool]) -> None:
        def documents() -> Iterator[Document]:
            stream = iter(corpus)
            first: str | None = None
            last: str | None = None
            for position in range(committed):
                doc = next(stream, None)
                if doc is None:
                    raise StaleCheckpointError(
                        f"the partial index holds {committed} documents, "
                        f"the corpus has only {position}"
                    )
                if first is None:
                    first = doc.id
                last = doc.id
            for doc_id in dict.fromkeys(i for i in (first, last) if i is not None):
                if not holds(doc_id):
                    raise StaleCheckpointError(
                        f"the partial index lacks document {doc_id!r}, which the corpus has "
                        "among its first committed documents"
                    )
            yield from stream

        super().__init__(corpus.name, documents)
        self._inner = corpus
        self._committed = committed

    @property  # type: ignore[override]
    def size_hint(self) -> int | None:
        total = self._inner.size_hint
        return None if total is None else max(total - self._committed, 0)

    @size_hint.setter
    def size_hint(self, value: int | None) -> None:
        pass
