"""The tantivy backend against Whoosh: parity, stored documents, hostile queries, batching,
the result cache, query planning and selection through build_searcher, gym.make and the CLI."""

from __future__ import annotations

import statistics
import sys
import time

import gymnasium as gym
import pytest
from typer.testing import CliRunner

from medr3_env.cli import app
from medr3_env.corpora import Corpus, Document
from medr3_env.corpora.starter import load_starter_corpus, load_starter_questions
from medr3_env.search import build_index, build_searcher, open_index
from medr3_env.search.base import IndexManifest
from medr3_env.search.planning import plan_terms
from medr3_env.search.tantivy_backend import TantivySearcher
from medr3_env.search.whoosh_backend import WhooshSearcher

pytest.importorskip("tantivy")

BACKENDS = ("whoosh", "tantivy")


@pytest.fixture(scope="session")
def tantivy_searcher():
    return build_searcher(backend="tantivy")


@pytest.fixture(scope="session")
def searchers(starter_searcher, tantivy_searcher):
    return {"whoosh": starter_searcher, "tantivy": tantivy_searcher}


def test_tantivy_index_is_cached_with_a_manifest_like_whoosh(starter_searcher, tantivy_searcher):
    assert isinstance(tantivy_searcher, TantivySearcher)
    assert isinstance(starter_searcher, WhooshSearcher)
    ours, theirs = tantivy_searcher.manifest, starter_searcher.manifest
    assert ours.backend == "tantivy" and theirs.backend == "whoosh"
    for field in ("corpus_name", "corpus_fingerprint", "doc_count", "entity_extractor"):
        assert getattr(ours, field) == getattr(theirs, field)
    assert IndexManifest.read(tantivy_searcher.directory) == ours
    assert isinstance(open_index(tantivy_searcher.directory), TantivySearcher)
    assert build_searcher(backend="tantivy").directory == tantivy_searcher.directory


def test_both_backends_find_gold_passages_and_mostly_agree_on_the_top_five(searchers):
    questions = load_starter_questions()
    gold = dict.fromkeys(BACKENDS, 0)
    overlaps, same_top1 = [], 0
    for item in questions:
        ids = {b: [h.doc_id for h in searchers[b].search(item.question, k=5)] for b in BACKENDS}
        for backend in BACKENDS:
            gold[backend] += bool(set(item.evidence_ids) & set(ids[backend]))
        overlaps.append(len(set(ids["whoosh"]) & set(ids["tantivy"])) / 5)
        same_top1 += ids["whoosh"][:1] == ids["tantivy"][:1]
    n = len(questions)
    # Measured on the starter set: gold in top 5 0.996 (whoosh) / 0.991 (tantivy), mean top-5
    # overlap 0.88, same top hit 0.95. The stemmers differ slightly (Porter vs Snowball).
    assert gold["whoosh"] / n >= 0.95 and gold["tantivy"] / n >= 0.95
    assert statistics.mean(overlaps) >= 0.8
    assert same_top1 / n >= 0.85


def test_stored_documents_are_identical_across_backends(searchers):
    for doc in load_starter_corpus():
        whoosh_doc, tantivy_doc = (searchers[b].get(doc.id) for b in BACKENDS)
        assert tantivy_doc is not None and tantivy_doc == whoosh_doc
        assert (tantivy_doc.id, tantivy_doc.title, tantivy_doc.content) == (
            doc.id,
            doc.title,
            doc.content,
        )
    assert searchers["tantivy"].get("no-such-id") is None
    assert searchers["tantivy"].get("") is None and searchers["tantivy"].get("a\x00") is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_hits_are_ranked_with_titles_scores_and_query_snippets(searchers, backend):
    hits = searchers[backend].search("warfarin vitamin K reversal", k=4)
    assert [h.rank for h in hits] == [1, 2, 3, 4]
    assert hits == sorted(hits, key=lambda h: -h.score) and all(h.score > 0 for h in hits)
    assert all(h.title and h.snippet for h in hits)
    assert "warfarin" in hits[0].snippet.lower() or "vitamin k" in hits[0].snippet.lower()
    assert len(searchers[backend].search("insulin", k=500)) <= 50


@pytest.mark.parametrize("backend", BACKENDS)
def test_stemming_matches_inflected_forms(backend, tmp_path):
    corpus = Corpus.from_documents(
        "stems",
        [
            Document(id="a", title="Running", content="Patients treated with infusions recover."),
            Document(id="b", title="Other", content="Unrelated text about bones."),
        ],
    )
    searcher = build_searcher(corpus, backend=backend, cache_dir=tmp_path)
    assert [h.doc_id for h in searcher.search("treating infusion runs")] == ["a"]


