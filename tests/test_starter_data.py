"""Integrity of the bundled starter corpus, question set and lexicon."""

from collections import Counter

import pytest

from medr3_env.corpora.starter import (
    load_starter_corpus,
    load_starter_lexicon,
    load_starter_questions,
)


@pytest.fixture(scope="module")
def passages():
    return list(load_starter_corpus())


@pytest.fixture(scope="module")
def questions():
    return load_starter_questions()


def test_corpus_size_and_specialty_coverage(passages):
    import json

    from medr3_env.corpora.starter import starter_files

    specialties = Counter(
        json.loads(line)["specialty"]
        for path in starter_files("passages")
        for line in path.open()
        if line.strip()
    )
    assert len(passages) >= 300
    assert len(specialties) >= 15
    assert min(specialties.values()) >= 10


def test_passages_follow_the_medrag_schema(passages):
    assert len({p.id for p in passages}) == len(passages)
    for p in passages:
        assert p.title and 40 <= len(p.content.split()) <= 220
        assert p.to_medrag()["contents"].startswith(p.title)


def test_question_set_size_and_mix(questions):
    kinds = Counter(q.answer_type for q in questions)
    assert len(questions) >= 200
    assert kinds["mcq"] >= 60 and kinds["yesno"] >= 30 and kinds["free"] >= 30
    verdicts = Counter(q.answer for q in questions if q.answer_type == "yesno")
    assert verdicts["yes"] and verdicts["no"]


def test_every_question_has_existing_gold_evidence(questions, passages):
    ids = {p.id for p in passages}
    for q in questions:
        assert q.evidence_ids, q.id
        assert set(q.evidence_ids) <= ids, q.id


def test_multi_hop_questions_cite_two_passages(questions):
    assert all(type(q.metadata["hops"]) is int for q in questions)
    multi = [q for q in questions if q.metadata["hops"] == 2]
    assert len(multi) >= 0.2 * len(questions)
    assert all(len(q.evidence_ids) >= 2 for q in multi)


def test_mcq_items_have_four_options_and_a_valid_letter(questions):
    for q in questions:
        if q.answer_type == "mcq":
            assert sorted(q.options) == ["A", "B", "C", "D"], q.id
            assert q.answer in q.options


def test_splits_are_disjoint_and_cover_everything(questions):
    splits = {name: {q.id for q in questions.split(name)} for name in ("train", "dev", "test")}
    assert not splits["train"] & splits["dev"] and not splits["train"] & splits["test"]
    assert not splits["dev"] & splits["test"]
    assert sum(map(len, splits.values())) == len(questions)
    assert all(len(s) >= 20 for s in splits.values())


def test_lexicon_entries_are_well_formed_and_unambiguous():
    entries = load_starter_lexicon()
    labels = {
        "DISEASE",
        "DRUG",
        "GENE_PROTEIN",
        "ANATOMY",
        "PROCEDURE",
        "FINDING",
        "ORGANISM",
        "TEST",
    }
    assert len(entries) >= 500
    owner: dict[str, str] = {}
    for entry in entries:
        assert entry["label"] in labels and entry["name"] == entry["name"].lower()
        for synonym in entry["synonyms"]:
            assert owner.setdefault(synonym, entry["name"]) == entry["name"], synonym
