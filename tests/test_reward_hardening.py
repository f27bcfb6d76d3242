"""Guards added after an independent red-team pass over the reward terms: each test pins one
loophole that an attack in medr3_env.attacks found (the attack's name is in the docstring)."""

import random
import re

import pytest

from medr3_env import MedR3Env, actions
from medr3_env.actions import parse_action
from medr3_env.attacks import MARGIN, Attack, View, evaluate_all
from medr3_env.baseline import ScriptedPolicy
from medr3_env.corpora import QAItem
from medr3_env.entities import load_extractor
from medr3_env.rewards import guards
from medr3_env.rewards.answer import score_answer
from medr3_env.rewards.evidence import match_evidence
from medr3_env.search.base import IndexedDocument
from medr3_env.text_norm import fold_text

EXTRACTOR = "lexicon:starter"
CONTENT = (
    "Almost all arrhythmias can occur in digoxin toxicity. Hyperkalemia predicts mortality and "
    "calls for digoxin-specific antibody fragments rather than calcium replacement."
)


def _document(content: str = CONTENT, doc_id: str = "card-x") -> IndexedDocument:
    extractor = load_extractor(EXTRACTOR)
    sentences = re.split(r"(?<=[.!?])\s+", content)
    return IndexedDocument(
        id=doc_id,
        title="Digoxin toxicity",
        content=content,
        sentence_entities=tuple(frozenset(extractor.extract(s)) for s in sentences),
    )


ITEM = QAItem(
    id="q-x",
    question="Which finding predicts mortality in acute digoxin poisoning?",
    answer_type="free",
    answer="hyperkalemia",
    evidence_ids=("card-x",),
)


def _matched(reasoning: str, doc: IndexedDocument | None = None) -> frozenset[str]:
    return match_evidence(load_extractor(EXTRACTOR), ITEM, reasoning, [doc or _document()]).matched


def test_an_abbreviation_does_not_match_a_common_word():
    """universal_abbreviation: "ALL" is acute lymphoblastic leukemia, not the word "all", and
    "ACE" is not the end of "replacement"."""
    assert _matched("The passage clearly says ALL and ACE matter here.") == frozenset()
    assert _matched("The passage clearly says hyperkalemia matters here.") == {"hyperkalemia"}


def test_an_entity_named_only_inside_a_longer_word_is_not_in_the_document():
    doc = _document("Potassium replacement is common after surgery in older adults overall.")
    assert not _matched("The passage clearly says that ACE matters here.", doc)


@pytest.mark.parametrize(
    "perturb",
    [
        pytest.param(lambda s: " banana purple ".join(s.split()), id="two-fillers-between-words"),
        pytest.param(lambda s: " ".join(reversed(s.split())), id="words-reversed"),
        pytest.param(lambda s: " ".join(s.split()), id="verbatim"),
    ],
)
def test_perturbed_copies_are_copies(perturb):
    """paste_double_filler, paste_reversed: fillers outside the document's vocabulary and a
    reversed word order do not hide a copy."""
    source = (
        "Toxicity from digoxin may follow acute overdose or develop chronically, typically in older "
        "patients with declining renal function or a newly added interacting drug."
    )
    grams = guards.document_shingles("d-copy", source)
    assert guards.copied(perturb(source), grams)


def test_own_words_that_mention_document_terms_are_not_copies():
    source = (
        "Toxicity from digoxin may follow acute overdose or develop chronically, typically in older "
        "patients with declining renal function or a newly added interacting drug."
    )
    grams = guards.document_shingles("d-copy", source)
    own = (
        "Because her kidneys have worsened, I suspect the glycoside accumulated slowly, so stopping "
        "it and checking a level is sensible before anything else."
    )
    assert not guards.copied(own, grams)


def test_a_numeric_gold_earns_no_partial_f1_for_its_unit():
    """unit_only_answer: under answer_metric="f1", "mg" is not 2/3 of "300 mg"."""
    item = QAItem(id="n1", question="What dose?", answer_type="free", answer="300 mg")
    assert score_answer(item, "mg", "f1") == 0.0
    assert score_answer(item, "0-100000 mg", "f1") == 0.0
    assert score_answer(item, "300 milligrams", "f1") == 1.0
    words = QAItem(id="n2", question="Which?", answer_type="free", answer="monoclonal protein")
    assert 0.0 < score_answer(words, "protein", "f1") < 1.0  # words still earn partial credit


