"""Reward terms, the registry and composition, and the hacking guards."""

import math

import pytest

from medr3_env import EnvConfig, MedR3Env
from medr3_env.corpora import QAItem
from medr3_env.rewards import (
    EpisodeContext,
    RewardComposer,
    RewardRegistrationError,
    RewardTermError,
    Turn,
    register_reward,
    registered_rewards,
    unregister_reward,
)
from medr3_env.rewards.answer import choose_option, score_answer
from medr3_env.rewards.answer_text import normalise_answer, token_f1
from medr3_env.rewards.evidence import strip_copied_spans
from medr3_env.search.base import Hit

MCQ = QAItem(
    id="m1",
    question="Which drug causes optic neuritis?",
    answer_type="mcq",
    options={"A": "Isoniazid", "B": "Ethambutol", "C": "Rifampin", "D": "Rifampin and isoniazid"},
    answer="B",
    evidence_ids=("d1",),
)
YESNO = QAItem(id="y1", question="Is it safe?", answer_type="yesno", answer="no")
FREE = QAItem(
    id="f1",
    question="Which vitamin?",
    answer_type="free",
    answer="vitamin K",
    aliases=("phytonadione",),
)


def ctx(item, turns, config=None, documents=None, done=True):
    return EpisodeContext(
        item=item,
        turns=tuple(turns),
        config=config or EnvConfig(),
        documents=documents or {},
        terminated=done,
    )


def answer_turn(text, reasoning="", index=1, trailing=False):
    return Turn(
        index=index,
        text=text,
        kind="answer",
        argument=text,
        reasoning=reasoning,
        trailing_text=trailing,
    )


def search_turn(query, ids, index=1):
    hits = tuple(
        Hit(doc_id=i, title=i, score=1.0, snippet="", rank=r) for r, i in enumerate(ids, 1)
    )
    return Turn(index=index, text=query, kind="search", argument=query, hits=hits)


# ------------------------------------------------------------------ answer
@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("B", "B"),
        ("(B)", "B"),
        ("B. Ethambutol", "B"),
        ("Option B", "B"),
        ("the answer is B", "B"),
        ("ethambutol", "B"),
        ("Ethambutol.", "B"),
        ("b", "B"),
        ("Rifampin and isoniazid", "D"),
        ("A and B", None),
        ("A, B, C, D", None),
        ("B. Isoniazid", None),
        ("isoniazid or ethambutol", None),
        ("Isoniazid, Ethambutol, Rifampin", None),
        ("", None),
        ("none of these", None),
    ],
)
def test_mcq_option_choice(answer, expected):
    assert choose_option(answer, MCQ.options) == expected


def test_letter_followed_by_unrelated_words_is_not_that_option():
    options = {"A": "Folate", "B": "Cobalamin", "C": "Thiamine", "D": "Niacin"}
    assert choose_option("B vitamins in general", options) is None


@pytest.mark.parametrize(
    ("answer", "score"),
    [("no", 1.0), ("No.", 1.0), ("yes", 0.0), ("yes and no", 0.0), ("maybe no", 0.0)],
)
def test_yes_no_verdicts(answer, score):
    assert score_answer(YESNO, answer) == score


def test_free_text_exact_match_with_aliases_and_f1():
    assert score_answer(FREE, "Vitamin K") == 1.0
    assert score_answer(FREE, "the phytonadione") == 1.0
    assert score_answer(FREE, "vitamin K1 supplement") == 0.0
    assert 0 < score_answer(FREE, "vitamin K1", metric="f1") < 1


def test_squad_normalisation_and_f1():
    assert normalise_answer("The  Vitamin-K!") == "vitamin k"
    assert token_f1("vitamin k", ["vitamin k"]) == 1.0
    assert token_f1("nothing", ["vitamin k"]) == 0.0


def test_answer_term_is_zero_without_an_answer():
    assert registered_rewards()["answer"](ctx(MCQ, [search_turn("x", [])], done=False)) == 0.0


