"""The shared retrieval server: one index served over HTTP to many environment processes.

Speaks the Search-R1 retrieval protocol, so Search-R1-style search clients work unchanged:

* ``POST /retrieve`` ``{"queries": [...], "topk": 5, "return_scores": true}`` returns
  ``{"result": [[{"document": {"id", "contents", ...}, "score": s}, ...], ...]}``, one list per
  query (without ``return_scores``: lists of documents). ``contents`` is ``"Title"\\ntext``;
  MedR3 adds ``title``, ``snippet`` and ``rank`` to each document.
* ``GET /doc/{id}``: a stored document with its entities (404 when unknown).
* ``GET /health``: status, backend, document count, corpus and index fingerprints, manifest,
  limits, and the server's own state (uptime, requests served and in flight, 5xx errors, pid,
  resident memory).

Requests are bounded (body size: 413; number of queries, ``topk``: 422), a body that is not
JSON or not a valid request answers 422 with the reason, and a search that takes longer than
``request_timeout_s`` answers 504. ``medr3 serve`` stops gracefully on SIGTERM or
SIGINT: it stops accepting connections and lets in-flight requests finish. Needs the ``server``
extra (FastAPI, uvicorn).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import asdict, dataclass
from typing import Any

from medr3_env.search.base import MAX_K, Hit, Searcher, valid_doc_id
from medr3_env.search.integrity import debug_pause

SERVER_INSTALL_HINT = (
    "the retrieval server needs FastAPI and uvicorn: pip install 'medr3-env[server]'"
)

try:
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, Field, ValidationError
    from starlette.concurrency import run_in_threadpool
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(SERVER_INSTALL_HINT) from exc


@dataclass(frozen=True)
class ServerLimits:
    """What one request may ask for."""

    max_body_bytes: int = 1_048_576
    max_queries: int = 256
    max_topk: int = MAX_K
    default_topk: int = 5
    request_timeout_s: float = 30.0


class RetrieveRequest(BaseModel):
    """The body of ``POST /retrieve`` (Search-R1's request)."""

    queries: list[str] = Field(min_length=1)
    topk: int | None = None
    return_scores: bool = False


def parse_retrieve(body: bytes) -> RetrieveRequest:
    """The request in ``body``, or a 422 ``HTTPException`` saying why it is not one.

    Parsed here rather than by FastAPI, whose answer depends on the fault: 400 for a body that is
    not UTF-8 or nests too deeply, 500 for a number JSON cannot send back (``1e400``).

    >>> parse_retrieve(b'{"queries": ["insulin"], "topk": 3}').topk
    3
    >>> try:
    ...     parse_retrieve(b'{"queries": "insulin"')
    ... except HTTPException as exc:
    ...     print(exc.status_code, exc.detail)
    422 malformed JSON body: Expecting ',' delimiter: line 1 column 22 (char 21)
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError too
        raise HTTPException(422, f"malformed JSON body: {exc}"[:300]) from None
    try:
        return RetrieveRequest.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]
        raise HTTPException(422, detail) from None


_RETRIEVE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": RetrieveRequest.model_json_schema()}},
    }
}


class _BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes")


class _BodyLimit:
    """ASGI middleware: answer 413 for bodies over ``limit`` bytes, declared or streamed."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            response = JSONResponse({"detail": f"request body over {self.limit} bytes"}, 413)
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _BodyTooLarge(self.limit)  # FastAPI turns it into a 413 response
            return message

        await self.app(scope, limited_receive, send)


def resident_bytes() -> int | None:
    """This process's resident memory (Linux ``/proc``; ``None`` elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class ServerStats:
    """What ``/health`` reports about the server itself, counted by :class:`_CountRequests`."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.served = 0
        self.in_flight = 0
        self.errors = 0

    def snapshot(self) -> dict[str, Any]:
        return {
            "uptime_s": round(time.monotonic() - self.started, 1),
            "requests_served": self.served,
            "requests_in_flight": self.in_flight,
            "server_errors": self.errors,
            "pid": os.getpid(),
            "rss_bytes": resident_bytes(),
        }


class _CountRequests:
    """ASGI middleware: count HTTP requests served, in flight and answered 5xx."""

    def __init__(self, app: Any, stats: ServerStats) -> None:
        self.app, self.stats = app, stats

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        stats = self.stats
        stats.in_flight += 1

        async def counting_send(message: dict) -> None:
            if message["type"] == "http.response.start" and message.get("status", 200) >= 500:
                stats.errors += 1
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        except Exception:
            stats.errors += 1  # answered 500 by Starlette's outermost error handler
            raise
        finally:
            stats.in_flight -= 1
            stats.served += 1


def contents(title: str, text: str) -> str:
    """A passage in Search-R1's ``contents`` layout: the quoted title, a newline, the text."""
    return f'"{title}"\n{text}'


def create_app(searcher: Searcher, limits: ServerLimits | None = None) -> FastAPI:
    """A FastAPI application serving ``searcher`` (run it with uvicorn or ``medr3 serve``)."""
    limits = limits or ServerLimits()
    app = FastAPI(title="MedR3 retrieval server", version=_version())
    stats = ServerStats()

    def document(hit: Hit) -> dict[str, Any]:
        stored = searcher.get(hit.doc_id)
        text = stored.content if stored is not None else hit.snippet
        return {
            "id": hit.doc_id,
            "contents": contents(hit.title, text),
            "title": hit.title,
            "snippet": hit.snippet,
            "rank": hit.rank,
        }

    def retrieve(queries: list[str], topk: int, scores: bool) -> list[list[Any]]:
        debug_pause("retrieve")
        results = []
        for hits in searcher.search_many(queries, topk):
            docs = [document(hit) for hit in hits]
            if scores:
                results.append(
                    [{"document": d, "score": h.score} for d, h in zip(docs, hits, strict=True)]
                )
            else:
                results.append(docs)
        return results

    @app.post("/retrieve", openapi_extra=_RETRIEVE_BODY)
    async def retrieve_endpoint(http: Request) -> dict[str, Any]:
        request = parse_retrieve(await http.body())
        topk = limits.default_topk if request.topk is None else request.topk
        if not 1 <= topk <= limits.max_topk:
            raise HTTPException(422, f"topk must be between 1 and {limits.max_topk}, got {topk}")
        if len(request.queries) > limits.max_queries:
            raise HTTPException(
                422, f"at most {limits.max_queries} queries per request, got {len(request.queries)}"
            )
        work = run_in_threadpool(retrieve, request.queries, topk, request.return_scores)
        try:
            result = await asyncio.wait_for(work, timeout=limits.request_timeout_s)
        except asyncio.TimeoutError:
            raise HTTPException(504, f"search took over {limits.request_timeout_s:g}s") from None
        return {"result": result}

    @app.get("/doc/{doc_id:path}")
    async def doc_endpoint(doc_id: str) -> dict[str, Any]:
        found = await run_in_threadpool(searcher.get, doc_id) if valid_doc_id(doc_id) else None
        if found is None:
            raise HTTPException(404, f"no document with id {doc_id[:80]!r}")
        return found.model_dump(mode="json")

    @app.get("/health")
    async def health_endpoint() -> dict[str, Any]:
        manifest = searcher.manifest
        return {
            "status": "ok",
            "backend": manifest.backend,
            "doc_count": manifest.doc_count,
            "corpus_name": manifest.corpus_name,
            "corpus_fingerprint": manifest.corpus_fingerprint,
            "index_fingerprint": manifest.manifest_sha256,
            "entity_extractor": manifest.entity_extractor,
            "manifest": manifest.model_dump(mode="json"),
            "limits": asdict(limits),
            "server": stats.snapshot(),
        }

    app.add_middleware(_BodyLimit, limit=limits.max_body_bytes)
    app.add_middleware(_CountRequests, stats=stats)
    return app


def _version() -> str:
    from medr3_env.version import __version__

    return __version__