def test_every_sentence_of_a_long_reasoning_is_judged():
    """Spans are looked up per sentence; with thousands of sentences each one still counts."""
    doc = _document()
    reasoning = " ".join(["The passage clearly explains why this matters here."] * 3000)
    reasoning += " The passage clearly says hyperkalemia matters here."
    match = match_evidence(load_extractor(EXTRACTOR), ITEM, reasoning, [doc])
    assert match.matched == {"hyperkalemia"}


# The candidate pattern before non-ASCII turns got their own (any letter after the opener).
_ANY_LETTER_CANDIDATE = re.compile(
    f"[{actions._OPENERS}](?=\\s{{0,8}}(?:/\\s{{0,8}})?[^\\W\\d_])"
    f"([^{actions._OPENERS}{actions._CLOSERS}]{{0,{actions.MAX_TAG_CHARS}}})[{actions._CLOSERS}]"
)


def _reference_tag(text: str) -> tuple[str, bool] | None:
    """The tag that starts ``text``, by folding the whole candidate body (the parser's
    definition of a tag), or ``None`` when ``text`` does not start with one."""
    match = _ANY_LETTER_CANDIDATE.match(text)
    if match is None:
        return None
    body = match.group(1)
    parsed = actions._TAG_BODY.match(body.lower() if body.isascii() else fold_text(body))
    if parsed is None:
        return None
    rest = parsed.group(3)
    if rest and not (rest[0].isspace() or rest.strip() == "/"):
        return None
    return parsed.group(2), parsed.group(1) == "/"


def test_non_ascii_tag_bodies_are_folded_as_before():
    """Fullwidth, look-alike and accented spellings still fold to tags, bodies that cannot fold
    to a tag name (Cyrillic, CJK) are text, and every candidate decides as folding it whole did
    (the per-character table and the narrower candidate pattern change only the speed)."""
    assert parse_action("<ｓｅａｒｃｈ>digoxin</ｓｅａｒｃｈ>").kind == "search"
    assert parse_action("<\u0430nswer>A</\u0430nswer>").kind == "answer"
    assert parse_action("<ж> <丁> x <answer>B</answer>").argument == "B"
    atoms = ["а", "ｓ", "search", "READ", "think", "/", " ", "\u200b", "𝐚", "é", "\u0301", "Ⓐ",
             "ﬁ", "K", "İ", "ẞ", "-", "_", "1", "?", "ж", "¼", "℅", "\u3000", "丁", "x"]  # fmt: skip
    rng = random.Random(11)
    for _ in range(5000):
        text = "<" + "".join(rng.choice(atoms) for _ in range(rng.randint(1, 6))) + ">é"
        expected = _reference_tag(text)
        pattern = actions._CANDIDATE if text.isascii() else actions._wide_candidate()
        match = pattern.match(text)
        tag = actions._tag_at(text, match) if match else None
        assert (None if tag is None else (tag.name, tag.closing)) == expected, text


def test_attacks_rebuild_the_honest_answer_with_the_document_title():
    """Attack.honest_answer used to drop the title, so a free-text answer that falls back to the
    title came out empty and every attack built on it lost format points."""
    v = View(
        turn=3,
        question="Which passage?",
        options={},
        answer_type="free",
        allowed=("search", "read", "answer"),
        queries=("which passage",),
        retrieved=("d1",),
        read={"d1": "Nothing here names a known term."},
        titles={"d1": "Digoxin toxicity"},
        last_action="read",
        observation="",
    )
    _, answer = Attack(EXTRACTOR).honest_answer(v)
    observation = "<information>\nDocument d1 | Digoxin toxicity\nNothing here names a known term.\n</information>"
    info = {"turn": 3, "question": v.question, "options": {}, "answer_type": "free",
            "allowed_actions": ["answer"], "action": "read"}  # fmt: skip
    honest = parse_action(ScriptedPolicy(EXTRACTOR)(observation, info)).argument
    assert answer and answer == honest


def test_unit_only_answers_gain_nothing_under_f1(starter_searcher):
    """unit_only_answer beat the honest baseline on every starter split with answer_metric="f1"
    (+0.012..+0.019 on the whole set) before numeric golds lost their partial credit."""
    env = MedR3Env(searcher=starter_searcher, stage="joint", answer_metric="f1")
    items = [
        q for q in env.questions if q.answer_type == "free" and any(c.isdigit() for c in q.answer)
    ]
    rows = evaluate_all(env, items[:8], ["unit_only_answer"])
    assert rows["unit_only_answer"]["total"] <= rows["honest"]["total"] + MARGIN
    assert rows["unit_only_answer"]["answer"] <= rows["honest"]["answer"]


