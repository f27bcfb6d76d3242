"""Search backends, each behaviour tested once per backend: every built-in local backend of the
registry (whoosh, tantivy) and, where a test reads only the ``Searcher`` interface, the remote
backend talking to a real ``medr3 serve`` app on a loopback port.

Covers ranking, stored documents, batching, hostile queries, query planning, the result cache,
snippets, index caching and rebuilds, interrupted and concurrent builds, and selection through
``build_searcher``, ``gym.make`` and the CLI. Engine internals that only one backend has (Whoosh's
numpy BM25F path) are tested for that backend alone."""

from __future__ import annotations

import json
import math
import multiprocessing
import re
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import pytest
from typer.testing import CliRunner

from medr3_env.cli import app
from medr3_env.corpora import Corpus, Document
from medr3_env.corpora.starter import load_starter_corpus, load_starter_questions
from medr3_env.plugins import registry
from medr3_env.search import (
    Searcher,
    backend_class,
    build_index,
    build_searcher,
    local_backends,
    open_index,
)
from medr3_env.search.base import MANIFEST_NAME, IndexManifest, valid_doc_id
from medr3_env.search.planning import plan_terms
from medr3_env.search.query import MAX_QUERY_TERMS, query_terms

BUILTIN = {info.name for info in registry.backends.info() if info.origin == "builtin"}
LOCAL = [name for name in local_backends() if name in BUILTIN]
"""The built-in local backends (a plug-in backend installed beside them is tested by its own
package's tests and tests/test_plugins.py)."""
ALL = [*LOCAL, "remote"]
"""LOCAL plus the remote backend, here serving the Whoosh starter index."""


def _available(backend: str) -> None:
    try:
        backend_class(backend).check_available()
    except ImportError as exc:
        pytest.skip(str(exc))


class StarterSearchers:
    """One searcher per backend over the starter corpus, made on first use."""

    def __init__(self, whoosh: Searcher) -> None:
        self._made: dict[str, Searcher] = {"whoosh": whoosh}
        self._servers: list = []

    def __getitem__(self, backend: str) -> Searcher:
        if backend not in self._made:
            self._made[backend] = self._make(backend)
        return self._made[backend]

    def _make(self, backend: str) -> Searcher:
        if backend != "remote":
            _available(backend)
            return build_searcher(backend=backend)
        pytest.importorskip("uvicorn")
        pytest.importorskip("fastapi")
        from medr3_env.search.server import create_app
        from tests.servers import LiveServer

        server = LiveServer(create_app(self["whoosh"])).__enter__()
        self._servers.append(server)
        return build_searcher(backend="remote", url=server.url)

    def uncached(self, backend: str) -> Searcher:
        """A second searcher of the same index (or server) without a result cache."""
        key = f"{backend}/uncached"
        if key not in self._made:
            searcher = self[backend]
            where = searcher.url if backend == "remote" else searcher.directory
            self._made[key] = backend_class(backend)(where, cache_size=0)
        return self._made[key]

    def close(self) -> None:
        for server in self._servers:
            server.__exit__()


@pytest.fixture(scope="session")
def searchers(starter_searcher) -> Iterator[StarterSearchers]:
    made = StarterSearchers(starter_searcher)
    yield made
    made.close()


def _corpus(name: str, docs: list[tuple[str, str]]) -> Corpus:
    return Corpus.from_documents(name, [Document(id=i, title=i, content=c) for i, c in docs])


# ---------------------------------------------------------------- ranking and stored documents


@pytest.mark.parametrize("backend", ALL)
def test_question_text_finds_its_gold_passage(searchers, backend):
    questions = load_starter_questions()
    results = searchers[backend].search_many([q.question for q in questions], k=5)
    found = sum(
        bool(set(q.evidence_ids) & {h.doc_id for h in hits})
        for q, hits in zip(questions, results, strict=True)
    )
    # benchmarks/backend_agreement.py, 487 starter questions: 0.988 (whoosh) / 0.982 (tantivy).
    assert found / len(questions) >= 0.95


