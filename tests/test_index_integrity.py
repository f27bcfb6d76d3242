"""Durable indexes: damaged cache entries are rebuilt, damaged user indexes raise
IndexCorruptError (one line from the CLI), builds killed at any stage leave nothing that blocks
or poisons the next one, and only directories with a MedR3 manifest are opened."""

from __future__ import annotations

import gc
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medr3_env.cli import app
from medr3_env.corpora import Corpus, Document
from medr3_env.search import IndexCorruptError, build_index, build_searcher, open_index
from medr3_env.search.base import MANIFEST_NAME, IndexManifest
from medr3_env.search.integrity import IndexCacheWarning, verify_index

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]

DOCS = [
    Document(id=f"d{i}", title=f"Topic {i}", content=f"{word} treatment and dosing. Sentence {i}.")
    for i, word in enumerate(
        ["metformin", "warfarin", "digoxin", "amiodarone", "heparin", "insulin", "aspirin"]
    )
]


def small_corpus(name: str = "durable-small") -> Corpus:
    return Corpus.from_documents(name, DOCS)


def backends() -> list[str]:
    found = ["whoosh"]
    try:
        import tantivy  # noqa: F401

        found.append("tantivy")
    except ImportError:
        pass
    return found


def _largest(directory: Path, suffix: str) -> Path:
    files = [p for p in directory.iterdir() if p.name.endswith(suffix)]
    return max(files, key=lambda p: p.stat().st_size)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGE = {"whoosh": ".seg", "tantivy": ".store"}


@pytest.mark.parametrize("backend", backends())
def test_truncated_cache_file_is_rebuilt_with_a_warning(tmp_path, backend):
    corpus = small_corpus()
    before = build_searcher(corpus, backend=backend, cache_dir=tmp_path, entity_extractor="none")
    expected = [h.doc_id for h in before.search("digoxin dosing", k=3)]
    directory = before.directory
    before.close()
    del before
    gc.collect()  # tantivy maps its files: truncating a mapped file would crash this process
    _truncate(_largest(directory, DAMAGE[backend]))
    with pytest.warns(IndexCacheWarning, match=r"damaged \(file .* has \d+ bytes"):
        after = build_searcher(corpus, backend=backend, cache_dir=tmp_path, entity_extractor="none")
    assert [h.doc_id for h in after.search("digoxin dosing", k=3)] == expected
    verify_index(after.directory)  # the rebuilt entry passes the full check


@pytest.mark.parametrize("garbage", [b"{not json", b"", b'{"schema_version": 2}'])
def test_corrupt_manifest_in_the_cache_is_rebuilt(tmp_path, garbage):
    corpus = small_corpus()
    directory = build_searcher(corpus, cache_dir=tmp_path, entity_extractor="none").directory
    (directory / MANIFEST_NAME).write_bytes(garbage)
    with pytest.warns(IndexCacheWarning, match="manifest.json"):
        searcher = build_searcher(corpus, cache_dir=tmp_path, entity_extractor="none")
    assert searcher.get("d2") is not None


def test_edited_manifest_fails_its_checksum(tmp_path):
    out = tmp_path / "ix"
    build_index(small_corpus(), out, entity_extractor="none")
    data = json.loads((out / MANIFEST_NAME).read_text())
    data["doc_count"] = 999
    (out / MANIFEST_NAME).write_text(json.dumps(data))
    with pytest.raises(IndexCorruptError, match="does not match its checksum"):
        open_index(out)


@pytest.mark.parametrize("backend", backends())
def test_damaged_user_index_names_the_directory_and_the_fix(tmp_path, backend):
    out = tmp_path / "user-ix"
    build_index(small_corpus(), out, backend=backend, entity_extractor="none")
    _truncate(_largest(out, DAMAGE[backend]))
    with pytest.raises(IndexCorruptError) as info:
        open_index(out)
    message = str(info.value)
    assert str(out) in message and "medr3 index build" in message
    assert info.value.directory == out


def test_same_size_damage_is_found_by_verify(tmp_path):
    out = tmp_path / "ix"
    build_index(small_corpus(), out, entity_extractor="none")
    report = verify_index(out)
    assert report.doc_count == len(DOCS) and report.probe_rank == 1
    _flip_byte(_largest(out, ".seg"))
    with pytest.raises(IndexCorruptError, match="does not match its checksum"):
        verify_index(out)
    result = runner.invoke(app, ["index", "verify", str(out)])
    assert result.exit_code == 2
    assert "does not match its checksum" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_cli_verify_passes_an_intact_index(tmp_path):
    out = tmp_path / "ix"
    build_index(small_corpus(), out, entity_extractor="none")
    result = runner.invoke(app, ["index", "verify", str(out)])
    assert result.exit_code == 0, result.output
    assert "checksums match" in result.output and f"{len(DOCS)} documents" in result.output