HOSTILE = [
    "*",
    "title:x",
    "content:insulin AND id:*",
    "a~2 b^3",
    "[a TO z] {a TO z}",
    '"unclosed phrase',
    "(((((insulin",
    "NOT AND OR",
    'insulin AND OR NOT ( ) : * ~ ^ " + - ! { } [ ] \\ /',
    "type 1 diabetes: a 10 km run (AND) the 2nd ^ dose",
    "\x00\x00insulin\x00",
    "\x1b[31m insulin \x07\x08",
    "🩺💊 insulin 🫀",
    "x" * 100_000,
    "insulin " * 20_000,
    " ".join(f"w{i}" for i in range(5_000)),
    "ﷺ" * 5000,
    "",
    "   \n\t",
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("query", HOSTILE, ids=lambda q: repr(q[:20]))
def test_hostile_queries_never_raise(searchers, backend, query):
    started = time.perf_counter()
    hits = searchers[backend].search(query, k=5)
    assert isinstance(hits, list) and len(hits) <= 5
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_syntax_characters_are_plain_words(searchers, backend):
    searcher = searchers[backend]
    plain = [h.doc_id for h in searcher.search("digoxin toxicity", k=5)]
    assert [h.doc_id for h in searcher.search('digoxin: AND (toxicity)~ "*', k=5)] == plain


@pytest.mark.parametrize("backend", BACKENDS)
def test_search_many_matches_single_searches_and_repeats_are_independent(searchers, backend):
    searcher = searchers[backend]
    queries = ["insulin", "sepsis fluids", "insulin", "", "tuberculosis treatment"]
    batch = searcher.search_many(queries, k=3)
    assert batch == [searcher.search(q, k=3) for q in queries]
    assert batch[0] == batch[2] and batch[0] is not batch[2]
    batch[0].clear()
    assert searcher.search("insulin", k=3) == batch[2] != []


@pytest.mark.parametrize("backend", BACKENDS)
def test_repeated_query_is_served_from_the_cache(backend, tmp_path):
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


def test_env_runs_an_episode_on_the_tantivy_backend():
    env = gym.make("MedR3-v0", backend="tantivy")
    assert isinstance(env.unwrapped.searcher, TantivySearcher)
    env.reset(seed=0)
    question = env.unwrapped.current_item.question
    _, _, done, _, info = env.step(f"<search>{question}</search>")
    assert not done and len(info["retrieved_ids"]) == 5
    _, _, done, _, info = env.step(f"<read>{info['retrieved_ids'][0]}</read>")
    assert not done and info["error"] is None
    _, reward, done, _, info = env.step("<answer>A</answer>")
    assert done and set(info["reward_terms"]) >= {"answer", "retrieval", "evidence"}


def test_cli_builds_and_searches_a_tantivy_index(tmp_path):
    runner = CliRunner()
    out = tmp_path / "ix"
    built = runner.invoke(app, ["index", "build", "--backend", "tantivy", "--out", str(out)])
    assert built.exit_code == 0, built.output
    assert IndexManifest.read(out).backend == "tantivy"
    found = runner.invoke(app, ["search", "digoxin toxicity", "--index", str(out), "--json"])
    assert found.exit_code == 0, found.output
    assert '"doc_id"' in found.output
    cached = runner.invoke(app, ["search", "digoxin", "--backend", "tantivy", "-k", "1"])
    assert cached.exit_code == 0 and "digoxin" in cached.output.lower()


def test_search_only_index_has_no_entities(tmp_path):
    corpus = Corpus.from_documents("plain", [Document(id="a", title="", content="insulin dose")])
    manifest = build_index(corpus, tmp_path / "ix", backend="tantivy", entity_extractor="none")
    assert manifest.entity_extractor == "none"
    assert open_index(tmp_path / "ix").get("a").sentence_entities == ()


def test_missing_tantivy_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "tantivy", None)  # what an absent package looks like
    with pytest.raises(ImportError, match=r"pip install 'medr3-env\[fast\]'"):
        build_searcher(backend="tantivy")


def test_unknown_backend_lists_the_available_ones():
    with pytest.raises(
        ValueError, match=r"unknown search backend 'lucene'.*remote, tantivy, whoosh"
    ):
        build_searcher(backend="lucene")


def test_async_vector_env_runs_workers_with_whole_infos():
    envs = gym.make_vec("MedR3-v0", num_envs=2, asynchronous=True, backend="tantivy")
    try:
        _, infos = envs.reset(seed=0)
        assert len(infos["messages"]) == 2 and isinstance(infos["messages"][0], list)
        _, _, _, _, infos = envs.step(("<search>digoxin</search>", "<search>insulin</search>"))
        assert [len(ids) for ids in infos["retrieved_ids"]] == [5, 5]
    finally:
        envs.close()


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


@pytest.mark.parametrize("backend", BACKENDS)
def test_snippets_come_from_stored_sentence_data(backend, tmp_path):
    content = (
        "Aspirin is an antiplatelet drug. Warfarin needs INR monitoring and warfarin dosing "
        "varies. Heparin and warfarin overlap when starting anticoagulation. Rest."
    )
    corpus = Corpus.from_documents(
        "snip", [Document(id="a", title="Anticoagulants", content=content)]
    )
    searcher = build_searcher(corpus, backend=backend, cache_dir=tmp_path, entity_extractor="none")
    stored = searcher._index.searcher() if backend == "tantivy" else None
    if stored is not None:  # the tantivy index holds the sentence data the snippet is built from
        document = stored.doc(
            stored.search(searcher._query(searcher.plan("heparin")), 1).hits[0][1]
        )
        assert document.get_first("sentence_ends") and document.get_first("sentence_terms")
    (hit,) = searcher.search("heparin warfarin", k=1)
    assert hit.snippet == "Heparin and warfarin overlap when starting anticoagulation."
    (hit,) = searcher.search("warfarin monitoring", k=1)
    assert hit.snippet == "Warfarin needs INR monitoring and warfarin dosing varies."


def test_whoosh_plans_word_by_word_like_the_whole_query(starter_searcher):
    from medr3_env.search.planning import plan_terms
    from medr3_env.search.query import query_terms

    searcher = starter_searcher
    for item in load_starter_questions().items[:80]:
        text = f"{item.question} {' '.join((item.options or {}).values())} running studies"
        whole = searcher.stems(" ".join(query_terms(text)))
        expected = plan_terms(whole, searcher.doc_freq, searcher.doc_count)
        assert searcher.plan(text) == expected