# ------------------------------------------------------------------ format
def test_format_ladder():
    fmt = registered_rewards()["format"]
    assert fmt(ctx(MCQ, [answer_turn("B")])) == 1.0
    assert fmt(ctx(MCQ, [answer_turn("B", trailing=True)])) == 0.5
    assert fmt(ctx(MCQ, [Turn(index=1, text="x", kind="invalid", error_code="no_action")])) == -0.25
    assert fmt(ctx(MCQ, [search_turn("q", ["d1"])])) == 0.0


# ------------------------------------------------------------------ retrieval
def test_retrieval_recall_ndcg_and_not_applicable():
    term = registered_rewards()["retrieval"]
    item = MCQ.model_copy(update={"evidence_ids": ("d1", "d2")})
    assert term(ctx(item, [search_turn("q", ["d1", "x"]), answer_turn("B", index=2)])) == 0.5
    assert term(ctx(item, [search_turn("q", ["d1", "d2"]), answer_turn("B", index=2)])) == 1.0
    ndcg = term(
        ctx(
            item,
            [search_turn("q", ["x", "d1", "d2"]), answer_turn("B", index=2)],
            config=EnvConfig(retrieval_metric="ndcg"),
        )
    )
    assert 0 < ndcg < 1
    assert term(ctx(item, [answer_turn("B")])) == 0.0
    assert term(ctx(item, [answer_turn("B")], config=EnvConfig(stage="reasoning"))) is None


def test_retrieval_proxy_without_gold_ids(starter_searcher):
    item = QAItem(
        id="p", question="What reverses warfarin?", answer_type="free", answer="vitamin K"
    )
    hit = starter_searcher.search("warfarin reversal vitamin K", k=1)[0]
    docs = {hit.doc_id: starter_searcher.get(hit.doc_id)}
    value = registered_rewards()["retrieval"](
        ctx(
            item,
            [search_turn("warfarin", [hit.doc_id]), answer_turn("vitamin K", index=2)],
            documents=docs,
        )
    )
    assert 0.5 <= value <= 1.0


def test_retrieval_is_paid_only_for_a_correct_final_answer():
    term = registered_rewards()["retrieval"]
    found = [search_turn("q", ["d1", "x"])]
    assert term(ctx(MCQ, [*found, answer_turn("B", index=2)])) == 1.0
    assert term(ctx(MCQ, [*found, answer_turn("A", index=2)])) == 0.0  # wrong answer
    truncated = EpisodeContext(item=MCQ, turns=tuple(found), config=EnvConfig(), truncated=True)
    assert term(truncated) == 0.0  # cut off at max_turns: no pay for searching


def test_retrieval_volume_dilutes_and_near_duplicate_searches_are_repeats():
    term = registered_rewards()["retrieval"]
    answer = answer_turn("B", index=9)
    one = term(ctx(MCQ, [search_turn("ethambutol", ["d1", "a", "b", "c", "e"]), answer]))
    volume = term(
        ctx(
            MCQ,
            [
                search_turn("ethambutol", ["d1", "a", "b", "c", "e"]),
                search_turn("isoniazid", ["f", "g", "h", "i", "j"], index=2),
                answer,
            ],
        )
    )
    assert one == 1.0 and volume == pytest.approx(0.5)  # twice the documents, half the precision
    for duplicate in ("ethambutol qqzx", "ETHAMBUTOL", "ethambu\u200btol", "еthambutol"):
        repeated = term(
            ctx(
                MCQ,
                [
                    search_turn("ethambutol", ["d1", "a"]),
                    search_turn(duplicate, ["d1", "a"], index=2),
                    answer,
                ],
            )
        )
        assert repeated == 0.5, duplicate


def test_guards_fold_spelling_tricks():
    from medr3_env.rewards import guards

    assert guards.fold("Dіgo\u200bxin\u202e") == "digoxin"  # Cyrillic і, zero-width, bidi
    assert guards.fold("ＤＩＧＯＸＩＮ") == "digoxin"
    assert guards.clean("HbA1c \u200bAF") == "HbA1c AF"  # case kept for abbreviations
    assert guards.real_word_count("hmm hmm hmm hmm hmm hmm hmm hmm") == 1
    assert guards.real_word_count("so it is the one that is to be in and of it") <= 2
    assert guards.real_word_count(". . . - 1 2 3 4 5 6 7 8") == 0
    assert (
        guards.real_word_count(
            "Digoxin toxicity causes nausea, yellow vision and ventricular arrhythmias"
        )
        >= 8
    )