@pytest.mark.parametrize(
    "argv",
    [
        ["search", "x", "--index", "{ix}"],
        ["index", "info", "{ix}"],
        ["index", "verify", "{ix}"],
    ],
)
def test_cli_reports_a_damaged_index_in_one_line(tmp_path, argv):
    out = tmp_path / "ix"
    build_index(small_corpus(), out, entity_extractor="none")
    (out / MANIFEST_NAME).write_text("{broken")
    result = runner.invoke(app, [a.format(ix=out) for a in argv])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: index ") and str(out) in lines[0]
    assert "Traceback" not in result.output and result.exception is not None


def test_cli_reports_other_expected_errors_in_one_line(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "content": "x"}\n{"id": "a", "content": "y"}\n')
    for argv in (
        ["index", "build", "--corpus", f"medrag:{corpus}", "--out", str(tmp_path / "o")],
        ["index", "build", "--corpus", f"medrag:{corpus}?bogus=1"],
        ["search", "x", "--backend", "nosuch"],
    ):
        result = runner.invoke(app, argv)
        assert result.exit_code == 2, (argv, result.output)
        lines = result.output.strip().splitlines()
        assert lines[-1].startswith("error: "), result.output
        assert sum("error" in line for line in lines) == 1 and "Traceback" not in result.output


def test_only_directories_with_a_medr3_manifest_are_opened(tmp_path):
    """A Whoosh TOC is a pickle: a foreign directory is refused before anything is unpickled."""
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (foreign / "_MAIN_1.toc").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(IndexCorruptError, match="not a MedR3 index"):
        open_index(foreign)
    with pytest.raises(IndexCorruptError, match="not a MedR3 index"):
        build_searcher(index_dir=foreign)
    assert not marker.exists()


# --- builds killed at every stage --------------------------------------------------------

BUILD_SCRIPT = textwrap.dedent(
    """
    import sys
    from medr3_env.corpora import Corpus, Document
    from medr3_env.search import build_index, build_searcher

    docs = [Document(id=f"k{i}", title=f"T{i}", content=f"word{i} shared text") for i in range(600)]
    corpus = Corpus.from_documents("killed-build", docs)
    if sys.argv[1] == "cache":
        build_searcher(corpus, cache_dir=sys.argv[2], entity_extractor="none")
    else:
        build_index(corpus, sys.argv[2], entity_extractor="none")
    print("finished", flush=True)
    """
)
STAGES = ["locked", "indexing", "files-written", "manifest-written", "renamed"]


def _killed_build(mode: str, target: Path, stage: str, extra_env: dict | None = None) -> None:
    env = {**os.environ, "MEDR3_DEBUG_PAUSE": stage, **(extra_env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-c", BUILD_SCRIPT, mode, str(target)],
        env=env,
        cwd=REPO,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith(f"medr3-debug-pause {stage}"):
            break
        if time.monotonic() > deadline:
            break
    else:
        pytest.fail(f"the build never reached stage {stage!r} (exit {proc.wait()})")
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL


def _killed_corpus() -> Corpus:
    docs = [Document(id=f"k{i}", title=f"T{i}", content=f"word{i} shared text") for i in range(600)]
    return Corpus.from_documents("killed-build", docs)


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_cache_build_killed_at_any_stage_does_not_block_the_next(tmp_path, stage):
    _killed_build("cache", tmp_path, stage)
    started = time.monotonic()
    searcher = build_searcher(_killed_corpus(), cache_dir=tmp_path, entity_extractor="none")
    assert time.monotonic() - started < 60  # the dead builder's lock did not hold us
    assert searcher.manifest.doc_count == 600
    assert [h.doc_id for h in searcher.search("word17", k=1)] == ["k17"]
    verify_index(searcher.directory)
    leftovers = [p.name for p in (tmp_path / "indexes").iterdir() if ".tmp-" in p.name]
    assert leftovers == []


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["indexing", "manifest-written"])
def test_rebuild_killed_midway_keeps_the_previous_index(tmp_path, stage):
    out = tmp_path / "ix"
    build_index(_killed_corpus(), out, entity_extractor="none")
    before = IndexManifest.read(out).manifest_sha256
    _killed_build("out", out, stage)
    assert IndexManifest.read(out).manifest_sha256 == before
    verify_index(out)
    build_index(_killed_corpus(), out, entity_extractor="none")  # and a new build succeeds
    assert not list(tmp_path.glob("ix.tmp-*"))
    verify_index(out)


def test_stale_soft_lock_of_a_dead_process_is_broken(tmp_path, monkeypatch):
    _killed_build("cache", tmp_path, "locked", {"MEDR3_LOCK": "soft"})
    locks = list((tmp_path / "indexes").glob("*.lock"))
    assert len(locks) == 1  # the dead builder's lock file is still there
    monkeypatch.setenv("MEDR3_LOCK", "soft")
    with pytest.warns(IndexCacheWarning, match="breaking stale lock"):
        searcher = build_searcher(_killed_corpus(), cache_dir=tmp_path, entity_extractor="none")
    assert searcher.manifest.doc_count == 600
    assert not list((tmp_path / "indexes").glob("*.lock"))


HEAL_SCRIPT = textwrap.dedent(
    """
    import sys, warnings
    from medr3_env.corpora import Corpus, Document
    from medr3_env.search import build_searcher

    docs = [Document(id=f"k{i}", title=f"T{i}", content=f"word{i} shared text") for i in range(600)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = build_searcher(Corpus.from_documents("killed-build", docs), cache_dir=sys.argv[1],
                           entity_extractor="none")
    print(sum("rebuilding" in str(w.message) for w in caught), s.search("word5", k=1)[0].doc_id)
    """
)


@pytest.mark.slow
def test_concurrent_openers_of_a_damaged_entry_rebuild_it_once(tmp_path):
    searcher = build_searcher(_killed_corpus(), cache_dir=tmp_path, entity_extractor="none")
    directory = searcher.directory
    searcher.close()
    del searcher
    gc.collect()
    _truncate(_largest(directory, ".seg"))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", HEAL_SCRIPT, str(tmp_path)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=180)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(int(o[0]) for o in outputs) == [0, 0, 1]
    assert {o[1] for o in outputs} == {"k5"}


def test_term_table_cache_is_checked_json_not_pickle(tmp_path):
    from medr3_env.term_matcher import cached_term_table

    table = cached_term_table(["starter"], cache_dir=tmp_path)
    files = list((tmp_path / "lexicons").iterdir())
    assert len(files) == 1 and files[0].suffix == ".json"
    header = json.loads(files[0].read_bytes().split(b"\n", 1)[0])
    assert header["format"] == "medr3-term-table" and len(header["sha256"]) == 64
    assert cached_term_table(["starter"], cache_dir=tmp_path).lower == table.lower
    # A damaged or edited file fails its checksum and is rebuilt, never trusted.
    raw = files[0].read_bytes()
    files[0].write_bytes(raw.replace(b'"lower"', b'"lower" ', 1)[:-10])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = cached_term_table(["starter"], cache_dir=tmp_path)
    assert again.lower == table.lower and again.exact == table.exact
    assert files[0].read_bytes() == raw


def test_progress_reports_rate_and_eta_on_a_log_file(tmp_path):
    from medr3_env.search.progress import progress_line

    line = progress_line("indexing x", 1_200_000, 10_000_000, 150.0)
    assert line == (
        "indexing x: 1,200,000/10,000,000 docs (12%), 8,000 docs/s, elapsed 0:02:30, ETA 0:18:20"
    )
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(f'{{"id": "{i}", "content": "text {i}"}}\n' for i in range(300)))
    result = runner.invoke(
        app, ["index", "build", "--corpus", f"medrag:{corpus}", "--out", str(tmp_path / "ix")]
    )
    assert result.exit_code == 0, result.output
    assert "300/300 docs (100%)" in result.output and "docs/s" in result.output


