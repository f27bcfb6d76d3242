"""Small thread-safe LRUs: search results keyed by the planned query and ``k`` (:class:`HitCache`),
and the stored records of recent hits keyed by document id (:class:`RecentDocuments`).

Rollouts of one prompt (and episodes of one batch) often repeat a query; a repeat costs a dict
lookup. :class:`~medr3_env.search.base.Hit` is immutable, so cached hits are shared safely. An
episode reads, and its reward terms look up, the documents its searches just returned: keeping
their stored records spares a second lookup by id in the index.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # base.py imports this module
    from medr3_env.search.base import Hit

DEFAULT_CACHE_SIZE = 4_096


class HitCache:
    """Least-recently-used cache of ``key -> list[Hit]`` (``size=0`` disables it)."""

    def __init__(self, size: int = DEFAULT_CACHE_SIZE) -> None:
        self.size = size
        self.hits = 0
        self.misses = 0
        self._data: OrderedDict[Hashable, tuple[Hit, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> list[Hit] | None:
        with self._lock:
            found = self._data.get(key)
            if found is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return list(found)

    def put(self, key: Hashable, hits: list[Hit]) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._data[key] = tuple(hits)
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


DEFAULT_RECENT_DOCUMENTS = 1_024


class RecentDocuments:
    """Least-recently-used ``doc_id -> stored record`` of the latest hits (``size=0``: off)."""

    def __init__(self, size: int = DEFAULT_RECENT_DOCUMENTS) -> None:
        self.size = size
        self._data: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, doc_id: str, record: Any) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._data[doc_id] = record
            self._data.move_to_end(doc_id)
            if len(self._data) > self.size:
                self._data.popitem(last=False)

    def put_many(self, records: Iterable[tuple[str, Any]]) -> None:
        """:meth:`put` of each ``(doc_id, record)``, under one lock."""
        if self.size <= 0:
            return
        with self._lock:
            data = self._data
            for doc_id, record in records:
                data[doc_id] = record
                data.move_to_end(doc_id)
            while len(data) > self.size:
                data.popitem(last=False)

    def pop(self, doc_id: str) -> Any | None:
        """The record of ``doc_id`` if it was a recent hit (removed: the caller caches the
        document it builds from it)."""
        with self._lock:
            return self._data.pop(doc_id, None)

    def __len__(self) -> int:
        return len(self._data)