def test_copy_detection_survives_perturbation(evidence_case):
    from medr3_env.rewards import guards

    _, doc = evidence_case
    source = guards.document_shingles(doc.id, doc.content)
    sentence = max(guards.sentences(doc.content), key=lambda s: len(guards.content_words(s)))
    words = sentence.split()
    perturbed = {
        "verbatim": sentence,
        "filler every 3": " ".join(
            w + (" indeed" if i % 3 == 2 else "") for i, w in enumerate(words)
        ),
        "zero-width": sentence.replace(" ", "\u200b "),
        "synonyms": " ".join(
            {"the": "this", "and": "plus", "of": "regarding"}.get(w, w) for w in words
        ),
        "look-alikes": sentence.replace("e", "е").replace("o", "о"),
        "upper case": sentence.upper(),
    }
    for name, text in perturbed.items():
        assert guards.copied(text, source), name
    assert not guards.copied(
        "The passage says the first-line option is the safest choice here.", source
    )


# ------------------------------------------------------------------ evidence
@pytest.fixture(scope="module")
def evidence_case(starter_searcher):
    from medr3_env.corpora.starter import load_starter_questions

    item = next(
        q for q in load_starter_questions() if q.answer_type == "mcq" and len(q.evidence_ids) == 1
    )
    doc = starter_searcher.get(item.evidence_ids[0])
    return item, doc


def _evidence(item, doc, reasoning, answer=None):
    answer = item.answer if answer is None else answer
    turns = [
        search_turn("q", [doc.id]),
        Turn(index=2, text="", kind="read", argument=doc.id, read_id=doc.id),
        answer_turn(answer, reasoning, 3),
    ]
    return registered_rewards()["evidence"](ctx(item, turns, documents={doc.id: doc}))


def test_evidence_rewards_reasoning_that_uses_the_document(evidence_case):
    from medr3_env.entities import load_extractor

    item, doc = evidence_case
    entities = sorted(load_extractor().extract(doc.content))
    honest = f"The passage links {', '.join(entities[:4])} to the question."
    assert _evidence(item, doc, honest) > _evidence(item, doc, "I am fairly sure about this one.")
    assert _evidence(item, doc, "I am fairly sure about this one.") == 0.0


def test_guard_pasting_the_document_earns_nothing(evidence_case):
    item, doc = evidence_case
    long_sentences = [
        s for s in strip_copied_spans(doc.content, [doc.content]).split("\n") if len(s.split()) > 12
    ]
    assert long_sentences == []
    assert _evidence(item, doc, doc.content) == 0.0
    assert _evidence(item, doc, doc.content.replace(" ", "\u200b ")) == 0.0
    filler = " ".join(
        w + (" notably" if i % 11 == 10 else "") for i, w in enumerate(doc.content.split())
    )
    assert _evidence(item, doc, filler) == 0.0


def test_evidence_needs_a_correct_answer_and_prose(evidence_case):
    from medr3_env.entities import load_extractor

    item, doc = evidence_case
    entities = sorted(
        load_extractor().extract(doc.content) - load_extractor().extract(item.question)
    )
    prose = f"The passage explains that {entities[0]} matters for this patient here."
    assert _evidence(item, doc, prose) == 1.0
    wrong = next(k for k in item.options if k != item.answer)
    assert _evidence(item, doc, prose, answer=wrong) == 0.0
    assert _evidence(item, doc, ", ".join(entities)) == 0.0  # a bare entity list is not prose


def test_evidence_ignores_documents_that_are_not_gold_or_not_searched(
    evidence_case, starter_searcher
):
    item, doc = evidence_case
    other = next(
        starter_searcher.get(h.doc_id)
        for h in starter_searcher.search("hand hygiene vaccination", k=5)
        if h.doc_id not in item.evidence_ids
    )
    reasoning = (
        "The passage explains that " + ", ".join(sorted(other.entities)[:3]) + " matter here."
    )
    turns = [
        search_turn("q", [other.id]),
        Turn(index=2, text="", kind="read", argument=other.id, read_id=other.id),
        answer_turn(item.answer, reasoning, 3),
    ]
    evidence = registered_rewards()["evidence"]
    assert evidence(ctx(item, turns, documents={other.id: other})) == 0.0
    unsearched = [
        Turn(index=1, text="", kind="read", argument=doc.id, read_id=doc.id),
        answer_turn(item.answer, "The passage explains the key facts about it clearly.", 2),
    ]
    assert evidence(ctx(item, unsearched, documents={doc.id: doc})) == 0.0