def test_progress_by_default_logs_long_work_off_a_terminal(capsys, monkeypatch):
    """``enabled=None`` (every build's default, e.g. a first ``gym.make``): off a terminal, short
    work prints nothing and work longer than the interval prints lines, then a closing one."""
    import types

    import medr3_env.search.progress as progress

    clock = iter(range(0, 10_000, 10))  # each monotonic() call: 10 s later
    with progress.progress_bar("indexing quick", total=5, interval=1e9) as advance:
        advance(5)
    assert capsys.readouterr().err == ""
    ticking = types.SimpleNamespace(monotonic=lambda: float(next(clock)))
    monkeypatch.setattr(progress, "time", ticking)  # this module's clock only
    with progress.progress_bar("indexing slow", total=300, interval=15.0) as advance:
        for _ in range(3):
            advance(100)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("indexing slow: 200/300 docs (67%)") and "ETA" in lines[0]
    assert lines[-1].startswith("indexing slow: 300/300 docs (100%)")
    with progress.progress_bar("indexing off", total=300, enabled=False) as advance:
        advance(300)
    assert capsys.readouterr().err == ""


def test_medrag_size_hint_is_counted_only_when_asked(tmp_path, monkeypatch):
    from medr3_env.corpora import load_corpus

    corpus_file = tmp_path / "c.jsonl"
    corpus_file.write_text("".join(f'{{"id": "{i}", "content": "t"}}\n' for i in range(42)))
    calls = []
    import medr3_env.corpora.medrag as medrag

    real = medrag.file_chunks
    monkeypatch.setattr(medrag, "file_chunks", lambda *a: calls.append(a) or real(*a))
    corpus = load_corpus(f"medrag:{corpus_file}")
    assert calls == []  # loading (every gym.make) never reads the whole file
    assert corpus.size_hint == 42 and len(calls) == 1
    assert corpus.size_hint == 42 and len(calls) == 1


# --- resumable tantivy builds ------------------------------------------------------------

RESUME_DOCS = [
    Document(
        id=f"r{i}",
        title=f"Report {i}",
        content=f"word{i} {['metformin', 'warfarin', 'digoxin'][i % 3]} dosing, group{i % 37}. "
        f"Case {i % 11} with {'more words ' * (i % 5)}follow-up.",
    )
    for i in range(600)
]
RESUME_QUERIES = ["word17", "group5", "group12 word599 group30", "word0 word400 word450"]
"""Queries of rare words: every matching document is a hit (no ties cut at ``k``)."""


