"""Guards of docs/rewards.md's "Hacking guards" table that had no test of their own, each run as
a whole episode through the environment on a small real index: more entities in a prose frame
never pay, echoing the question is a copy, and reading every hit costs (gold / read)²."""

from __future__ import annotations

import pytest

from medr3_env import MedR3Env
from medr3_env.corpora import Corpus, Document, QuestionSet
from medr3_env.corpora.records import QAItem

GOLD = Document(
    id="p1",
    title="Metformin and lactic acidosis",
    content="Metformin rarely causes lactic acidosis, and mostly in patients with renal failure. "
    "The risk rises when kidney function falls, so the dose is reduced or the drug stopped.",
)
OTHERS = [
    Document(id=f"p{n}", title=f"Metformin note {n}", content=text)
    for n, text in (
        (2, "Metformin is a first-line oral drug for type 2 diabetes."),
        (3, "Metformin lowers hepatic glucose output and rarely causes hypoglycaemia."),
        (4, "Metformin is taken with meals to limit gastrointestinal upset."),
    )
]
QUESTION = (
    "Does metformin cause lactic acidosis more often in patients with renal failure than in "
    "patients whose kidney function is normal?"
)
HONEST = (
    "The passage says lactic acidosis from metformin happens mostly with renal failure, "
    "so the answer is yes."
)


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> MedR3Env:
    item = QAItem(
        id="q1", question=QUESTION, answer_type="yesno", answer="yes", evidence_ids=["p1"]
    )
    corpus = Corpus.from_documents("guards", [GOLD, *OTHERS])
    questions = QuestionSet("guards", [item], corpus)
    return MedR3Env(questions=questions, cache_dir=tmp_path_factory.mktemp("index"), max_turns=8)


def evidence(env: MedR3Env, reasoning: str, reads: tuple[str, ...] = ("p1",)) -> float:
    env.reset(seed=0)
    _, _, _, _, info = env.step("<search>metformin</search>")  # in every document: all four hits
    assert set(reads) <= set(info["retrieved_ids"])
    for doc_id in reads:
        _, _, done, _, info = env.step(f"<read>{doc_id}</read>")
        assert not done and info["error"] is None
    *_, done, _, info = env.step(f"<think>{reasoning}</think><answer>yes</answer>")
    assert done and info["reward_terms"]["answer"] == 1.0
    return float(info["reward_terms"]["evidence"])


def test_the_honest_reasoning_earns_evidence(env):
    assert evidence(env, HONEST) == 1.0


@pytest.mark.parametrize(
    "stuffed",
    [
        "The passage names metformin, lactic acidosis, renal failure, kidney function, "
        "hypoglycaemia, type 2 diabetes and hepatic glucose output, so the answer is yes.",
        "Metformin is relevant here. Lactic acidosis is relevant here. Renal failure is relevant "
        "here. Hypoglycaemia is relevant here. Type 2 diabetes is relevant here.",
    ],
    ids=["entity-list-in-a-prose-frame", "templated-entity-sentences"],
)
def test_more_entities_never_pay_more_than_one_grounded_one(env, stuffed):
    """Coverage saturates at one grounded entity; the extra entities only lower precision."""
    assert evidence(env, stuffed) <= evidence(env, HONEST)
    assert evidence(env, f"{HONEST} {stuffed}") <= evidence(env, HONEST)


def test_echoing_the_question_is_a_copy(env):
    assert evidence(env, QUESTION) == 0.0
    assert evidence(env, f"{HONEST} {QUESTION}") == 0.0  # one copied sentence zeroes the term


def test_reading_every_hit_costs_gold_over_read_squared(env):
    honest = evidence(env, HONEST)
    everything = evidence(env, HONEST, reads=("p1", "p2", "p3", "p4"))
    assert honest == 1.0 and everything == pytest.approx(honest * (1 / 4) ** 2)
    assert evidence(env, HONEST, reads=("p1", "p2")) == pytest.approx(honest * (1 / 2) ** 2)
