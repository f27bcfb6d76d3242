"""Whoosh search: ranking, hostile queries, index caching, rebuilds and concurrent builds."""

import json
import multiprocessing
import time
from pathlib import Path

import pytest

from medr3_env.corpora import Corpus, Document
from medr3_env.corpora.starter import load_starter_questions
from medr3_env.search import build_index, build_searcher, open_index
from medr3_env.search.base import MANIFEST_NAME, IndexManifest
from medr3_env.search.query import MAX_QUERY_TERMS, query_terms


def test_question_text_finds_its_gold_passage_most_of_the_time(starter_searcher):
    questions = load_starter_questions()
    found = sum(
        bool(set(q.evidence_ids) & {h.doc_id for h in starter_searcher.search(q.question, k=5)})
        for q in questions
    )
    assert found / len(questions) >= 0.8


def test_hits_have_ids_titles_scores_and_snippets(starter_searcher):
    hits = starter_searcher.search("warfarin vitamin K reversal", k=3)
    assert 1 <= len(hits) <= 3
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert all(h.title and h.snippet and h.score > 0 for h in hits)
    assert hits == sorted(hits, key=lambda h: -h.score)


def test_get_returns_full_document_with_entities(starter_searcher):
    hit = starter_searcher.search("insulin", k=1)[0]
    doc = starter_searcher.get(hit.doc_id)
    assert doc.id == hit.doc_id and len(doc.content) >= len(hit.snippet) - 1
    assert doc.entities
    assert starter_searcher.get("no-such-id") is None
    assert hit.doc_id in starter_searcher and "nope" not in starter_searcher


def test_search_many_matches_single_searches(starter_searcher):
    queries = ["insulin", "sepsis fluids", "tuberculosis treatment"]
    assert starter_searcher.search_many(queries, k=3) == [
        starter_searcher.search(q, k=3) for q in queries
    ]


HOSTILE = [
    "*",
    "title:x",
    "a~2",
    "[a TO z]",
    "id:* OR content:*",
    '"unclosed phrase',
    "(((((",
    "NOT AND OR",
    "\x00\x00insulin\x00",
    "🩺💊 insulin 🫀",
    "x" * 100_000,
    "insulin " * 20_000,
    "ﷺ" * 5000,
    "",
    "   \n\t",
]


@pytest.mark.parametrize("query", HOSTILE, ids=lambda q: repr(q[:20]))
def test_hostile_queries_return_normally_and_quickly(starter_searcher, query):
    started = time.perf_counter()
    hits = starter_searcher.search(query, k=5)
    assert isinstance(hits, list)
    assert time.perf_counter() - started < 2.0


def test_query_terms_are_plain_and_bounded():
    assert query_terms("title:x AND y~2 [a TO z]") == ["title", "x", "y", "2", "z"]
    assert len(query_terms(" ".join(f"w{i}" for i in range(1000)))) == MAX_QUERY_TERMS
    assert query_terms("\x00") == []


def _corpus(name: str, docs: list[tuple[str, str]]) -> Corpus:
    return Corpus.from_documents(name, [Document(id=i, title=i, content=c) for i, c in docs])


def test_unchanged_corpus_reuses_the_index_and_changed_corpus_rebuilds(tmp_path):
    docs = [("d1", "aspirin inhibits cyclooxygenase"), ("d2", "heparin potentiates antithrombin")]
    first = build_searcher(_corpus("tiny", docs), cache_dir=tmp_path)
    again = build_searcher(_corpus("tiny", docs), cache_dir=tmp_path)
    assert first.directory == again.directory
    built_at = IndexManifest.read(first.directory).built_at
    changed = build_searcher(
        _corpus("tiny", [*docs, ("d3", "warfarin antagonises vitamin K")]), cache_dir=tmp_path
    )
    assert changed.directory != first.directory
    assert changed.search("warfarin")[0].doc_id == "d3"
    assert IndexManifest.read(first.directory).built_at == built_at


def test_interrupted_build_leaves_no_index_and_next_build_restarts(tmp_path):
    from medr3_env.search.index_cache import build_index_dir

    def exploding_builder(corpus, directory):
        (directory / "partial").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_index_dir(
            _corpus("x", [("a", "b")]),
            tmp_path / "ix",
            backend="whoosh",
            extractor="e",
            builder=exploding_builder,
        )
    assert not (tmp_path / "ix").exists()
    assert not list(tmp_path.glob("ix.tmp-*"))
    manifest = build_index(_corpus("x", [("a", "alpha beta")]), tmp_path / "ix")
    assert manifest.doc_count == 1 and (tmp_path / "ix" / MANIFEST_NAME).exists()


def _build_in_child(cache_dir: str, out: str) -> None:
    from medr3_env.corpora import Corpus, Document
    from medr3_env.search import build_searcher

    docs = [
        Document(id=f"d{i}", title=f"t{i}", content=f"term{i} shared words here")
        for i in range(300)
    ]
    searcher = build_searcher(Corpus.from_documents("race", docs), cache_dir=cache_dir)
    Path(out).write_text(
        json.dumps({"dir": str(searcher.directory), "n": len(searcher.search("shared", k=50))})
    )


@pytest.mark.slow
def test_two_processes_building_at_once_share_one_index(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    outs = [tmp_path / f"out{i}.json" for i in range(2)]
    procs = [
        ctx.Process(target=_build_in_child, args=(str(tmp_path / "cache"), str(o))) for o in outs
    ]
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


def test_open_index_reads_explicit_directory(tmp_path):
    build_index(_corpus("explicit", [("a", "lisinopril cough")]), tmp_path / "ix")
    searcher = open_index(tmp_path / "ix")
    assert searcher.search("cough")[0].doc_id == "a"
    assert searcher.manifest.corpus_name == "explicit"


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown search backend"):
        build_searcher(backend="elastic")


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