def _content(docs):
    return [doc.model_dump_json().encode() for doc in docs]


RESUME_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    from test_index_integrity import resume_build

    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    print("finished", resume_build(Path(sys.argv[1]), workers=workers), flush=True)
    """
)


class CountingExtractor:
    """The real "none" extractor, counting the documents it is given (what gets indexed)."""

    def __init__(self) -> None:
        from medr3_env.entities import load_extractor

        self.inner = load_extractor("none")
        self.name = self.inner.name
        self.texts = 0

    def extract_sentences(self, texts, batch_size=64):
        texts = list(texts)
        self.texts += len(texts)
        return self.inner.extract_sentences(texts, batch_size)


def resume_build(
    out: Path, docs=RESUME_DOCS, *, stop_after: int | None = None, workers: int = 0, **options
):
    """A tantivy build of ``docs`` that commits every 200 documents (100 a batch); with
    ``stop_after`` it is interrupted (KeyboardInterrupt) after reading that many documents.
    Returns how many documents the extractor was given (prepared for indexing) in this process:
    with ``workers``, documents after the first 100 are prepared in worker processes."""
    from medr3_env.search.index_cache import build_index_dir
    from medr3_env.search.tantivy_backend import build_tantivy_index

    extractor = CountingExtractor()

    def stream():
        for position, doc in enumerate(docs):
            if position == stop_after:
                raise KeyboardInterrupt
            yield doc

    # The fingerprint reads the documents, never the interrupted stream.
    corpus = Corpus(
        "resume-test", stream, fingerprint_source=lambda: _content(docs), size_hint=len(docs)
    )
    build_index_dir(
        corpus,
        out,
        backend="tantivy",
        extractor=extractor.name,
        builder=lambda c, d: build_tantivy_index(
            c,
            d,
            extractor,
            batch_size=100,
            commit_every=200,
            progress=False,
            workers=workers,
            parallel_after=100,
        ),
        **options,
    )
    return extractor.texts


def _results(directory: Path) -> list[list[tuple[str, float]]]:
    searcher = open_index(directory)
    try:
        return [
            sorted((h.doc_id, round(h.score, 4)) for h in searcher.search(q, k=50))
            for q in RESUME_QUERIES
        ]
    finally:
        searcher.close()


def _ids_held(directory: Path) -> dict[str, int]:
    """How many times each document id occurs in the tantivy index in ``directory``."""
    import tantivy

    index = tantivy.Index.open(str(directory))
    searcher = index.searcher()
    counts = {}
    for doc in RESUME_DOCS:
        query = tantivy.Query.term_query(index.schema, "id", doc.id, index_option="basic")
        counts[doc.id] = searcher.search(query, limit=5, count=True).count
    return counts


needs_tantivy = pytest.mark.skipif("tantivy" not in backends(), reason="needs tantivy")


@pytest.fixture(scope="module")
def fresh_results(tmp_path_factory) -> list[list[tuple[str, float]]]:
    out = tmp_path_factory.mktemp("fresh") / "ix"
    assert resume_build(out) == len(RESUME_DOCS)
    return _results(out)


def _checkpoint(out: Path):
    from medr3_env.search.checkpoint import BuildCheckpoint

    return BuildCheckpoint.read(out.with_name(out.name + ".partial"))


def _paused_resume_build(out: Path, pause: str, *args: str) -> subprocess.Popen[str]:
    """Start RESUME_SCRIPT building into ``out`` and return once it stops at ``pause``
    (``STAGE@N``), ready to be killed."""
    env = {**os.environ, "MEDR3_DEBUG_PAUSE": pause}
    proc = subprocess.Popen(
        [sys.executable, "-c", RESUME_SCRIPT, str(out), str(Path(__file__).parent), *args],
        env=env,
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    stage = pause.split("@")[0]
    for line in proc.stderr:
        if line.startswith(f"medr3-debug-pause {stage}"):
            return proc
    pytest.fail(f"the build never paused (exit {proc.wait()})")


@needs_tantivy
@pytest.mark.slow
def test_tantivy_build_killed_after_a_commit_resumes_from_its_checkpoint(
    tmp_path, caplog, fresh_results
):
    out = tmp_path / "ix"
    # SIGKILL at the 5th batch: 400 documents committed, the 5th batch read but not committed.
    proc = _paused_resume_build(out, "indexing@5")
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL
    checkpoint = _checkpoint(out)
    assert checkpoint is not None and checkpoint.documents_committed == 400
    assert not out.exists()

    with caplog.at_level("WARNING"):
        prepared = resume_build(out)
    assert "resuming the interrupted build" in caplog.text and "400 documents" in caplog.text
    assert prepared == len(RESUME_DOCS) - 400  # the committed documents were not indexed again
    assert set(_ids_held(out).values()) == {1}  # every document exactly once
    assert _results(out) == fresh_results
    manifest = IndexManifest.read(out)
    assert manifest.doc_count == len(RESUME_DOCS) and manifest.probe_id == "r0"
    assert "medr3-checkpoint.json" not in manifest.files
    assert not (out / "medr3-checkpoint.json").exists()
    assert not out.with_name("ix.partial").exists()
    verify_index(out)


@needs_tantivy
def test_interrupted_tantivy_build_resumes_and_equals_a_fresh_one(tmp_path, fresh_results):
    out = tmp_path / "ix"
    with pytest.raises(KeyboardInterrupt):
        resume_build(out, stop_after=450)  # commits at 200 and 400; 50 documents lost
    assert _checkpoint(out).documents_committed == 400
    assert resume_build(out) == len(RESUME_DOCS) - 400
    assert _results(out) == fresh_results
    assert set(_ids_held(out).values()) == {1}
    # Interrupted again after the resume's first commit: it resumes from the later checkpoint.
    again = tmp_path / "again"
    with pytest.raises(KeyboardInterrupt):
        resume_build(again, stop_after=250)
    with pytest.raises(KeyboardInterrupt):
        resume_build(again, stop_after=500)
    assert _checkpoint(again).documents_committed == 400
    assert resume_build(again) == len(RESUME_DOCS) - 400
    assert _results(again) == fresh_results


@needs_tantivy
def test_checkpoint_of_another_corpus_is_discarded_with_the_reason(tmp_path, caplog, fresh_results):
    out = tmp_path / "ix"
    other = [d.model_copy(update={"content": d.content + " extra"}) for d in RESUME_DOCS]
    with pytest.raises(KeyboardInterrupt):
        resume_build(out, other, stop_after=450)
    with caplog.at_level("WARNING"):
        assert resume_build(out) == len(RESUME_DOCS)  # everything indexed again
    assert "discarding the interrupted build" in caplog.text
    assert "another corpus content" in caplog.text
    assert _results(out) == fresh_results


@needs_tantivy
def test_restart_discards_a_matching_checkpoint(tmp_path, caplog):
    out = tmp_path / "ix"
    with pytest.raises(KeyboardInterrupt):
        resume_build(out, stop_after=450)
    with caplog.at_level("WARNING"):
        assert resume_build(out, resume=False) == len(RESUME_DOCS)
    assert "a restart was asked for" in caplog.text
    assert set(_ids_held(out).values()) == {1}


@needs_tantivy
def test_forged_checkpoint_whose_index_is_not_the_corpus_start_is_rebuilt(
    tmp_path, caplog, fresh_results
):
    """A checkpoint that claims this corpus over an index of other documents: the skipped
    documents are looked up, found missing, and the build starts over."""
    from medr3_env.search.checkpoint import CHECKPOINT_NAME
    from medr3_env.search.index_cache import _identity

    out = tmp_path / "ix"
    shifted = [d.model_copy(update={"id": "x" + d.id}) for d in RESUME_DOCS]
    with pytest.raises(KeyboardInterrupt):
        resume_build(out, shifted, stop_after=450)
    checkpoint = _checkpoint(out)
    target = Corpus(
        "resume-test", lambda: iter(RESUME_DOCS), fingerprint_source=lambda: _content(RESUME_DOCS)
    )
    checkpoint.identity = _identity(target, "tantivy", checkpoint.identity.entity_extractor)
    checkpoint.write(out.with_name("ix.partial"))
    assert (out.with_name("ix.partial") / CHECKPOINT_NAME).exists()
    with caplog.at_level("WARNING"):
        assert resume_build(out) == len(RESUME_DOCS)
    assert "resuming" in caplog.text and "lacks document 'r0'" in caplog.text
    assert _results(out) == fresh_results
    assert set(_ids_held(out).values()) == {1}


def test_whoosh_build_does_not_resume_a_partial_folder(tmp_path, caplog):
    from medr3_env.search.checkpoint import BuildCheckpoint, BuildIdentity

    out = tmp_path / "ix"
    partial = tmp_path / "ix.partial"
    partial.mkdir()
    identity = BuildIdentity(
        schema_version=2,
        backend="tantivy",
        entity_extractor="none",
        corpus_name="x",
        corpus_fingerprint="f",
        medr3_version="0",
    )
    BuildCheckpoint(identity=identity).write(partial)
    with caplog.at_level("WARNING"):
        manifest = build_index(small_corpus(), out, entity_extractor="none")
    assert "a whoosh build does not resume" in caplog.text
    assert manifest.doc_count == len(DOCS) and not partial.exists()


def test_verify_compares_the_document_count_with_the_index(tmp_path):
    out = tmp_path / "ix"
    build_index(small_corpus(), out, entity_extractor="none")
    manifest = IndexManifest.read(out)
    manifest.doc_count += 1
    manifest.write(out)  # a consistent manifest (valid checksum) that miscounts
    with pytest.raises(IndexCorruptError, match=r"holds 7 documents, the manifest records 8"):
        verify_index(out)


def test_debug_pause_can_wait_for_the_nth_time_a_stage_is_reached(monkeypatch, capsys):
    from medr3_env.search import integrity

    monkeypatch.setattr(integrity, "_PAUSE_SEEN", {})
    monkeypatch.setenv("MEDR3_DEBUG_PAUSE", "stage-x@3:0")
    for _ in range(4):
        integrity.debug_pause("stage-x")
        integrity.debug_pause("stage-y")
    assert capsys.readouterr().err.count("medr3-debug-pause stage-x") == 1


@needs_tantivy
def test_cli_restart_flag_discards_the_checkpoint(tmp_path, caplog):
    out = tmp_path / "ix"
    with pytest.raises(KeyboardInterrupt):
        resume_build(out, stop_after=450)
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(f'{{"id": "{i}", "content": "text {i}"}}\n' for i in range(30)))
    argv = ["index", "build", "--corpus", f"medrag:{corpus}", "--out", str(out)]
    argv += ["--backend", "tantivy", "--entity-extractor", "none", "--restart"]
    with caplog.at_level("WARNING"):
        result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert "a restart was asked for" in caplog.text and "indexed 30 documents" in result.output
    assert not out.with_name("ix.partial").exists()


# --- documents prepared in worker processes ----------------------------------------------


def _stored(directory: Path) -> dict[str, dict]:
    """Every stored field of every document of a tantivy index, by id."""
    import tantivy

    index = tantivy.Index.open(str(directory))
    searcher = index.searcher()
    stored = {}
    for _, address in searcher.search(tantivy.Query.all_query(), limit=searcher.num_docs).hits:
        fields = searcher.doc(address).to_dict()
        stored[fields["id"][0]] = fields
    return stored


@needs_tantivy
@pytest.mark.slow
def test_documents_prepared_by_workers_build_the_same_index(tmp_path, caplog):
    from medr3_env.entities import LexiconExtractor
    from medr3_env.search.index_cache import build_index_dir
    from medr3_env.search.tantivy_backend import build_tantivy_index

    extractor = LexiconExtractor(
        [
            {"name": "digoxin", "label": "drug", "synonyms": ["lanoxin"]},
            {"name": "warfarin", "label": "drug", "synonyms": []},
            # more forms than a small table: the matcher's automata must reach the workers
            *({"name": f"compound{i}", "label": "drug", "synonyms": []} for i in range(80)),
        ],
        abbreviations=False,
    )
    assert extractor.matcher._small is None
    corpus = Corpus.from_documents("parallel-test", RESUME_DOCS)
    built = {}
    for workers in (0, 2):
        out = tmp_path / f"ix-{workers}"
        build_index_dir(
            corpus,
            out,
            backend="tantivy",
            extractor=extractor.name,
            builder=lambda c, d, w=workers: build_tantivy_index(
                c, d, extractor, batch_size=50, workers=w, parallel_after=100
            ),
        )
        built[workers] = out
    # the workers really ran: the extractor (automata and all) reached them
    assert "preparing documents in this process" not in caplog.text
    serial, parallel = _stored(built[0]), _stored(built[2])
    assert len(serial) == len(RESUME_DOCS) and serial == parallel
    assert any(json.loads(bytes(f["entities"][0])) for f in serial.values())  # entities found
    assert _results(built[0]) == _results(built[2])


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in {"Z", "X"}


@needs_tantivy
@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc")
def test_workers_exit_when_a_parallel_build_is_killed_and_the_rerun_resumes(
    tmp_path, fresh_results
):
    out = tmp_path / "ix"
    proc = _paused_resume_build(out, "committed@2", "2")
    workers = [
        c for c in _children(proc.pid) if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text()
    ]
    assert len(workers) == 2
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL
    deadline = time.monotonic() + 20
    while not all(_gone(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert all(_gone(w) for w in workers)  # no orphaned worker keeps running
    assert _checkpoint(out).documents_committed == 400
    resume_build(out, workers=2)
    assert set(_ids_held(out).values()) == {1}
    assert _results(out) == fresh_results


@needs_tantivy
def test_cli_index_build_resumes_an_interrupted_build_of_the_same_spec(tmp_path, caplog):
    from medr3_env.corpora import load_corpus
    from medr3_env.entities import load_extractor
    from medr3_env.search.index_cache import build_index_dir
    from medr3_env.search.tantivy_backend import build_tantivy_index

    corpus_file = tmp_path / "c.jsonl"
    corpus_file.write_text("".join(json.dumps(d.to_medrag()) + "\n" for d in RESUME_DOCS))
    spec, out = f"medrag:{corpus_file}", tmp_path / "ix"
    extractor = load_extractor("none")

    def interrupted(corpus, directory):
        def stream():
            for position, doc in enumerate(corpus):
                if position == 450:
                    raise KeyboardInterrupt
                yield doc

        cut = Corpus(corpus.name, stream)
        return build_tantivy_index(cut, directory, extractor, batch_size=100, commit_every=200)

    with pytest.raises(KeyboardInterrupt):
        build_index_dir(
            load_corpus(spec), out, backend="tantivy", extractor=extractor.name, builder=interrupted
        )
    argv = ["index", "build", "--corpus", spec, "--out", str(out)]
    argv += ["--backend", "tantivy", "--entity-extractor", "none"]
    with caplog.at_level("WARNING"):
        result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert "resuming the interrupted build" in caplog.text and "400 documents" in caplog.text
    assert f"indexed {len(RESUME_DOCS)} documents" in result.output
    assert set(_ids_held(out).values()) == {1}


# --- what a build may replace, the lock, the build's own output -------------------------


def _tree(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


@pytest.mark.parametrize("kind", ["folder", "file", "foreign-partial"])
def test_build_refuses_to_replace_what_is_not_a_medr3_index(tmp_path, kind):
    """An existing --out (or its .partial) that MedR3 did not make is never replaced or moved."""
    from medr3_env.search.index_cache import NotAnIndexError

    out = tmp_path / "precious"
    if kind == "file":
        out.write_text("a trajectory file\n")
    else:
        target = out if kind == "folder" else tmp_path / "precious.partial"
        (target / "sub").mkdir(parents=True)
        (target / "thesis.txt").write_text("thesis\n")
        (target / "sub" / "notes.md").write_text("notes\n")
    before = _tree(tmp_path)
    refused = tmp_path / "precious.partial" if kind == "foreign-partial" else out
    what = {"folder": "no manifest.json", "file": "a file, not a folder"}.get(
        kind, "no medr3-checkpoint.json"
    )
    with pytest.raises(NotAnIndexError, match="not a MedR3 index") as caught:
        build_index(small_corpus(), out, entity_extractor="none")
    assert isinstance(caught.value, OSError) and caught.value.path == refused
    assert _tree(tmp_path) == before  # nothing moved aside, deleted or added (no lock file)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        {"precious", "precious.partial"} & {p.name for p in tmp_path.iterdir()}
    )
    result = runner.invoke(app, ["index", "build", "--corpus", "starter", "--out", str(out)])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: {refused} exists and is not a MedR3 index ({what}); "
        "pick another --out or remove it"
    )
    assert _tree(tmp_path) == before


def test_build_replaces_an_empty_folder_or_an_index_and_keeps_look_alike_names(tmp_path):
    out = tmp_path / "ix"
    out.mkdir()
    (tmp_path / "ix.old-2019").mkdir()  # the user's, not a leftover of a build
    (tmp_path / "ix.old-2019" / "keep.txt").write_text("mine")
    (tmp_path / "ix.tmp-notes").write_text("mine too")
    assert build_index(small_corpus(), out, entity_extractor="none").doc_count == len(DOCS)
    again = build_index(small_corpus(), out, entity_extractor="none")  # an index: replaced
    assert again.doc_count == len(DOCS) and IndexManifest.read(out) == again
    assert (tmp_path / "ix.old-2019" / "keep.txt").read_text() == "mine"
    assert (tmp_path / "ix.tmp-notes").read_text() == "mine too"
    (tmp_path / "ix.partial").mkdir()  # an empty work folder (killed before its checkpoint)
    build_index(small_corpus(), out, entity_extractor="none")
    assert not (tmp_path / "ix.partial").exists()


def test_cache_entry_without_a_manifest_is_still_rebuilt(tmp_path):
    """The refusal is for --out only: a damaged cache entry (here: its manifest gone, a stray
    file left) is MedR3's own and is rebuilt."""
    first = build_searcher(small_corpus(), cache_dir=tmp_path, entity_extractor="none")
    entry = first.directory
    first.close()
    (entry / MANIFEST_NAME).unlink()
    (entry / "stray.bin").write_bytes(b"x")
    with pytest.warns(IndexCacheWarning, match="rebuilding"):
        again = build_searcher(small_corpus(), cache_dir=tmp_path, entity_extractor="none")
    assert again.directory == entry and again.manifest.doc_count == len(DOCS)
    assert not (entry / "stray.bin").exists()