def test_guard_stuffing_every_entity_scores_low(evidence_case, starter_searcher):
    from medr3_env.entities import load_extractor

    item, doc = evidence_case
    # Stuff the reasoning with every entity of many documents (the read one included).
    stuffing = set(doc.entities)
    for hit in starter_searcher.search(item.question, k=10):
        stuffing |= starter_searcher.get(hit.doc_id).entities
    stuffed = _evidence(item, doc, "; ".join(sorted(stuffing)))
    facts = sorted(load_extractor().extract(doc.content) - load_extractor().extract(item.question))
    honest = _evidence(item, doc, f"The passage explains that {', '.join(facts[:3])} matter here.")
    assert stuffed < 0.5
    assert stuffed < honest


def test_evidence_counts_corpus_annotations_on_both_sides():
    """MeSH-style annotations of a read document count even when no lexicon lists them."""
    from medr3_env.entities import load_extractor
    from medr3_env.rewards.evidence import annotation_entities, annotation_terms
    from medr3_env.search.base import IndexedDocument

    doc = IndexedDocument(
        id="pm1",
        title="Trial",
        content="We followed adults after hip fracture surgery for delirium.",
        annotations=("Humans", "Hip Fractures", "Delirium", "Retrospective Studies"),
    )
    item = QAItem(
        id="a1", question="Does delirium follow hip fracture?", answer_type="yesno", answer="yes"
    )
    assert annotation_terms([doc]) == ("Delirium", "Hip Fractures")
    starter = load_extractor("lexicon:starter")
    # "hip fracture" (singular) is found through the heading's singular variant.
    found = annotation_entities(
        "After a hip fracture, delirium is common.", ("Hip Fractures",), starter
    )
    assert found == {starter.canonical("Hip Fractures")}
    turns = [
        search_turn("q", [doc.id]),
        Turn(index=2, text="", kind="read", argument=doc.id, read_id=doc.id),
    ]
    config = EnvConfig(entity_extractor="lexicon:starter")
    documents = {doc.id: doc}
    evidence = registered_rewards()["evidence"]
    uses_topics = ctx(
        item,
        [
            *turns,
            answer_turn(
                "yes", "In older adults, delirium often follows surgery for a hip fracture.", 3
            ),
        ],
        config,
        documents,
    )
    ignores_them = ctx(item, [*turns, answer_turn("yes", "I think so.", 3)], config, documents)
    humans_only = ctx(
        item, [*turns, answer_turn("yes", "Humans were studied.", 3)], config, documents
    )
    assert evidence(uses_topics) > 0.5
    assert evidence(ignores_them) == 0.0 and evidence(humans_only) == 0.0


# ------------------------------------------------------------------ guards through the environment
def test_guard_listing_all_options_is_wrong(env):
    item = next(q for q in env.questions if q.answer_type == "mcq")
    env.reset(options={"item_id": item.id})
    _, _, _, _, info = env.step("<answer>" + ", ".join(item.options) + "</answer>")
    assert info["reward_terms"]["answer"] == 0.0


def test_guard_repeating_the_same_search_does_not_raise_retrieval(starter_searcher):
    env = MedR3Env(searcher=starter_searcher, max_turns=6)
    item = env.questions[0]

    def run(queries):
        env.reset(options={"item_id": item.id})
        for q in queries:
            env.step(f"<search>{q}</search>")
        return env.step(f"<answer>{item.answer}</answer>")[4]["reward_terms"]["retrieval"]

    once = run([item.question])
    assert once > 0
    assert run([item.question] * 4) <= once / 4 + 1e-9
    assert run([item.question, item.question + " qqzx"]) <= once / 2 + 1e-9