_PIECES = (
    "Digoxin", "toxicity", "ALL", "the", "of", " ", "  ", "\n", "\n\n", "\t", ".", ". ", "!", "?",
    ",", "_", "-", "a_b", "x2", "42", "\x0b", "\x1c", "\x01", "\u200b", "é", "Dіgoxin", "ß", "İ",
    "\u00a0", "\u2028", "α", "５", "e\u0301",
)  # fmt: skip


def _reference_sentence_spans(text: str) -> list[tuple[int, int]]:
    """guards.sentence_spans as first written: every piece found by a token regex."""
    parts, start = [], 0
    for boundary in re.finditer(r"(?<=[.!?])\s+|\n+", text):
        parts.append((start, boundary.start()))
        start = boundary.end()
    parts.append((start, len(text)))
    out = []
    for begin, end in parts:
        words = list(re.compile(r"\S+").finditer(text, begin, end))
        for first in range(0, len(words), guards.MAX_SENTENCE_WORDS):
            last = words[min(first + guards.MAX_SENTENCE_WORDS, len(words)) - 1]
            out.append((words[first].start(), last.end()))
    return out


def test_word_and_sentence_shortcuts_equal_their_regex_definitions():
    """The ASCII translate-and-split word finder, the one-piece sentence shortcut and the
    query-term shortcut give exactly what the regexes give, on ASCII and on other text."""
    from medr3_env.search.query import STOPWORDS, query_terms

    rng = random.Random(13)
    word = re.compile(r"[^\W_]+")
    for _ in range(3_000):
        text = "".join(rng.choices(_PIECES, k=rng.randint(0, 120)))
        for variant in (text, text.encode("ascii", "ignore").decode()):
            assert guards._words(variant) == word.findall(variant)
            assert guards.sentence_spans(variant) == _reference_sentence_spans(variant)
            reference: list[str] = []
            for term in (m.lower() for m in word.findall(variant)):
                if term not in STOPWORDS and term not in reference and len(term) <= 40:
                    reference.append(term)
            assert query_terms(variant) == reference[:32]
    long_run = " ".join(["word"] * 95)  # one unpunctuated run: judged in pieces of 40 words
    assert guards.sentence_spans(long_run) == _reference_sentence_spans(long_run)
    assert len(guards.sentence_spans(long_run)) == 3


def test_folding_by_regex_equals_folding_by_translate_tables():
    """clean/fold delete invisible characters and combining marks with regex character classes;
    on every code point and on random mixed text they equal the translate tables they replace."""
    import sys
    import unicodedata

    from medr3_env import text_norm as tn

    invisible, marks = tn._tables()
    for code in range(sys.maxunicode + 1):
        text = "a" + chr(code)
        assert tn.strip_invisible(text) == text.translate(invisible), hex(code)
        assert tn._patterns()[1].sub("", text) == text.translate(marks), hex(code)

    def fold_reference(text: str) -> str:
        if text.isascii():
            return text.translate(invisible).lower()
        text = unicodedata.normalize("NFKD", text.translate(marks)).translate(marks)
        text = unicodedata.normalize("NFKC", text).translate(tn.CONFUSABLES)
        return text.translate(marks).casefold()

    def clean_reference(text: str) -> str:
        if text.isascii():
            return text.translate(invisible)
        text = unicodedata.normalize("NFKC", text.translate(invisible))
        return tn.map_confusables(text.translate(invisible), mixed_script_only=True)

    rng = random.Random(5)
    special = [*list(invisible)[:500], *list(marks)[:800], *tn.CONFUSABLES, 0x2026, 0xFB01]
    for _ in range(6_000):
        chars = []
        for _ in range(rng.randint(0, 25)):
            roll = rng.random()
            if roll < 0.3:
                chars.append(chr(rng.choice(special)))
            elif roll < 0.45:
                chars.append(chr(rng.randrange(sys.maxunicode + 1)))
            else:
                chars.append(rng.choice("abc DEF.\n\t\x01"))
        text = "".join(chars)
        assert tn.clean_text(text) == clean_reference(text), repr(text)
        assert tn.fold_text(text) == fold_reference(text), repr(text)


def _reference_copied(sentence: str, grams: frozenset, judge: str | None) -> bool:
    """guards.copied as first written (vocabulary from the pairs, words found per call)."""
    vocabulary = {word for pair in grams for word in pair}
    words = [w for w in guards.content_words(sentence) if w in vocabulary]
    judged = set(guards.content_words(judge)) if judge is not None else None
    positions = [i for i in range(len(words) - 1) if judged is None or words[i] in judged]
    if len(positions) < guards.COPY_MIN_WORDS:
        return False

    def follows(i: int) -> bool:
        return any(
            (words[i], words[j]) in grams or (words[j], words[i]) in grams
            for j in (i + 1, i + 2)
            if j < len(words)
        )

    return sum(1 for i in positions if follows(i)) >= guards.COPY_SHARE * len(positions)


