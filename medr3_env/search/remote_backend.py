"""The remote backend: a :class:`Searcher` over HTTP against ``medr3 serve``.

Environments in many processes (Ray actors, vLLM workers, nodes) share one index this way.
Standard library only (``http.client`` with one keep-alive connection per thread, ``json``), so
the core install stays light. Connection errors and 5xx answers are retried with exponential
backoff; when the server stays unreachable a :class:`SearchServerUnavailable` names the URL.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlsplit

from medr3_env.search.base import MAX_K, Hit, IndexedDocument, IndexManifest, Searcher, valid_doc_id
from medr3_env.search.hit_cache import DEFAULT_CACHE_SIZE, HitCache
from medr3_env.search.query import MAX_QUERY_CHARS

RETRYABLE_STATUS = frozenset({500, 502, 503, 504})


class SearchServerUnavailable(ConnectionError):
    """The search server could not be reached (or kept failing) after every retry."""


class SearchServerError(ValueError):
    """The search server rejected a request (a 4xx answer)."""


class RemoteSearcher(Searcher):
    """Search a ``medr3 serve`` server at ``url`` (e.g. ``http://127.0.0.1:8000``).

    Args:
        url: the server's base URL (``http`` or ``https``).
        timeout: seconds to wait for one answer.
        retries: further attempts after a connection error or a 5xx answer.
        backoff: seconds before the first retry; doubled for each next one.
        cache_size: results kept in a client-side LRU (``0``: none).
    """

    local = False

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 0.1,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"search_url must look like http://HOST:PORT, got {url!r}")
        self.url = url.rstrip("/")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self._local = threading.local()
        self._connections: list[http.client.HTTPConnection] = []
        self._connections_lock = threading.Lock()
        self._cache = HitCache(cache_size)
        self._get_cached = lru_cache(maxsize=4096)(self._get_uncached)
        health = self.health()
        try:
            self.manifest = IndexManifest.model_validate(health["manifest"])
            self.max_queries = int(health.get("limits", {}).get("max_queries", 64))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise self._unexpected("/health", exc) from None

    # ------------------------------------------------------------------ transport
    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            factory = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            connection = factory(self._host, self._port, timeout=self.timeout)
            self._local.connection = connection
            with self._connections_lock:
                self._connections.append(connection)
        return connection

    def _drop_connection(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def _request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """``(status, decoded JSON)``; retries connection errors and 5xx answers."""
        payload = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                connection = self._connection()
                connection.request(method, self._prefix + path, body=payload, headers=headers)
                response = connection.getresponse()
                status, raw = response.status, response.read()
            except (OSError, http.client.HTTPException) as exc:
                self._drop_connection()
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if status in RETRYABLE_STATUS:
                problem = f"HTTP {status}: {raw[:200].decode('utf-8', 'replace')}"
                continue
            try:
                return status, json.loads(raw) if raw else None
            except ValueError:
                raise SearchServerError(
                    f"search server at {self.url} sent invalid JSON (HTTP {status})"
                ) from None
        raise SearchServerUnavailable(
            f"MedR3 search server at {self.url} is unreachable after {self.retries + 1} "
            f"attempts ({problem}); is `medr3 serve` running there?"
        )

    def _checked(self, method: str, path: str, body: Any = None) -> Any:
        status, data = self._request(method, path, body)
        if status >= 400:
            detail = data.get("detail") if isinstance(data, dict) else data
            raise SearchServerError(f"search server at {self.url} answered {status}: {detail}")
        return data

    # ------------------------------------------------------------------ Searcher API
    def health(self) -> dict[str, Any]:
        """The server's ``/health`` answer (backend, document count, manifest, limits)."""
        return self._checked("GET", "/health")

    def search(self, query: str, k: int = 5) -> list[Hit]:
        return self.search_many([query], k)[0]

    def search_many(self, queries: Sequence[str], k: int = 5) -> list[list[Hit]]:
        """All queries in as few requests as the server's ``max_queries`` allows."""
        k = max(1, min(int(k), MAX_K))
        texts = [q[:MAX_QUERY_CHARS] if isinstance(q, str) else "" for q in queries]
        found: dict[str, list[Hit]] = {}
        missing = []
        for text in dict.fromkeys(texts):
            cached = self._cache.get((text, k))
            if cached is None:
                missing.append(text)
            else:
                found[text] = cached
        for start in range(0, len(missing), self.max_queries):
            chunk = missing[start : start + self.max_queries]
            body = {"queries": chunk, "topk": k, "return_scores": True}
            answer = self._checked("POST", "/retrieve", body)
            try:
                results = [
                    [_hit(item, rank) for rank, item in enumerate(rows, start=1)]
                    for rows in answer["result"]
                ]
                if len(results) != len(chunk):
                    raise ValueError(f"{len(results)} result lists for {len(chunk)} queries")
            except (KeyError, TypeError, ValueError) as exc:
                raise self._unexpected("/retrieve", exc) from None
            for text, hits in zip(chunk, results, strict=True):
                self._cache.put((text, k), hits)
                found[text] = hits
        return [list(found[text]) for text in texts]

    def _get_uncached(self, doc_id: str) -> IndexedDocument | None:
        status, data = self._request("GET", "/doc/" + quote(doc_id, safe=""))
        if status == 404:
            return None
        if status >= 400:
            raise SearchServerError(f"search server at {self.url} answered {status}: {data}")
        try:
            return IndexedDocument.model_validate(data)
        except ValueError as exc:
            raise self._unexpected("/doc", exc) from None

    def _unexpected(self, endpoint: str, problem: Exception) -> SearchServerError:
        return SearchServerError(
            f"search server at {self.url} sent an unexpected {endpoint} answer "
            f"({type(problem).__name__}: {str(problem)[:200]}); is it a `medr3 serve` server?"
        )

    def get(self, doc_id: str) -> IndexedDocument | None:
        if not valid_doc_id(doc_id):
            return None
        return self._get_cached(doc_id)

    def close(self) -> None:
        with self._connections_lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()


def _hit(item: dict[str, Any], rank: int) -> Hit:
    document = item["document"]
    return Hit(
        doc_id=document["id"],
        title=document.get("title", ""),
        score=float(item.get("score", 0.0)),
        snippet=document.get("snippet", ""),
        rank=int(document.get("rank", rank)),
    )