def test_local_backends_mostly_agree_on_the_top_five(searchers):
    if len(LOCAL) < 2:
        pytest.skip("one local backend installed")
    for backend in LOCAL:
        _available(backend)
    questions = [q.question for q in load_starter_questions()]
    ids = {
        b: [[h.doc_id for h in hits] for hits in searchers[b].search_many(questions)] for b in LOCAL
    }
    reference, *others = LOCAL
    for other in others:
        pairs = list(zip(ids[reference], ids[other], strict=True))
        # benchmarks/backend_agreement.py: mean top-5 overlap 0.86, same top hit 0.95. The stemmers
        # differ slightly (Porter vs Snowball).
        assert statistics.mean(len(set(a) & set(b)) / 5 for a, b in pairs) >= 0.8
        assert sum(a[:1] == b[:1] for a, b in pairs) / len(pairs) >= 0.85


@pytest.mark.parametrize("backend", ALL)
def test_hits_are_ranked_with_titles_scores_and_query_snippets(searchers, backend):
    searcher = searchers[backend]
    hits = searcher.search("warfarin vitamin K reversal", k=4)
    assert [h.rank for h in hits] == [1, 2, 3, 4]
    assert hits == sorted(hits, key=lambda h: -h.score) and all(h.score > 0 for h in hits)
    assert all(h.title and h.snippet for h in hits)
    assert "warfarin" in hits[0].snippet.lower() or "vitamin k" in hits[0].snippet.lower()
    assert len(searcher.search("patients treatment", k=500)) == 50  # k is clamped to MAX_K
    assert len(searcher.search("patients treatment", k=0)) == 1  # and raised to 1


@pytest.mark.parametrize("backend", ALL)
def test_get_returns_the_stored_document_with_entities(searchers, backend):
    searcher = searchers[backend]
    corpus = list(load_starter_corpus())
    stored = {doc.id: searcher.get(doc.id) for doc in corpus}
    for doc in corpus:
        found = stored[doc.id]
        assert found is not None and (found.id, found.title, found.content) == (
            doc.id,
            doc.title,
            doc.content,
        )
        assert doc.id in searcher
    assert sum(bool(found.entities) for found in stored.values()) / len(corpus) > 0.9
    hit = searcher.search("insulin", k=1)[0]
    assert len(stored[hit.doc_id].content) >= len(hit.snippet) - 1  # the snippet may add "…"
    for missing in ("no-such-id", "", "a\x00", "\udc80", "x" * 10_000):
        assert searcher.get(missing) is None and missing not in searcher


@pytest.mark.parametrize("backend", [b for b in ALL if b != "whoosh"])
def test_stored_documents_equal_whooshs_entities_included(searchers, backend):
    whoosh, other = searchers["whoosh"], searchers[backend]
    for doc in load_starter_corpus():
        assert other.get(doc.id) == whoosh.get(doc.id)


@pytest.mark.parametrize("backend", ALL)
def test_search_many_matches_single_searches_and_repeats_are_independent(searchers, backend):
    searcher = searchers[backend]
    queries = ["insulin", "sepsis fluids", "insulin", "", "tuberculosis treatment"]
    batch = searcher.search_many(queries, k=3)
    assert batch == [searcher.search(q, k=3) for q in queries]
    assert batch[0] == batch[2] and batch[0] is not batch[2]
    assert batch[3] == [] and all(len(hits) == 3 for i, hits in enumerate(batch) if i != 3)
    batch[0].clear()
    assert searcher.search("insulin", k=3) == batch[2] != []


# ---------------------------------------------------------------- hostile queries