def test_copy_check_on_shared_sentence_words_equals_the_per_call_check():
    """copied_words (a sentence's words found once for every source, the vocabulary taken from
    the words) decides exactly as the original per-call copy test, on random sentences drawn
    from the document's own words, fillers and other words."""
    rng = random.Random(11)
    vocabulary = [f"w{i}" for i in range(40)] + ["the", "of", "and", "x", "42"]
    copies = 0
    for _ in range(3_000):
        document = rng.choices(vocabulary, k=rng.randint(0, 60))
        content = " ".join(document)
        grams = guards.document_shingles(f"d{len(content)}", content)
        source = guards.document_copy_source(f"d{len(content)}", content)
        assert source.vocabulary == {word for pair in grams for word in pair}
        if document and rng.random() < 0.4:  # a pasted stretch, perhaps reversed
            start = rng.randrange(len(document))
            stretch = document[start : start + rng.randint(1, 20)]
            sentence = " ".join(stretch[:: rng.choice((1, -1))])
        else:
            sentence = " ".join(rng.choices(document or vocabulary, k=rng.randint(0, 20)))
        if rng.random() < 0.5:
            sentence = sentence.replace(" ", " filler ", rng.randint(0, 5))
        judge = " ".join(w for w in sentence.split() if rng.random() < 0.8)
        for judged in (None, judge):
            expected = _reference_copied(sentence, grams, judged)
            words = set(guards.content_words(judged)) if judged is not None else None
            assert guards.copied(sentence, grams, judge=judged) == expected
            assert guards.copied_words(guards.content_words(sentence), source, words) == expected
            copies += expected
    assert copies > 300  # both verdicts were compared


def test_copy_source_for_the_reasoning_words_decides_as_the_whole_document():
    """copy_source_for (only the pairs of the reasoning's words: what reasoning_copy_source gives
    for a document's first read; later reads get the whole source) gives copied_words and
    near_copied_words the verdicts of the document's whole copy_source, for every sentence of
    the reasoning: pasted stretches, reversed, with fillers, changed endings and swapped letters."""
    rng = random.Random(12)
    stems = ["metformin", "acidosis", "kidney", "renal", "failure", "dose", "lactic", "risk"]
    vocabulary = [f"{s}{i}" for s in stems for i in range(5)] + ["the", "of", "and", "x", "42"]

    def perturbed(word: str) -> str:
        roll = rng.random()
        if roll < 0.2 and len(word) > 4:
            return word[0] + word[2] + word[1] + word[3:]  # swapped inner letters
        if roll < 0.4:
            return word + "s"  # changed ending
        return word

    verdicts = {True: 0, False: 0}
    for round_ in range(800):
        document = rng.choices(vocabulary, k=rng.randint(0, 80))
        content = " ".join(document)
        whole = guards.document_copy_source(f"r{round_}", content)
        sentences = []
        for _ in range(rng.randint(1, 4)):
            if document and rng.random() < 0.6:
                start = rng.randrange(len(document))
                stretch = document[start : start + rng.randint(1, 25)][:: rng.choice((1, -1))]
                sentence = " ".join(perturbed(w) for w in stretch)
            else:
                sentence = " ".join(rng.choices(vocabulary, k=rng.randint(0, 25)))
            if rng.random() < 0.4:
                sentence = sentence.replace(" ", " filler ", rng.randint(0, 6))
            sentences.append(guards.content_words(sentence))
        used = {w for words in sentences for w in words}
        part = guards.reasoning_copy_source(f"r{round_}", content, used)  # first read
        assert part == guards.copy_source_for(guards.document_words(f"r{round_}", content), used)
        assert guards.reasoning_copy_source(f"r{round_}", content, used) == whole  # again
        assert part.vocabulary == whole.vocabulary and part.near_keys == whole.near_keys
        for words in sentences:
            judged = {w for w in words if rng.random() < 0.8}
            for judge in (None, judged):
                exact = guards.copied_words(words, whole, judge)
                near = guards.near_copied_words(words, whole, judge)
                assert guards.copied_words(words, part, judge) == exact
                assert guards.near_copied_words(words, part, judge) == near
                verdicts[exact or near] += 1
    assert min(verdicts.values()) > 200  # both verdicts were compared
