"""Red-team checks of this session's reward changes.

What a policy that reads ``info`` can learn before the episode ends: nothing about the gold. Two
episodes play the same turns on the same question, once with its real gold answer and gold
evidence ids and once with a different gold; every observation and every ``info`` before the last
step (``parsed_action``, ``action_text``, ``term_documents``, the reward terms so far, the
messages) must be identical, so no field carries the gold to a policy.

Answers in Markdown/LaTeX wrappers never name several options; pastes of a read document that the
copy check catches earn no evidence, and its per-document copy data follows the text, not the id."""

from __future__ import annotations

from typing import Any

import pytest

from medr3_env import MedR3Env
from medr3_env.attacks import ATTACKS, COPIES, View, make_policy
from medr3_env.config import STAGES
from medr3_env.corpora.records import Corpus, Document, QAItem
from medr3_env.entities import load_extractor
from medr3_env.episodes import run_episode
from medr3_env.rewards.evidence import match_evidence
from medr3_env.search import build_searcher


def _play(env: MedR3Env, item: QAItem, turns: list[str]) -> list[tuple[Any, ...]]:
    observation, info = env.reset(options={"item": item.model_dump()})
    seen: list[tuple[Any, ...]] = [(observation, info)]
    for turn in turns:
        observation, reward, terminated, truncated, info = env.step(turn)
        seen.append((observation, reward, terminated, truncated, info))
        if terminated or truncated:
            break
    return seen


def _turns(env: MedR3Env, item: QAItem) -> list[str]:
    """Search, read two hits, a malformed turn, a refused read, then answer: every non-final kind."""
    env.reset(options={"item": item.model_dump()})
    if "search" not in env.config.allowed_actions:
        return ["no tags here", "<think>Beta blockers slow the rate.</think><answer>B</answer>"]
    _, _, _, _, info = env.step(f"<search>{item.question}</search>")
    hits = info["retrieved_ids"]
    return [
        f"<search>{item.question}</search>",
        f"<read>{hits[0]}</read>",
        f"<read>{hits[-1]}</read>",
        "no tags here",
        "<read>no-such-document</read>",
        "<think>The passage names the drug.</think><answer>B</answer>",
    ]


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("item_id", ["card-q01", "card-q14"])
def test_nothing_before_the_last_step_depends_on_the_gold(starter_searcher, stage, item_id):
    env = MedR3Env(searcher=starter_searcher, stage=stage)
    item = env.questions.get(item_id) or MedR3Env(searcher=starter_searcher).questions.get(item_id)
    assert item is not None
    turns = _turns(env, item)
    hits = starter_searcher.search(item.question, env.config.top_k)
    # The other gold: another answer, and gold evidence ids that the searches do return.
    other_answer = (
        next(k for k in item.options if k != item.answer) if item.options else "a different one"
    )
    other = item.model_copy(
        update={"answer": other_answer, "evidence_ids": (hits[-1].doc_id,), "aliases": ()}
    )
    real, fake = _play(env, item, turns), _play(env, other, turns)
    assert len(real) == len(fake) > 2
    for before_real, before_fake in zip(real[:-1], fake[:-1], strict=True):
        assert before_real == before_fake
    # The last step may differ (it is scored); its info keeps the same keys.
    assert set(real[-1][-1]) == set(fake[-1][-1])
    assert real[-1][-1]["term_documents"] or stage == "reasoning"


# ---------------------------------------------------------------- answer wrappers in episodes
SPRAYS = ("boxed_spray", "nested_wrapper_spray", "wrapped_letter_other_text", "hedge_two_letters")


def _items(env: MedR3Env, answer_type: str, count: int) -> list[QAItem]:
    return [q for q in sorted(env.questions, key=lambda q: q.id) if q.answer_type == answer_type][
        :count
    ]


def test_wrapped_sprays_and_hedges_never_earn_the_answer(starter_searcher):
    env = MedR3Env(searcher=starter_searcher, stage="joint")
    items = _items(env, "mcq", 6) + _items(env, "yesno", 3)
    honest = [run_episode(env, make_policy("honest", "auto"), item_id=q.id) for q in items]
    assert sum(r.reward_terms["answer"] for r in honest) >= 2  # honest is right on some of them
    for name in SPRAYS:
        for item in items:
            record = run_episode(env, make_policy(name, "auto"), item_id=item.id)
            assert record.reward_terms["answer"] == 0.0, (name, item.id, record.final_answer)


def test_a_verdict_negated_by_markup_inside_the_word_is_wrong(starter_searcher):
    env = MedR3Env(searcher=starter_searcher, stage="joint")
    for item in _items(env, "yesno", 4):
        record = run_episode(env, make_policy("markup_split_negation", "auto"), item_id=item.id)
        assert record.final_answer and record.final_answer.startswith("**n**ot ")
        assert record.reward_terms["answer"] == 0.0


# ---------------------------------------------------------------- the copy check
def _gold_documents(searcher: Any, count: int = 6) -> list[tuple[QAItem, Any]]:
    env = MedR3Env(searcher=searcher, stage="joint")
    found = []
    for item in sorted(env.questions, key=lambda q: q.id):
        doc = searcher.get(item.evidence_ids[0]) if item.evidence_ids else None
        if doc is not None and len(doc.content.split()) >= 60:
            found.append((item, doc))
        if len(found) == count:
            break
    return found