HOSTILE = [
    "*",
    "title:x",
    "content:insulin AND id:*",
    "id:* OR content:*",
    "a~2",
    "a~2 b^3",
    "[a TO z]",
    "[a TO z] {a TO z}",
    '"unclosed phrase',
    "(((((",
    "(((((insulin",
    "NOT AND OR",
    'insulin AND OR NOT ( ) : * ~ ^ " + - ! { } [ ] \\ /',
    "type 1 diabetes: a 10 km run (AND) the 2nd ^ dose",
    "\x00\x00insulin\x00",
    "\x1b[31m insulin \x07\x08",
    "\udc80 insulin \ud800",
    "🩺💊 insulin 🫀",
    "x" * 100_000,
    "insulin " * 20_000,
    " ".join(f"w{i}" for i in range(5_000)),
    "ﷺ" * 5000,
    "",
    "   \n\t",
]


@pytest.mark.parametrize("backend", ALL)
@pytest.mark.parametrize("query", HOSTILE, ids=lambda q: ascii(q[:20]))
def test_hostile_queries_return_sane_hits(searchers, backend, query):
    """No error; at most k hits, ranked 1..n, of documents that exist, with finite scores in
    descending order; the same answer twice, from the cache and from an uncached searcher; a plain
    word among the syntax is still searched."""
    searcher = searchers[backend]
    hits = searcher.search(query, k=5)
    assert len(hits) <= 5
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert all(valid_doc_id(h.doc_id) and h.doc_id in searcher for h in hits)
    assert all(math.isfinite(h.score) for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert searcher.search(query, k=5) == hits
    assert searchers.uncached(backend).search(query, k=5) == hits
    assert searcher.search_many([query, query], k=5) == [hits, hits]
    assert len(searcher.search(query, k=1)) == min(1, len(hits))
    if not query.strip():
        assert hits == []
    if re.search(r"\binsulin\b", query):
        assert hits and "insulin" in searcher.get(hits[0].doc_id).content.lower()


@pytest.mark.parametrize("backend", ALL)
def test_syntax_characters_are_plain_words(searchers, backend):
    searcher = searchers[backend]
    plain = [h.doc_id for h in searcher.search("digoxin toxicity", k=5)]
    assert plain
    assert [h.doc_id for h in searcher.search('digoxin: AND (toxicity)~ "*', k=5)] == plain


def test_query_terms_are_plain_and_bounded():
    assert query_terms("title:x AND y~2 [a TO z]") == ["title", "x", "y", "2", "z"]
    assert len(query_terms(" ".join(f"w{i}" for i in range(1000)))) == MAX_QUERY_TERMS
    assert query_terms("\x00") == []


# ---------------------------------------------------------------- planning, stems and the cache


@pytest.mark.parametrize("backend", LOCAL)
def test_stemming_matches_inflected_forms(backend, tmp_path):
    _available(backend)
    corpus = Corpus.from_documents(
        "stems",
        [
            Document(id="a", title="Running", content="Patients treated with infusions recover."),
            Document(id="b", title="Other", content="Unrelated text about bones."),
        ],
    )
    searcher = build_searcher(corpus, backend=backend, cache_dir=tmp_path)
    assert [h.doc_id for h in searcher.search("treating infusion runs")] == ["a"]


@pytest.mark.parametrize("backend", LOCAL)
def test_repeated_query_is_served_from_the_cache(backend, tmp_path):
    _available(backend)
    corpus = Corpus.from_documents(
        "cache", [Document(id=f"d{i}", title=f"t{i}", content=f"word{i} shared") for i in range(9)]
    )
    searcher = build_searcher(corpus, backend=backend, cache_dir=tmp_path)
    first = searcher.search("Shared word3", k=3)
    hits_before = searcher._cache.hits
    assert searcher.search("shared WORD3!", k=3) == first  # same planned terms
    assert searcher._cache.hits == hits_before + 1
    assert searcher.search("shared word3", k=2) == first[:2]  # k is part of the key


def test_plan_keeps_known_rarest_terms_in_query_order():
    df = {"rare": 1, "mid": 5, "common": 60, "gone": 0, "often": 40}.__getitem__
    assert plan_terms(["common", "rare", "gone", "mid", "rare"], df, 200) == (
        "common",
        "rare",
        "mid",
    )
    assert plan_terms(["common", "rare", "often", "mid"], df, 200, max_terms=2) == ("rare", "mid")
    assert plan_terms(["common", "often"], df, 100) == ("often",)  # over half of the documents
    assert plan_terms(["common"], df, 60) == ("common",)  # unless nothing else is left
    assert plan_terms(["gone"], df, 60) == ()


@pytest.mark.parametrize("backend", LOCAL)
def test_planning_word_by_word_equals_planning_the_whole_query(searchers, backend):
    searcher = searchers[backend]
    for item in load_starter_questions().items[:80]:
        text = f"{item.question} {' '.join((item.options or {}).values())} running studies"
        whole = searcher.stems(" ".join(query_terms(text)))
        assert searcher.plan(text) == plan_terms(whole, searcher.doc_freq, searcher.doc_count)


# ---------------------------------------------------------------- snippets


def test_snippet_is_the_first_sentence_with_most_query_stems():
    from medr3_env.search.snippets import encode_ends, sentence_ends, snippet_for

    content = "Fever is common. Sepsis needs fluids and antibiotics. Sepsis and fluids again! End"
    ends = sentence_ends(content)
    assert list(ends) == [16, 53, 78]
    assert snippet_for(content, ["sepsi", "fluid"], ends) == "Sepsis needs fluids and antibiotics."
    assert snippet_for(content, ["sepsi", "fluid"]) == snippet_for(
        content, ["sepsi", "fluid"], ends
    )
    assert snippet_for(content, ["nothing"]) == "Fever is common."  # no mention: first sentence
    assert snippet_for(content, []) == "Fever is common."
    assert snippet_for("x" * 500, ["x"]).endswith("…") and len(snippet_for("x" * 500, ["x"])) == 240
    # "fevers" starts like the stem "fever"; "antifever" does not start a word with it
    assert snippet_for("Antifever pills. Two fevers.", ["fever"]) == "Two fevers."
    # a character whose lower case is longer must not shift the sentence offsets
    assert snippet_for("İstanbul trip. Malaria risk.", ["malaria"]) == "Malaria risk."
    assert encode_ends(ends) == b"".join(e.to_bytes(4, "little") for e in ends)


def test_stored_term_snippets_use_exact_terms_and_prefer_the_first_sentence():
    from medr3_env.search.snippets import (
        encode_ends,
        sentence_ends,
        sentence_terms,
        snippet_from_terms,
        term_needles,
    )

    content = "Alpha beta. Gamma delta. Beta gamma alpha. Delta."
    ends = sentence_ends(content)
    data = sentence_terms(content, ends, lambda s: s.lower().replace(".", " ").split())
    stored_ends = encode_ends(ends)

    def snippet(*terms: str) -> str:
        return snippet_from_terms(content, stored_ends, data, term_needles(terms))

    assert snippet("gamma", "alpha", "beta") == "Beta gamma alpha."
    assert snippet("delta") == "Gamma delta."  # tie between sentences 2 and 4: the first wins
    assert snippet("alph") == "Alpha beta."  # stored terms match exactly: no match, first sentence
    assert snippet("alpha", "alpha") == "Alpha beta."


@pytest.mark.parametrize("backend", LOCAL)
def test_snippets_come_from_stored_sentence_data(backend, tmp_path):
    _available(backend)
    content = (
        "Aspirin is an antiplatelet drug. Warfarin needs INR monitoring and warfarin dosing "
        "varies. Heparin and warfarin overlap when starting anticoagulation. Rest."
    )
    corpus = Corpus.from_documents(
        "snip", [Document(id="a", title="Anticoagulants", content=content)]
    )
    searcher = build_searcher(corpus, backend=backend, cache_dir=tmp_path, entity_extractor="none")
    if backend == "tantivy":  # the tantivy index holds the sentence data the snippet is built from
        stored = searcher._index.searcher()
        document = stored.doc(
            stored.search(searcher._query(searcher.plan("heparin")), 1).hits[0][1]
        )
        assert document.get_first("sentence_ends") and document.get_first("sentence_terms")
    (hit,) = searcher.search("heparin warfarin", k=1)
    assert hit.snippet == "Heparin and warfarin overlap when starting anticoagulation."
    (hit,) = searcher.search("warfarin monitoring", k=1)
    assert hit.snippet == "Warfarin needs INR monitoring and warfarin dosing varies."


# ---------------------------------------------------------------- Whoosh's numpy BM25F path


def test_whoosh_array_scoring_matches_whooshs_own_matchers_exactly(starter_searcher):
    """The numpy BM25F path returns Whoosh's documents and scores, bit for bit."""
    from medr3_env.search.whoosh_backend import WhooshSearcher

    uncached = WhooshSearcher(starter_searcher.directory, cache_size=0, postings_cache_mb=0)
    assert starter_searcher._array.supported and uncached._array.supported
    compared = 0
    for item in load_starter_questions().items[:150]:
        stems = starter_searcher.plan(item.question)
        if not stems:
            continue
        expected = [(f["id"], score) for f, score in starter_searcher._whoosh_engine(stems, 10)]
        for searcher in (starter_searcher, uncached):
            assert [(m.doc_id, m.score) for m in searcher.engine(stems, 10)] == expected
        compared += 1
    assert compared > 100
    assert uncached._array.cache_bytes == 0 and starter_searcher._array.cache_bytes > 0


def test_whoosh_array_scoring_breaks_ties_like_whoosh(tmp_path):
    docs = [Document(id=f"d{i}", title="", content="same words here") for i in range(7)]
    searcher = build_searcher(Corpus.from_documents("ties", docs), cache_dir=tmp_path)
    stems = searcher.plan("same words")
    ours = [(m.doc_id, m.score) for m in searcher.engine(stems, 3)]
    assert ours == [(f["id"], s) for f, s in searcher._whoosh_engine(stems, 3)]
    assert [doc_id for doc_id, _ in ours] == ["d0", "d1", "d2"]


# ---------------------------------------------------------------- the index cache and builds


@pytest.mark.parametrize("backend", LOCAL)
def test_starter_index_is_cached_with_its_manifest(searchers, backend):
    searcher = searchers[backend]
    assert isinstance(searcher, backend_class(backend))
    manifest = searcher.manifest
    assert manifest.backend == backend
    assert IndexManifest.read(searcher.directory) == manifest
    assert isinstance(open_index(searcher.directory), backend_class(backend))
    assert build_searcher(backend=backend).directory == searcher.directory
    whoosh = searchers["whoosh"].manifest
    for field in ("corpus_name", "corpus_fingerprint", "doc_count", "entity_extractor"):
        assert getattr(manifest, field) == getattr(whoosh, field)


@pytest.mark.parametrize("backend", LOCAL)
def test_unchanged_corpus_reuses_the_index_and_changed_corpus_rebuilds(backend, tmp_path):
    _available(backend)
    docs = [("d1", "aspirin inhibits cyclooxygenase"), ("d2", "heparin potentiates antithrombin")]
    first = build_searcher(_corpus("tiny", docs), backend=backend, cache_dir=tmp_path)
    again = build_searcher(_corpus("tiny", docs), backend=backend, cache_dir=tmp_path)
    assert first.directory == again.directory
    built_at = IndexManifest.read(first.directory).built_at
    changed = build_searcher(
        _corpus("tiny", [*docs, ("d3", "warfarin antagonises vitamin K")]),
        backend=backend,
        cache_dir=tmp_path,
    )
    assert changed.directory != first.directory
    assert changed.search("warfarin")[0].doc_id == "d3"
    assert IndexManifest.read(first.directory).built_at == built_at


@pytest.mark.parametrize("backend", LOCAL)
def test_a_prebuilt_index_names_its_backend_in_the_config(backend, tmp_path, caplog, monkeypatch):
    """``index_dir`` searches with the index's own backend, and the environment's config says so
    (it is what a trajectory records, and replaying the dump opens the same backend); a
    different backend given with it is logged, not silently recorded."""
    from medr3_env.config import EnvConfig

    _available(backend)
    build_index(_corpus("x", [("a", "alpha beta")]), tmp_path / "ix", backend=backend)
    other = next(b for b in ["whoosh", "tantivy"] if b != backend)
    monkeypatch.chdir(tmp_path)  # a relative index_dir
    for given in ({}, {"backend": backend}, {"backend": other}):
        caplog.clear()
        env = gym.make("MedR3-v0", index_dir="ix", **given)
        config = env.unwrapped.config
        assert type(env.unwrapped.searcher) is backend_class(backend)
        assert config.backend == backend, given
        assert ("ignored: the index at ix was built with" in caplog.text) == (
            given == {"backend": other}
        )
        reloaded = EnvConfig.model_validate(config.model_dump(mode="json"))
        again = gym.make("MedR3-v0", config=reloaded)
        assert again.unwrapped.config.backend == backend


@pytest.mark.parametrize("backend", LOCAL)
def test_interrupted_build_leaves_no_index_under_its_name(backend, tmp_path):
    """Nothing half-built under the final name; a resumable backend keeps its committed work in
    ``ix.partial`` (discarded here by the next build, whose corpus differs), others keep nothing."""
    from medr3_env.search.index_cache import build_index_dir

    _available(backend)

    def exploding_builder(corpus, directory):
        (directory / "partial").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_index_dir(
            _corpus("x", [("a", "b")]),
            tmp_path / "ix",
            backend=backend,
            extractor="e",
            builder=exploding_builder,
        )
    assert not (tmp_path / "ix").exists()
    assert not list(tmp_path.glob("ix.tmp-*"))
    resumable = bool(getattr(backend_class(backend), "resumable", False))
    assert (tmp_path / "ix.partial").exists() == resumable
    manifest = build_index(_corpus("x", [("a", "alpha beta")]), tmp_path / "ix", backend=backend)
    assert manifest.doc_count == 1 and (tmp_path / "ix" / MANIFEST_NAME).exists()
    assert manifest.backend == backend
    assert not (tmp_path / "ix.partial").exists() and not list(tmp_path.glob("ix.tmp-*"))


def _build_in_child(backend: str, cache_dir: str, out: str) -> None:
    from medr3_env.corpora import Corpus, Document
    from medr3_env.search import build_searcher

    docs = [
        Document(id=f"d{i}", title=f"t{i}", content=f"term{i} shared words here")
        for i in range(300)
    ]
    corpus = Corpus.from_documents("race", docs)
    searcher = build_searcher(corpus, backend=backend, cache_dir=cache_dir)
    Path(out).write_text(
        json.dumps({"dir": str(searcher.directory), "n": len(searcher.search("shared", k=50))})
    )


@pytest.mark.slow
@pytest.mark.parametrize("backend", LOCAL)
def test_two_processes_building_at_once_share_one_index(backend, tmp_path):
    _available(backend)
    ctx = multiprocessing.get_context("spawn")
    outs = [tmp_path / f"out{i}.json" for i in range(2)]
    cache = str(tmp_path / "cache")
    procs = [ctx.Process(target=_build_in_child, args=(backend, cache, str(o))) for o in outs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    results = [json.loads(o.read_text()) for o in outs]
    assert results[0]["dir"] == results[1]["dir"]
    assert results[0]["n"] == results[1]["n"] == 50
    indexes = [p for p in (tmp_path / "cache" / "indexes").iterdir() if p.is_dir()]
    assert len(indexes) == 1


@pytest.mark.parametrize("backend", LOCAL)
def test_open_index_reads_explicit_directory(backend, tmp_path):
    _available(backend)
    build_index(_corpus("explicit", [("a", "lisinopril cough")]), tmp_path / "ix", backend=backend)
    searcher = open_index(tmp_path / "ix")
    assert isinstance(searcher, backend_class(backend))
    assert searcher.search("cough")[0].doc_id == "a"
    assert searcher.manifest.corpus_name == "explicit" and searcher.manifest.backend == backend


@pytest.mark.parametrize("backend", LOCAL)
def test_search_only_index_has_no_entities(backend, tmp_path):
    _available(backend)
    corpus = Corpus.from_documents("plain", [Document(id="a", title="", content="insulin dose")])
    manifest = build_index(corpus, tmp_path / "ix", backend=backend, entity_extractor="none")
    assert manifest.entity_extractor == "none"
    assert open_index(tmp_path / "ix").get("a").sentence_entities == ()


# ---------------------------------------------------------------- choosing a backend


def test_unknown_backend_is_a_clear_error_listing_the_registered_ones():
    with pytest.raises(
        ValueError, match=r"unknown search backend 'lucene'.*remote, tantivy, whoosh"
    ):
        build_searcher(backend="lucene")


def test_missing_tantivy_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "tantivy", None)  # what an absent package looks like
    with pytest.raises(ImportError, match=r"pip install 'medr3-env\[fast\]'"):
        build_searcher(backend="tantivy")


@pytest.mark.parametrize("backend", LOCAL)
def test_env_runs_an_episode_on_the_backend(backend):
    _available(backend)
    env = gym.make("MedR3-v0", backend=backend)
    assert isinstance(env.unwrapped.searcher, backend_class(backend))
    env.reset(seed=0)
    question = env.unwrapped.current_item.question
    _, _, done, _, info = env.step(f"<search>{question}</search>")
    assert not done and len(info["retrieved_ids"]) == 5
    _, _, done, _, info = env.step(f"<read>{info['retrieved_ids'][0]}</read>")
    assert not done and info["error"] is None
    _, reward, done, _, info = env.step("<answer>A</answer>")
    assert done and set(info["reward_terms"]) >= {"answer", "retrieval", "evidence"}


@pytest.mark.parametrize("backend", LOCAL)
def test_cli_builds_and_searches_an_index(backend, tmp_path):
    _available(backend)
    runner = CliRunner()
    out = tmp_path / "ix"
    built = runner.invoke(app, ["index", "build", "--backend", backend, "--out", str(out)])
    assert built.exit_code == 0, built.output
    assert IndexManifest.read(out).backend == backend
    found = runner.invoke(app, ["search", "digoxin toxicity", "--index", str(out), "--json"])
    assert found.exit_code == 0, found.output
    assert json.loads(found.output)[0]["doc_id"]
    cached = runner.invoke(app, ["search", "digoxin", "--backend", backend, "-k", "1"])
    assert cached.exit_code == 0 and "digoxin" in cached.output.lower()


@pytest.mark.parametrize("backend", LOCAL)
def test_async_vector_env_runs_workers_with_whole_infos(backend):
    _available(backend)
    envs = gym.make_vec("MedR3-v0", num_envs=2, asynchronous=True, backend=backend)
    try:
        _, infos = envs.reset(seed=0)
        assert len(infos["messages"]) == 2 and isinstance(infos["messages"][0], list)
        _, _, _, _, infos = envs.step(("<search>digoxin</search>", "<search>insulin</search>"))
        assert [len(ids) for ids in infos["retrieved_ids"]] == [5, 5]
    finally:
        envs.close()