def _finishes(work, seconds: float = 30.0) -> BaseException | None:
    """Run ``work`` in a thread; the exception it raised (fails the test if it still runs)."""
    import threading

    raised: list[BaseException] = []

    def run():
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "still waiting for a lock that can never be taken"
    return raised[0] if raised else None


@pytest.mark.parametrize("mode", ["flock", "soft"])
def test_a_lock_that_cannot_be_created_fails_at_once(tmp_path, monkeypatch, mode):
    """A lock file that cannot be created (here: a folder stands in its place) is an error,
    not "another process building" (which filelock would poll for ever)."""
    from medr3_env.search.integrity import BuildLock, BuildLockError

    if mode == "soft":
        monkeypatch.setenv("MEDR3_LOCK", "soft")
        # soft: a missing parent folder that cannot be made (a file is in the way)
        (tmp_path / "file").write_text("")
        target = tmp_path / "file" / "sub" / "ix"
    else:
        (tmp_path / "ix.lock").mkdir()
        target = tmp_path / "ix"

    def take():
        with BuildLock(target, poll_s=0.2):
            pass

    error = _finishes(take)
    assert isinstance(error, BuildLockError) and isinstance(error, OSError)
    assert str(error).startswith(f"cannot create the build lock {target}.lock: [Errno ")
    if mode == "flock":
        error = _finishes(lambda: build_index(small_corpus(), target, entity_extractor="none"))
        assert isinstance(error, BuildLockError)


