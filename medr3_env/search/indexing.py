"""What every backend's index builder shares: stream a corpus in batches, with each document's
per-sentence entities (one ``extract_sentences`` call per batch) and a progress bar."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from itertools import islice

from medr3_env.corpora.records import Corpus, Document
from medr3_env.entities import EntityExtractor, SentenceEntities
from medr3_env.search.integrity import debug_pause
from medr3_env.search.progress import progress_bar


def indexing_progress(
    corpus: Corpus, progress: bool | None
) -> AbstractContextManager[Callable[[int], None]]:
    """The :func:`~medr3_env.search.progress.progress_bar` of a build of ``corpus``. Its
    ``size_hint`` (which may count a file's lines, fast next to indexing them) is read only when
    ``progress`` is not ``False``."""
    total = corpus.size_hint if progress is not False else None
    return progress_bar(f"indexing {corpus.name}", total=total, enabled=progress)


def annotated_batches(
    corpus: Corpus, extractor: EntityExtractor, *, batch_size: int, progress: bool | None
) -> Iterator[list[tuple[Document, SentenceEntities]]]:
    """Yield ``[(document, sentence entities), ...]`` batches; memory holds one batch at a time."""
    documents = iter(corpus)
    with indexing_progress(corpus, progress) as advance:
        while batch := list(islice(documents, batch_size)):
            entities = extractor.extract_sentences((d.content for d in batch), batch_size)
            yield list(zip(batch, entities, strict=True))
            advance(len(batch))
            debug_pause("indexing")
