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