CLI = "from medr3_env.cli import app; app(prog_name='medr3')"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc")
def test_cli_build_into_proc_reports_the_lock_in_one_line():
    proc = subprocess.run(
        [sys.executable, "-c", CLI, "index", "build", "--out", "/proc/ix"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [line for line in (proc.stdout + proc.stderr).splitlines() if "error" in line]
    assert len(errors) == 1
    assert errors[0].startswith("error: cannot create the build lock /proc/ix.lock: [Errno ")
    assert "waiting" not in proc.stderr


def _messy_corpus(tmp_path: Path) -> Path:
    """30 lines: 28 documents, a repeated id (line 11) and a broken line (line 21)."""
    lines = [json.dumps({"id": f"m{i}", "content": f"text number {i}"}) for i in range(28)]
    lines.insert(10, json.dumps({"id": "m3", "content": "again"}))
    lines.insert(20, '{"id": "cut", "content": ')
    path = tmp_path / "messy.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("keep", ["first", "last"])
def test_cli_build_reports_each_drop_once_and_ends_its_progress_at_100(tmp_path, caplog, keep):
    spec = f"medrag:{_messy_corpus(tmp_path)}?on_duplicate={keep}&on_error=skip"
    with caplog.at_level("WARNING"):
        result = runner.invoke(
            app, ["index", "build", "--corpus", spec, "--out", str(tmp_path / "ix")]
        )
    assert result.exit_code == 0, result.output
    said = caplog.text + result.output
    assert said.count("skipping malformed record") == 1 and "line 21" in said
    assert said.count("whose id was already used") == 1
    assert (
        f"dropped 1 records whose id was already used (on_duplicate={keep}: kept the {keep} "
        "record of each id)\n" in result.output
    )
    assert "skipped 1 malformed records (on_error=skip)" in result.output
    assert "28/28 docs (100%)" in result.output and "/30 docs" not in result.output
    manifest = IndexManifest.read(tmp_path / "ix")
    assert (manifest.doc_count, manifest.duplicate_ids, manifest.skipped_records) == (28, 1, 1)


def test_reading_twice_for_on_duplicate_last_logs_a_broken_line_once(tmp_path, caplog):
    from medr3_env.corpora import load_corpus

    corpus = load_corpus(f"medrag:{_messy_corpus(tmp_path)}?on_duplicate=last&on_error=skip")
    with caplog.at_level("WARNING"):
        docs = list(corpus)
    assert len(docs) == 28 and corpus.stats.skipped == 1 and corpus.stats.duplicates == 1
    assert caplog.text.count("skipping malformed record") == 1
    assert [d.content for d in docs if d.id == "m3"] == ["again"]
    assert caplog.text.count("dropped 1 records whose id was already used") == 1  # Python: logged


@needs_tantivy
def test_rerun_after_a_stop_before_the_first_commit_says_it_starts_over(tmp_path, caplog):
    out = tmp_path / "ix"
    with pytest.raises(KeyboardInterrupt):
        resume_build(out, stop_after=150)  # commits every 200 documents: none committed
    assert _checkpoint(out).documents_committed == 0
    with caplog.at_level("WARNING"):
        assert resume_build(out) == len(RESUME_DOCS)
    assert "resuming" not in caplog.text
    assert "it stopped before its first commit, so the build starts over" in caplog.text


def test_index_build_help_keeps_each_paragraph_whole():
    """Rich rewraps each paragraph: a hard line break inside one would show as a short line
    (the old help broke after "OUT.partial; a rerun"). At 200 columns each fits on one line."""
    result = runner.invoke(app, ["index", "build", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    lines = [" ".join(line.split()) for line in result.output.splitlines()]
    assert (
        "A tantivy build commits every 100,000 documents (or 5 minutes) into OUT.partial; a rerun "
        "after an interruption continues from there. A Whoosh build starts over." in lines
    )
    assert any(line.startswith("--out must be missing, an empty folder") for line in lines)


@pytest.mark.parametrize("backend", ["whoosh", "tantivy"])
def test_a_corpus_without_documents_is_refused_not_indexed(tmp_path, backend):
    """An empty file, or one whose every record is skipped, would give an env that searches
    nothing: the build refuses it in one line and leaves nothing behind."""
    from typer.testing import CliRunner

    from medr3_env.cli import app
    from medr3_env.corpora.errors import EmptyCorpusError
    from medr3_env.search import build_index

    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(EmptyCorpusError, match="has no documents; nothing to index"):
        build_index(f"medrag:{empty}", tmp_path / "ix", backend=backend, progress=False)
    assert not (tmp_path / "ix").exists() and not (tmp_path / "ix.partial").exists()
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "a"}\n{oops\n', encoding="utf-8")
    result = CliRunner().invoke(
        app,
        [
            "index",
            "build",
            "--corpus",
            f"medrag:{broken}?on_error=skip",
            "--out",
            str(tmp_path / "ix"),
            "--backend",
            backend,
        ],
    )
    assert result.exit_code == 2
    assert "has no documents; 2 records were skipped; nothing to index" in result.stderr
    assert not (tmp_path / "ix").exists()