def _view(item: QAItem, doc: Any) -> View:
    return View(
        turn=3,
        question=item.question,
        options=dict(item.options or {}),
        answer_type=item.answer_type,
        allowed=("search", "read", "answer"),
        queries=(item.question,),
        retrieved=(doc.id,),
        read={doc.id: doc.content},
        titles={doc.id: doc.title},
        last_action="read",
        observation="",
    )


def _paste(name: str, item: QAItem, doc: Any) -> str:
    attack = ATTACKS[name]("auto")
    return str(attack.reasoning(_view(item, doc), doc.content, ""))  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", COPIES)
def test_pastes_the_copy_check_catches_earn_no_evidence(starter_searcher, name):
    extractor = load_extractor("auto")
    for item, doc in _gold_documents(starter_searcher):
        match = match_evidence(extractor, item, _paste(name, item, doc), [doc])
        assert match.copied_sentences > 0, (name, doc.id)
        assert match.score <= 0.2, (name, doc.id, sorted(match.matched))


@pytest.mark.parametrize(
    "name",
    ["paste_inflected", "paste_typos", "paste_document_fillers", "paste_every_third_word"],
)
def test_near_copies_the_copy_check_misses(starter_searcher, name):
    extractor = load_extractor("auto")
    scores = [
        match_evidence(extractor, item, _paste(name, item, doc), [doc]).score
        for item, doc in _gold_documents(starter_searcher)
    ]
    assert max(scores) <= 0.2, scores


def test_honest_reasoning_and_own_words_are_not_near_copies(starter_searcher):
    """The near-copy check (folded word keys, links up to three words apart) leaves alone the
    honest baseline's reasoning about each gold document (its entity names blanked, as the
    evidence term judges it) and a paraphrase in the agent's words."""
    from medr3_env.rewards import guards

    honest = ATTACKS["honest"]("auto")
    for item, doc in _gold_documents(starter_searcher):
        view = _view(item, doc)
        reasoning, _ = honest.honest_answer(view)  # type: ignore[attr-defined]
        match = match_evidence(load_extractor("auto"), item, reasoning, [doc])
        assert match.copied_sentences == 0, (doc.id, reasoning)
    source = guards.copy_source(
        guards.content_words(
            "Toxicity from digoxin may follow acute overdose or develop chronically, typically "
            "in older patients with declining renal function or a newly added interacting drug."
        )
    )
    own = (
        "Because her kidneys have worsened, I suspect the glycoside accumulated slowly, so "
        "stopping it and checking a level is sensible before anything else."
    )
    assert not guards.near_copied_words(guards.content_words(own), source)
    # The same document with endings changed is one.
    inflected = (
        "Toxicities from digoxins may follows acutes overdoses or develops chronicallys, typical "
        "in older patient with declining renals functions or a newly adding interacting drugs."
    )
    assert guards.near_copied_words(guards.content_words(inflected), source)


def test_copy_data_follows_the_content_not_the_id(tmp_path):
    """Two indexes whose document ``d1`` differs: each paste is judged against its own text,
    whichever index was scored first (the per-document copy data is not keyed by id alone)."""
    texts = {
        "a": "Metoprolol slows the ventricular rate in atrial fibrillation by blocking cardiac "
        "beta receptors, which lengthens atrioventricular nodal conduction and lowers the "
        "resting heart rate within hours of the first oral dose in most adults.",
        "b": "Warfarin prevents stroke in atrial fibrillation by lowering vitamin K dependent "
        "clotting factors; the dose follows the international normalised ratio, checked "
        "weekly at first and monthly once the ratio stays within the target range.",
    }
    item = QAItem(
        id="q", question="How is atrial fibrillation treated?", answer="x", answer_type="free"
    )
    extractor = load_extractor("auto")
    docs = {}
    for name, text in texts.items():
        corpus = Corpus.from_documents(f"same-id-{name}", [Document(id="d1", content=text)])
        searcher = build_searcher(corpus, cache_dir=tmp_path / name, entity_extractor="auto")
        docs[name] = searcher.get("d1")
        assert docs[name] is not None and docs[name].content == text
    for first, second in (("a", "b"), ("b", "a")):
        assert match_evidence(extractor, item, texts[first], [docs[first]]).copied_sentences
        # The other index's d1 has other words: the same paste is not a copy of it.
        assert not match_evidence(extractor, item, texts[first], [docs[second]]).copied_sentences
        assert match_evidence(extractor, item, texts[second], [docs[second]]).copied_sentences


def test_fillers_around_dropped_stop_words_do_not_hide_a_near_copy():
    """Two fillers between every word of a document sentence, with the one entity blanked (what
    the extractor without the MeSH list finds): around the stop words that content_words drops
    the fillers pile up past the link window, so the chain must pass over words the document
    lacks. (Seen on PubMedQA: such a paste earned evidence without the MeSH list.)"""
    from medr3_env.rewards import guards

    document = (
        "Patients were older. Multivariate analysis revealed an association of atrial "
        "fibrillation with age (OR 1.08, 95% CI 1.03-1.13)."
    )
    source = guards.document_copy_source("doc-filler", document)
    pasted = " banana purple ".join(document.split()[3:])
    words = guards.content_words("banana purple " + pasted.split(" (OR")[0])
    judged = set(words) - {"association"}
    assert not guards.copied_words(words, source, judged)  # the old check alone misses it
    assert guards.near_copied_words(words, source, judged)
    own = "Age and the length of the operation both mattered for atrial fibrillation here."
    own_words = guards.content_words(own)
    assert not guards.near_copied_words(own_words, source, set(own_words))
