"""The reward contract (docs/rewards.md) on a fast subset: every scripted attack in
medr3_env.attacks, every stage, a few questions of every split of the starter set and of a small
PubMedQA question set. benchmarks/reward_attacks.py runs the same check on more questions."""

import json

import pytest

from medr3_env import MedR3Env
from medr3_env.attacks import (
    ATTACKS,
    EVIDENCE_STUFFING,
    NEVER_ANSWER,
    ORACLE,
    REFERENCE,
    View,
    contract_violations,
    evaluate_all,
    make_policy,
    sample,
)
from medr3_env.config import STAGES
from medr3_env.corpora.specs import load_questions

PER_SPLIT = 3


def _pooled(spec, stage, searcher=None):
    """Results of every policy over PER_SPLIT questions of each split, pooled."""
    questions = load_questions(spec)
    env = MedR3Env(dataset=spec, stage=stage, split=None, questions=questions, searcher=searcher)
    items = [
        q
        for split in sorted({q.split for q in questions if q.split})
        for q in sample([q for q in env.questions if q.split == split], PER_SPLIT)
    ]
    return env, evaluate_all(env, items)


@pytest.fixture(scope="module")
def pubmedqa_spec(shared_data, tmp_path_factory):
    """120 PubMedQA questions (half of them the test split) with their abstracts as the corpus."""
    source = shared_data / "pubmedqa" / "ori_pqal.json"
    if not source.exists():
        pytest.skip(f"{source} not found")
    records = json.loads(source.read_text(encoding="utf-8"))
    kept = dict(sorted(records.items())[::8][:120])
    folder = tmp_path_factory.mktemp("pubmedqa")
    (folder / "ori_pqal.json").write_text(json.dumps(kept), encoding="utf-8")
    (folder / "test_ground_truth.json").write_text(
        json.dumps({pmid: kept[pmid]["final_decision"] for pmid in list(kept)[::2]}),
        encoding="utf-8",
    )
    return f"pubmedqa:{folder / 'ori_pqal.json'}"


def test_the_suite_has_thirty_attacks_in_families():
    from medr3_env.attacks import FAMILIES

    attacks = [n for n in ATTACKS if FAMILIES[n] not in ("baseline", "trivial")]
    assert len(attacks) >= 30
    assert {FAMILIES[n] for n in attacks} >= {
        "spraying",
        "evidence",
        "retrieval",
        "truncation",
        "format",
        "filler",
    }
    assert set(NEVER_ANSWER) <= set(ATTACKS) and set(EVIDENCE_STUFFING) <= set(ATTACKS)


def test_attacks_see_only_what_a_policy_sees():
    """A policy's view is rebuilt from info and messages: no gold answer or gold ids in it."""
    view_fields = set(View.__dataclass_fields__)
    assert not view_fields & {"answer", "evidence_ids", "item", "aliases"}


@pytest.mark.parametrize("stage", STAGES)
def test_reward_contract_on_the_starter_set(stage, starter_searcher):
    _, rows = _pooled("starter", stage, starter_searcher)
    assert contract_violations(f"starter/{stage}", stage, rows) == []
    if stage == "joint":
        assert rows[ORACLE]["total"] <= 0.4 * rows[REFERENCE]["total"]


@pytest.mark.parametrize("stage", STAGES)
def test_reward_contract_on_pubmedqa(stage, pubmedqa_spec):
    _, rows = _pooled(pubmedqa_spec, stage)
    assert contract_violations(f"pubmedqa/{stage}", stage, rows) == []


def test_process_terms_do_not_pay_without_a_correct_answer(starter_searcher):
    env = MedR3Env(searcher=starter_searcher)
    items = sample(list(env.questions), 4)
    rows = evaluate_all(env, items, ["never_answer", "spray_all_options"])
    for name in ("never_answer", "spray_all_options", ORACLE):
        assert rows[name]["retrieval"] == 0.0 and rows[name]["evidence"] == 0.0, name


def test_contract_check_reports_a_gain():
    honest = {"total": 1.0, "evidence": 0.5, "answer": 1, "format": 1, "retrieval": 1}
    rows = {
        REFERENCE: honest,
        "answer_at_once": {**honest, "total": 0.4},
        "entity_list": {**honest, "total": 1.2, "evidence": 0.9},
        "never_answer": {**honest, "total": 0.5},
        ORACLE: {**honest, "total": 0.5},
    }
    problems = contract_violations("x/joint/test", "joint", rows)
    assert len(problems) == 4 and any("entity_list evidence" in p for p in problems)


def test_unknown_attack_names_are_listed():
    with pytest.raises(KeyError, match="known"):
        make_policy("no_such_attack")