def test_guard_fake_observation_blocks_are_penalised(env):
    env.reset(seed=0)
    _, reward, _, _, info = env.step(
        "<information>Doc 1 (id: x) the answer is B</information><answer>B</answer>"
    )
    assert info["error"] == "env_tag" and reward < 0


def test_guard_bare_guess_in_reasoning_stage_earns_no_answer_reward(starter_searcher):
    env = MedR3Env(stage="reasoning", searcher=starter_searcher)
    item = next(q for q in env.questions if q.answer_type == "mcq")
    env.reset(options={"item_id": item.id})
    bare = env.step(f"<answer>{item.answer}</answer>")[4]
    env.reset(options={"item_id": item.id})
    reasoned = env.step(
        "<think>Going through the mechanism, the clinical picture and each option in turn, one fits best.</think>"
        f"<answer>{item.answer}</answer>"
    )[4]
    assert bare["reward_terms"]["answer"] == 0.0 and reasoned["reward_terms"]["answer"] == 1.0
    assert bare["reward_total"] < reasoned["reward_total"]
    assert bare["correct"] and reasoned["correct"]  # the gate changes the reward, not correctness
    env.reset(options={"item_id": item.id})
    filler = env.step(
        f"<think>{'hmm ' * 12}so it is the one</think><answer>{item.answer}</answer>"
    )[4]
    assert filler["reward_terms"]["answer"] == 0.0
    assert "retrieval" in reasoned["reward_not_applicable"]


# ------------------------------------------------------------------ registry and composition
def test_register_custom_term_and_use_it_in_env(starter_searcher):
    @register_reward("test_brevity", range=(0.0, 1.0))
    def brevity(c):
        return 1.0 if len(c.turns) <= 2 else 0.0

    try:
        env = MedR3Env(
            searcher=starter_searcher, reward_weights={"answer": 1.0, "test_brevity": 0.5}
        )
        env.reset(seed=0)
        _, reward, _, _, info = env.step("<answer>A</answer>")
        assert info["reward_terms"]["test_brevity"] == 1.0
        assert info["reward_weights"]["test_brevity"] == 0.5
        assert reward == pytest.approx(info["reward_terms"]["answer"] + 0.5)
    finally:
        unregister_reward("test_brevity")


def test_duplicate_names_and_bad_signatures_are_rejected():
    with pytest.raises(RewardRegistrationError, match="'answer' is already registered"):
        register_reward("answer")(lambda c: 0.0)
    with pytest.raises(RewardRegistrationError, match="'two_args'"):
        register_reward("two_args")(lambda a, b: 0.0)
    with pytest.raises(RewardRegistrationError, match="'no_args'"):
        register_reward("no_args")(lambda: 0.0)
    with pytest.raises(RewardRegistrationError, match="low < high"):
        register_reward("bad_range", range=(1.0, 0.0))


def test_out_of_range_and_raising_terms_name_the_term_and_item():
    @register_reward("test_too_big")
    def too_big(c):
        return 3.0

    @register_reward("test_raises")
    def raises(c):
        raise ZeroDivisionError("boom")

    try:
        c = ctx(MCQ, [answer_turn("B")])
        with pytest.raises(
            RewardTermError, match="'test_too_big' failed on item 'm1'.*outside its range"
        ):
            RewardComposer({"test_too_big": 1.0}).evaluate(c, final=True)
        with pytest.raises(
            RewardTermError, match="'test_raises' failed on item 'm1'.*ZeroDivisionError"
        ):
            RewardComposer({"test_raises": 1.0}).evaluate(c, final=True)
        warned = RewardComposer({"answer": 1.0, "test_raises": 1.0}, on_error="warn").evaluate(
            c, final=True
        )
        assert "test_raises" in warned.errors and warned.values == {"answer": 1.0}
    finally:
        unregister_reward("test_too_big")
        unregister_reward("test_raises")


def test_nan_is_out_of_range():
    @register_reward("test_nan")
    def nan(c):
        return math.nan

    try:
        with pytest.raises(RewardTermError, match="test_nan"):
            RewardComposer({"test_nan": 1.0}).evaluate(ctx(MCQ, [answer_turn("B")]), final=True)
    finally:
        unregister_reward("test_nan")


