"""``medr3 serve``: the shared retrieval server (Search-R1 ``/retrieve`` protocol)."""

from __future__ import annotations

import ipaddress
import signal
from pathlib import Path

import typer

from medr3_env.cli.app import app, console, err_console, fail, one_line
from medr3_env.cli.core import extractor_help, index_backend
from medr3_env.search import local_backends

LOOPBACK = "127.0.0.1"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
def serve(
    index: Path | None = typer.Option(None, help="A prebuilt index directory (medr3 index build)."),
    corpus: str | None = typer.Option(None, help="Corpus spec to index (cached); default starter."),
    backend: str | None = typer.Option(
        None,
        help=f"Backend for --corpus: {', '.join(local_backends())} (default: tantivy; with "
        "--index it must be the index's own).",
    ),
    entity_extractor: str = typer.Option(
        "auto", help=f"Entity extractor for --corpus: {extractor_help()}."
    ),
    host: str = typer.Option(LOOPBACK, help="Interface to bind (default: loopback only)."),
    port: int = typer.Option(8000, min=0, max=65535, help="TCP port."),
    max_topk: int = typer.Option(50, min=1, max=50, help="Largest topk a request may ask for."),
    max_queries: int = typer.Option(256, min=1, help="Most queries in one request."),
    max_body_bytes: int = typer.Option(1_048_576, min=1024, help="Largest request body."),
    timeout: float = typer.Option(30.0, min=0.1, help="Seconds before a request answers 504."),
    grace: int = typer.Option(
        30, min=0, help="On SIGTERM/SIGINT, seconds in-flight requests get to finish."
    ),
    log_level: str = typer.Option("warning", help="uvicorn log level."),
) -> None:
    """Serve one index over HTTP so many environment processes share it."""
    try:
        import uvicorn

        from medr3_env.search.server import ServerLimits, create_app
    except ImportError:
        fail("the retrieval server needs FastAPI and uvicorn: pip install 'medr3-env[server]'")
    if index is not None and corpus is not None:
        fail("give either --index or --corpus, not both")
    if backend is not None and backend not in local_backends():
        fail(
            f"the server searches a local index: --backend must be one of "
            f"{', '.join(local_backends())} (got {backend!r})"
        )
    if index is not None and backend is not None:
        built = index_backend(index)
        if built != backend:
            fail(f"--backend {backend} does not match the index at {index} ({built})")
    from medr3_env.search import build_searcher

    try:
        with console.status("opening the index (building it on first use)…"):
            searcher = build_searcher(
                corpus,
                backend=backend or "tantivy",
                index_dir=index,
                entity_extractor=entity_extractor,
            )
    except (ValueError, FileNotFoundError, ImportError) as exc:
        fail(one_line(exc))
    limits = ServerLimits(
        max_body_bytes=max_body_bytes,
        max_queries=max_queries,
        max_topk=max_topk,
        default_topk=min(5, max_topk),
        request_timeout_s=timeout,
    )
    manifest = searcher.manifest
    if not _is_loopback(host):
        err_console.print(
            f"[yellow]warning:[/yellow] binding {host}: the index is reachable from other machines "
            "and the server has no authentication"
        )
    console.print(
        f"serving {manifest.corpus_name} ({manifest.doc_count:,} documents, {manifest.backend}) "
        f"on http://{host}:{port}  (POST /retrieve, GET /doc/ID, GET /health)"
    )
    config = uvicorn.Config(
        create_app(searcher, limits),
        host=host,
        port=port,
        log_level=log_level,
        timeout_keep_alive=30,
        limit_concurrency=1024,
        timeout_graceful_shutdown=grace,
    )
    # uvicorn handles SIGTERM and SIGINT: it stops accepting, lets in-flight requests finish
    # (up to `grace` seconds), returns, then re-raises the signal to the handler it found;
    # this one records it, so the process closes the index and exits 0.
    received: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, frame: received.append(number))
    uvicorn.Server(config).run()
    searcher.close()
    why = f" on {signal.Signals(received[0]).name}" if received else ""
    console.print(f"server stopped{why}", highlight=False)
