"""Core commands: ``demo``, ``search``, ``index build`` and ``index info``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.table import Table

from medr3_env.cli.app import (
    DATASET_HELP,
    STAGE_HELP,
    MedR3Typer,
    app,
    console,
    fail,
    load_stage,
)
from medr3_env.cli.reporting import reward_table, run_episodes


def extractor_help() -> str:
    """The registered entity extractors (``registry.extractors``) as spec forms, for option help:
    ``NAME``, ``NAME:ARGUMENT`` where the description gives that form, ``NAME[:ARGUMENT]`` where
    it also names a default."""
    import re

    from medr3_env.plugins import registry

    forms = []
    for info in registry.extractors.info():
        found = re.search(rf"\b{re.escape(info.name)}:([A-Z][A-Z_+]*)", info.description)
        if found is None:
            forms.append(info.name)
        elif "default" in info.description:
            forms.append(f"{info.name}[:{found.group(1)}]")
        else:
            forms.append(found.group(0))
    return ", ".join(forms)


def _backends(*, local: bool = False) -> list[str]:
    """The registered search backends (``registry.backends``), for option help."""
    from medr3_env.plugins import registry
    from medr3_env.search import local_backends

    return local_backends() if local else registry.backends.names()


def index_backend(directory: Path) -> str:
    """The backend that built the index at ``directory`` (its manifest's ``backend``)."""
    from medr3_env.search import IndexManifest

    return IndexManifest.read(directory).backend


index_app = MedR3Typer(help="Build, inspect and verify search indexes.", no_args_is_help=True)
app.add_typer(index_app, name="index")


@app.command()
def demo(
    episodes: int = typer.Option(
        0, "-n", "--episodes", min=0, help="Episodes to run (0: the whole split)."
    ),
    split: str = typer.Option("test", help="Question split: train, dev, test or all."),
    stage: str = typer.Option("joint", help=STAGE_HELP),
    dataset: str | None = typer.Option(None, help=DATASET_HELP),
    corpus: str | None = typer.Option(
        None, help="Corpus spec (default: the stage file's, else the dataset's own)."
    ),
    backend: str | None = typer.Option(
        None, help=f"Search backend: {', '.join(_backends())} (default: the stage file's, whoosh)."
    ),
    out: Path = typer.Option(Path("runs/demo-trajectories.jsonl"), help="Trajectory JSONL output."),
    seed: int = typer.Option(0, min=0, help="Seed for the episode order."),
) -> None:
    """Run the scripted search → read → answer baseline and print per-term rewards."""
    from medr3_env.baseline import ScriptedPolicy
    from medr3_env.env import MedR3Env
    from medr3_env.trajectory import write_jsonl

    config = load_stage(stage)
    env_config = config.env_config(dataset=dataset, split=split, corpus=corpus, backend=backend)
    with console.status("loading questions and building the index (first run only)…"):
        env = MedR3Env(env_config)
    items = env.questions.items[: episodes or None]
    records = run_episodes(env, ScriptedPolicy(env.config.entity_extractor), items, seed)
    path = write_jsonl(records, out)
    title = f"MedR3 demo: scripted baseline on {env.questions.name} ({config.name} stage)"
    console.print(reward_table(records, env.config.reward_weights, title))
    console.print(f"trajectories: {path}")


@app.command()
def search(
    query: str = typer.Argument(..., help="Free-text query."),
    k: int = typer.Option(5, "-k", min=1, max=50, help="Number of hits."),
    corpus: str | None = typer.Option(None, help="Corpus spec (default: starter)."),
    backend: str | None = typer.Option(
        None,
        help=f"Search backend: {', '.join(_backends())} (default: whoosh; the index's own with "
        "--index; remote with --url).",
    ),
    index: Path | None = typer.Option(None, help="A prebuilt index directory."),
    url: str | None = typer.Option(None, help="A medr3 serve server (implies --backend remote)."),
    as_json: bool = typer.Option(False, "--json", help="Print hits as JSON."),
) -> None:
    """Search a corpus, a prebuilt index or a retrieval server from the command line."""
    from medr3_env.search import build_searcher

    if index is not None and corpus is not None:
        fail("give either --index or --corpus, not both")
    if url:
        if index is not None or corpus is not None:
            fail("--url searches the server's own index: leave out --corpus and --index")
        if backend not in (None, "remote"):
            fail(f"--backend {backend} does not go with --url (a server is searched remotely)")
        backend = "remote"
    elif index is not None and backend is not None:
        built = index_backend(index)
        if built != backend:
            fail(f"--backend {backend} does not match the index at {index} ({built})")
    searcher = build_searcher(corpus, backend=backend or "whoosh", index_dir=index, url=url)
    hits = searcher.search(query, k=k)
    if as_json:
        typer.echo(json.dumps([h.model_dump() for h in hits], ensure_ascii=False, indent=2))
        return
    if not hits:
        console.print("no results")
        return
    table = Table(show_lines=True)
    for column in ("#", "id", "title", "score", "snippet"):
        table.add_column(column)
    for hit in hits:
        table.add_row(str(hit.rank), hit.doc_id, hit.title, f"{hit.score:.2f}", hit.snippet)
    console.print(table)


_INDEX_BUILD_HELP = (
    "Build an index explicitly (progress with docs/s and ETA on stderr).\n\n"
    "--out must be missing, an empty folder or a MedR3 index (a folder with a manifest.json); "
    "anything else is refused, never replaced.\n\n"
    "A tantivy build commits every 100,000 documents (or 5 minutes) into OUT.partial; a rerun "
    "after an interruption continues from there. A Whoosh build starts over."
)


@index_app.command("build", help=_INDEX_BUILD_HELP)
def index_build(
    corpus: str = typer.Option(
        "starter",
        help="Corpus spec with optional loader options, e.g. "
        "medrag:/data/medquad.jsonl?on_duplicate=first&on_error=skip.",
    ),
    out: Path | None = typer.Option(None, help="Index directory (default: the cache)."),
    backend: str = typer.Option(
        "whoosh", help=f"Local search backend: {', '.join(_backends(local=True))}."
    ),
    entity_extractor: str = typer.Option("auto", help=f"Entity extractor: {extractor_help()}."),
    restart: bool = typer.Option(
        False,
        "--restart",
        help="Discard what an interrupted tantivy build of --out committed and start over "
        "(default: continue from its last checkpoint when corpus and options match).",
    ),
) -> None:
    """Build an index (``--help``: :data:`_INDEX_BUILD_HELP`, one paragraph per line, so that
    the help rewraps whole sentences)."""
    from medr3_env.cli.app import fail
    from medr3_env.corpora.dedupe import duplicates_message
    from medr3_env.search import build_index, build_searcher
    from medr3_env.search.index_cache import NotAnIndexError

    with _duplicates_reported_below():
        if out is None:
            searcher = build_searcher(
                corpus, backend=backend, entity_extractor=entity_extractor, progress=True
            )
            manifest = searcher.manifest
            where = getattr(searcher, "directory", "the cache")
        else:
            try:
                manifest = build_index(
                    corpus,
                    out,
                    backend=backend,
                    entity_extractor=entity_extractor,
                    progress=True,
                    resume=not restart,
                )
            except NotAnIndexError as exc:
                fail(
                    f"{exc.path} exists and is not a MedR3 index ({exc.what}); "
                    "pick another --out or remove it"
                )
            where = out
    console.print(
        f"indexed {manifest.doc_count} documents in {manifest.build_seconds:.1f}s into {where}",
        highlight=False,
        soft_wrap=True,
    )
    options = manifest.loader_options
    if manifest.duplicate_ids:
        kept = str(options.get("on_duplicate", "first"))
        console.print(
            duplicates_message(manifest.duplicate_ids, kept), highlight=False, soft_wrap=True
        )
    if manifest.skipped_records:
        console.print(
            f"skipped {manifest.skipped_records} malformed records (on_error=skip)",
            highlight=False,
            soft_wrap=True,
        )


@contextmanager
def _duplicates_reported_below() -> Iterator[None]:
    """Leave out the loader's log line of dropped duplicate ids: the command prints the count
    from the manifest (the same wording, once, also when the index came from the cache)."""
    import logging

    from medr3_env.corpora.dedupe import DUPLICATES_LOG_MARK
    from medr3_env.corpora.dedupe import logger as dedupe_log

    def keep(record: logging.LogRecord) -> bool:
        return not getattr(record, DUPLICATES_LOG_MARK, False)

    dedupe_log.addFilter(keep)
    try:
        yield
    finally:
        dedupe_log.removeFilter(keep)


@index_app.command("info")
def index_info(directory: Path = typer.Argument(..., help="Index directory.")) -> None:
    """Print an index's manifest (without the per-file checksums)."""
    from medr3_env.search import IndexManifest

    manifest = IndexManifest.read(directory)
    table = Table(show_header=False)
    for key, value in manifest.model_dump(exclude={"files"}).items():
        table.add_row(key, str(value))
    files = manifest.files.values()
    table.add_row("files", f"{len(files)} ({sum(f.size for f in files):,} bytes)")
    console.print(table)


@index_app.command("verify")
def index_verify(directory: Path = typer.Argument(..., help="Index directory.")) -> None:
    """Check an index fully: every file's checksum, the document count and a test query.

    Exit status 0 when it is intact; 2 with the problem when it is not."""
    from medr3_env.search import verify_index

    with console.status(f"verifying {directory}…"):
        report = verify_index(directory)
    rank = f"rank {report.probe_rank}" if report.probe_rank else "not in the top 50"
    console.print(
        f"ok: {report.directory} ({report.backend}, {report.doc_count:,} documents, "
        f"{report.files} files, {report.bytes:,} bytes, checksums match; test query: "
        f"{report.query_hits} hits, probe document {rank})",
        highlight=False,
        soft_wrap=True,
    )