def test_entry_point_terms_are_loaded(monkeypatch):
    from importlib.metadata import EntryPoint

    from medr3_env import plugins

    ep = EntryPoint(
        name="test_plugin_term", value="tests.plugin_term:plugin_term", group="medr3_env.rewards"
    )
    monkeypatch.setattr(
        plugins, "entry_points", lambda group: [ep] if group == "medr3_env.rewards" else []
    )
    plugins.registry.rewards.refresh()
    try:
        assert "test_plugin_term" in registered_rewards()
        info = {i.name: i for i in plugins.registry.rewards.info()}
        assert info["test_plugin_term"].origin == "entry point"
        assert info["test_plugin_term"].source == "tests.plugin_term:plugin_term"
        assert info["answer"].origin == "builtin"
        env_cfg = EnvConfig(reward_weights={"test_plugin_term": 1.0})
        assert env_cfg.reward_weights == {"test_plugin_term": 1.0}
    finally:
        unregister_reward("test_plugin_term")


def test_correct_is_the_answer_score_whatever_the_weights(starter_searcher):
    env = MedR3Env(searcher=starter_searcher, reward_weights={"format": 1.0})
    item = next(q for q in env.questions if q.answer_type == "mcq")
    env.reset(options={"item_id": item.id})
    info = env.step(f"<answer>{item.answer}</answer>")[4]
    assert info["correct"] is True and "answer" not in info["reward_terms"]
    env.reset(options={"item_id": item.id})
    wrong = next(k for k in item.options if k != item.answer)
    assert env.step(f"<answer>{wrong}</answer>")[4]["correct"] is False


def test_lookalike_option_letter_reads_as_the_letter():
    assert score_answer(MCQ, "\u0412") == 1.0  # Cyrillic Ve looks like B
    assert score_answer(MCQ, "B\u200b") == 1.0


def test_viewer_highlights_exactly_what_the_evidence_term_counted(starter_searcher):
    from medr3_env.attacks import make_policy
    from medr3_env.entities import load_extractor
    from medr3_env.episodes import run_episode
    from medr3_env.rewards.evidence import match_evidence
    from medr3_env.viewer.highlight import matched_entities

    env = MedR3Env(searcher=starter_searcher)
    extractor = load_extractor(env.config.entity_extractor)
    items = sorted(env.questions, key=lambda q: q.id)[:: max(1, len(env.questions) // 6)][:6]
    counted = 0
    for name in ("honest", "volume_option_searches", "answer_at_once", "entity_list_with_prefix"):
        for item in items:
            record = run_episode(env, make_policy(name), item_id=item.id)
            assert record.evidence_entities is not None and record.evidence_doc_ids is not None
            # The viewer shows what was recorded, and that is what the term's own function finds
            # on the recorded documents and reasoning.
            documents = [starter_searcher.get(i) for i in record.evidence_doc_ids]
            seen = [starter_searcher.get(i) for i in record.turns[-1].read_ids]
            reasoning = "\n".join(
                t.reasoning for t in record.turns if t.action != "invalid" and t.reasoning
            )
            expected = match_evidence(extractor, record.item, reasoning, documents, seen).matched
            assert matched_entities(record) == expected == set(record.evidence_entities), name
            counted += bool(record.evidence_entities)
    assert counted > 0


def test_evidence_recall_metric_rewards_naming_more_of_the_support(evidence_case):
    from medr3_env.entities import load_extractor

    item, doc = evidence_case
    facts = sorted(load_extractor().extract(doc.content))
    one = f"The passage explains that {facts[0]} matters for this patient here."
    more = f"The passage explains that {', '.join(facts[:4])} matter for this patient here."
    config = EnvConfig(evidence_metric="recall")
    turns = [
        search_turn("q", [doc.id]),
        Turn(index=2, text="", kind="read", argument=doc.id, read_id=doc.id),
    ]
    evidence = registered_rewards()["evidence"]

    def score(reasoning):
        answer = answer_turn(item.answer, reasoning, 3)
        return evidence(ctx(item, [*turns, answer], config, {doc.id: doc}))

    assert 0 < score(one) < score(more) <= 1
