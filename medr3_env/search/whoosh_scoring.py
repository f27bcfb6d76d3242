"""Whoosh's BM25F, computed with numpy over whole posting lists instead of posting by posting.

Whoosh scores one posting at a time in Python (a few microseconds each), so a query whose terms
match tens of thousands of documents takes tens of milliseconds. :class:`ArrayBM25F` reads the
same on-disk postings block by block, scores each term's postings as one array with Whoosh's own
formula, statistics and summation order, and keeps the top ``k`` with a partial sort: the same
documents and scores as ``searcher.search(Or([...Term...]), limit=k)``, in a fraction of the time.
Each term's scored postings depend only on the index, so they are kept in a memory-bounded LRU.

Only plain segments of the W3 codec are read this way; :meth:`ArrayBM25F.supported` is false for
anything else (deleted documents, another codec), and the backend then searches through Whoosh.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from math import log

import numpy as np
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, W3LeafMatcher, _lenfield
from whoosh.reading import TermNotFound
from whoosh.util.numeric import byte_to_length

DEFAULT_POSTINGS_CACHE_MB = 128
_BYTE_TO_LENGTH = np.array([byte_to_length(b) or 0 for b in range(256)], dtype=np.float64)
_ENTRY_OVERHEAD = 200  # bytes per cached entry besides its arrays (key, tuple, arrays' headers)


class ArrayBM25F:
    """Top-``k`` BM25F over ``fields`` (in query order per term) of a Whoosh searcher."""

    def __init__(
        self,
        searcher,
        fields: Sequence[str],
        *,
        B: float = 0.75,  # noqa: N803  (Whoosh's parameter names)
        K1: float = 1.2,  # noqa: N803
        cache_mb: float = DEFAULT_POSTINGS_CACHE_MB,
    ) -> None:
        self._reader = searcher.reader()
        self._fields = tuple(fields)
        self._b, self._k1 = B, K1
        self._doc_count_all = searcher.doc_count_all()
        self._avgfl = {f: searcher.avg_field_length(f) or 1 for f in self._fields}
        self._leaves = [(leaf.reader(), offset) for leaf, offset in searcher.leaf_searchers()]
        self._supported = all(
            not reader.has_deletions() and hasattr(reader, "_perdoc") for reader, _ in self._leaves
        )
        self._length_codes: dict[tuple[int, str], np.ndarray] = {}
        self._scratch = [np.zeros(reader.doc_count_all()) for reader, _ in self._leaves]
        self._cache: OrderedDict[tuple[int, str, str], tuple[np.ndarray, np.ndarray]] = (
            OrderedDict()
        )
        self._cache_bytes = 0
        self._cache_limit = int(cache_mb * 2**20)
        self._lock = threading.Lock()
        if self._supported:
            try:
                for number, (reader, _) in enumerate(self._leaves):
                    for field in self._fields:
                        self._length_codes[number, field] = _length_codes(reader, field)
                    self._probe(reader)
            except (AttributeError, TypeError, ValueError, IndexError):
                self._supported = False  # an unexpected on-disk layout: Whoosh's own path

    @property
    def supported(self) -> bool:
        """Whether this index can be scored here (else search through Whoosh)."""
        return self._supported

    @property
    def cache_bytes(self) -> int:
        """Memory held by cached scored postings."""
        return self._cache_bytes

    def top(self, stems: Sequence[str], k: int) -> list[tuple[float, int]]:
        """``(score, global document number)`` of the best ``k`` documents, best first; ties
        go to the lower document number, as in Whoosh."""
        results: list[tuple[float, int]] = []
        with self._lock:
            for number, (_, offset) in enumerate(self._leaves):
                results.extend(
                    (score, offset + doc) for score, doc in self._top_in(number, stems, k)
                )
        results.sort(key=lambda item: (-item[0], item[1]))
        return results[:k]

    # ------------------------------------------------------------------ internals
    def _top_in(self, number: int, stems: Sequence[str], k: int) -> list[tuple[float, int]]:
        scratch = self._scratch[number]
        touched = []
        for stem in stems:
            for field in self._fields:
                found = self._scored(number, field, stem)
                if found is None:
                    continue
                ids, scores = found
                scratch[ids] += scores  # ids are distinct within one posting list
                touched.append(ids)
        if not touched:
            return []
        candidates = np.concatenate(touched) if len(touched) > 1 else touched[0]
        values = scratch[candidates]
        # Each document appears at most len(touched) times, so the best k distinct documents
        # are among the best k * len(touched) entries.
        keep = k * len(touched)
        if values.size > keep:
            part = np.argpartition(-values, keep - 1)[:keep]
            candidates, values = candidates[part], values[part]
        best = sorted(
            set(zip(values.tolist(), candidates.tolist(), strict=True)),
            key=lambda item: (-item[0], item[1]),
        )[:k]
        for ids in touched:
            scratch[ids] = 0.0
        return [(score, doc) for score, doc in best if score > 0]

    def _scored(self, number: int, field: str, stem: str) -> tuple[np.ndarray, np.ndarray] | None:
        key = (number, field, stem)
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
            return found
        reader = self._leaves[number][0]
        try:
            matcher = reader.postings(field, stem)
        except TermNotFound:
            return None
        ids, weights = _read_postings(matcher)
        fl = _BYTE_TO_LENGTH[self._length_codes[number, field][ids]]
        # Whoosh's idf and bm25(), operation for operation, so scores match it exactly.
        idf = log(self._doc_count_all / (self._reader.doc_frequency(field, stem) + 1)) + 1
        b, k1 = self._b, self._k1
        scores = idf * (
            (weights * (k1 + 1)) / (weights + k1 * ((1 - b) + b * fl / self._avgfl[field]))
        )
        entry = (ids, scores)
        size = ids.nbytes + scores.nbytes + _ENTRY_OVERHEAD
        if size <= self._cache_limit:
            self._cache[key] = entry
            self._cache_bytes += size
            while self._cache_bytes > self._cache_limit:
                _, (old_ids, old_scores) = self._cache.popitem(last=False)
                self._cache_bytes -= old_ids.nbytes + old_scores.nbytes + _ENTRY_OVERHEAD
        return entry

    def _probe(self, reader) -> None:
        """Fail early (at open) if the postings are not laid out as this module expects."""
        for field in self._fields:
            for term in reader.lexicon(field):
                matcher = reader.postings(field, term)
                if not isinstance(matcher, W3LeafMatcher):
                    raise TypeError(f"unexpected matcher {type(matcher).__name__}")
                _read_postings(matcher)
                break


def _length_codes(reader, field: str) -> np.ndarray:
    """Every document's length of ``field`` as Whoosh stores it: one byte per document (decoded
    with ``byte_to_length``), so the lengths of a million documents take a megabyte."""
    column = reader._perdoc._cached_reader(_lenfield(field), LENGTHS_COLUMN)
    count = reader.doc_count_all()
    if column is None:
        return np.zeros(count, dtype=np.uint8)
    if column._typecode == "B" and column._fixedlen == 1:
        raw = np.frombuffer(column._dbfile.get(column._basepos, column._count), dtype=np.uint8)
        codes = np.full(count, column._default, dtype=np.uint8)
        codes[: raw.size] = raw[:count]
    else:
        codes = np.array([column[doc] for doc in range(count)], dtype=np.uint8)
    return codes


def _read_postings(matcher) -> tuple[np.ndarray, np.ndarray]:
    """All ``(document numbers, weights)`` of a W3 posting list, decoded block by block."""
    if matcher._byteids:
        raise TypeError("byte ids are not document postings")
    deltas: list[int] = []
    weights: list[float] = []
    starts: list[int] = []
    while True:
        matcher._read_data()
        block_ids, block_weights = matcher._data[0], matcher._data[1]
        length = matcher._blocklength
        starts.append(len(deltas))
        deltas.extend(block_ids)
        if block_weights is None:
            weights.extend([1.0] * length)
        elif isinstance(block_weights, float):
            weights.extend([block_weights] * length)
        else:
            weights.extend(block_weights)
        if matcher._lastblock:
            break
        matcher._goto(matcher._nextoffset)
    # Each block's ids are delta-encoded from zero: a running sum restarted at every block.
    summed = np.cumsum(np.asarray(deltas, dtype=np.int64))
    if len(starts) > 1:
        before = summed[np.asarray(starts[1:]) - 1]
        lengths = np.diff(np.asarray([*starts, len(deltas)]))
        summed -= np.repeat(np.concatenate(([0], before)), lengths)
    return summed.astype(np.int32), np.asarray(weights, dtype=np.float64)
