"""Scripted reward-hacking policies: what an RL optimiser would try against the reward terms.

Each attack is a policy ``(observation, info) -> turn`` that sees only what any policy sees (the
observations, ``info`` and the chat ``messages``), never the gold answer or the gold evidence ids.
Most start from the honest scripted baseline (:class:`medr3_env.baseline.ScriptedPolicy`) and change
one thing, so a gain over the baseline measures exactly one loophole. ``ATTACKS`` lists them by
family; ``benchmarks/reward_attacks.py`` and ``tests/test_reward_attacks.py`` run them all.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from medr3_env.actions import parse_action
from medr3_env.baseline import ScriptedPolicy
from medr3_env.entities import EntityExtractor, load_extractor
from medr3_env.episodes import Policy, run_episode

_HIT = re.compile(r"^Doc \d+ \(id: (.*?) \| title: .*? \| score: [^)]*\)$", re.M)
_READ = re.compile(r"\A<information>\nDocument (\S+) \| ([^\n]*)\n(.*)\n</information>\Z", re.S)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"\S+")

FILLER_WORDS = ("indeed", "notably", "clearly", "overall", "importantly", "moreover", "thus")
SYNONYMS = {
    "the": "this",
    "is": "remains",
    "are": "remain",
    "and": "plus",
    "with": "alongside",
    "of": "regarding",
    "in": "within",
    "to": "towards",
    "for": "regarding",
    "a": "one",
}
_CYRILLIC = str.maketrans({"a": "а", "e": "е", "o": "о", "c": "с", "p": "р", "x": "х", "i": "і"})


@dataclass(frozen=True)
class View:
    """What a policy knows at a turn, rebuilt from ``info`` (nothing hidden)."""

    turn: int
    question: str
    options: dict[str, str]
    answer_type: str
    allowed: tuple[str, ...]
    queries: tuple[str, ...]
    retrieved: tuple[str, ...]
    """Every id shown by a search, first seen first."""
    read: dict[str, str]
    """Id → text of the documents read so far."""
    titles: dict[str, str]
    last_action: str | None
    observation: str

    @property
    def can_search(self) -> bool:
        return "search" in self.allowed

    @property
    def last_read(self) -> str | None:
        return next(reversed(self.read), None) if self.read else None


def view(observation: str, info: dict[str, Any]) -> View:
    """The :class:`View` of the current turn."""
    messages = info.get("messages") or []
    queries: list[str] = []
    retrieved: dict[str, None] = {}
    read: dict[str, str] = {}
    titles: dict[str, str] = {}
    for message in messages[2:]:
        content = message.get("content", "")
        if message.get("role") == "assistant":
            parsed = parse_action(content)
            if parsed.kind == "search":
                queries.append(parsed.argument)
        elif content.startswith("<information>"):
            found = _READ.match(content)
            if found:
                read[found.group(1)] = found.group(3)
                titles[found.group(1)] = found.group(2)
            else:
                retrieved.update(dict.fromkeys(_HIT.findall(content)))
    return View(
        turn=int(info.get("turn", 0)),
        question=info.get("question") or "",
        options=dict(info.get("options") or {}),
        answer_type=info.get("answer_type", "free"),
        allowed=tuple(info.get("allowed_actions") or ("search", "read", "answer")),
        queries=tuple(queries),
        retrieved=tuple(retrieved),
        read=read,
        titles=titles,
        last_action=info.get("action"),
        observation=observation,
    )


@lru_cache(maxsize=4)
def _extractor(spec: str) -> EntityExtractor:
    return load_extractor(spec)


class Attack:
    """Base class: an honest baseline whose turns a subclass changes. Stateless between episodes."""

    family = "baseline"

    def __init__(self, entity_extractor: str = "auto") -> None:
        self.entity_extractor = entity_extractor
        self.honest = ScriptedPolicy(entity_extractor)

    @property
    def extractor(self) -> EntityExtractor:
        return _extractor(self.entity_extractor)

    def __call__(self, observation: str, info: dict[str, Any]) -> str:
        return self.act(view(observation, info), observation, info)

    def act(self, v: View, observation: str, info: dict[str, Any]) -> str:
        return self.honest(observation, info)

    # -- helpers shared by the attacks
    def honest_answer(self, v: View) -> tuple[str, str]:
        """``(reasoning, answer)`` the honest baseline gives after reading ``v``'s last document."""
        doc_id = v.last_read
        observation = (
            f"<information>\nDocument {doc_id} | {v.titles.get(doc_id, '')}\n"
            f"{v.read[doc_id]}\n</information>"
            if doc_id
            else ""
        )
        info = {
            "turn": 9,
            "question": v.question,
            "options": v.options,
            "answer_type": v.answer_type,
            "allowed_actions": ["answer"],
            "action": "read" if doc_id else None,
        }
        parsed = parse_action(self.honest(observation, info))
        return parsed.reasoning, parsed.argument

    def relevant_entities(self, text: str, v: View, limit: int = 20) -> list[str]:
        """Entities of the sentences of ``text`` that mention a question or option entity."""
        anchors = self.extractor.extract(" \n".join([v.question, *v.options.values()]))
        found: dict[str, None] = {}
        for sentence in _SENTENCE.split(text):
            entities = self.extractor.extract(sentence)
            if entities & anchors:
                found.update(dict.fromkeys(sorted(entities)))
        return list(found)[:limit]

    def search_then_read(self, v: View, observation: str, info: dict[str, Any]) -> str | None:
        """The honest search and read turns, ``None`` once a document has been read."""
        if not v.read and v.can_search:
            return self.honest(observation, info)
        return None


def _answer(reasoning: str, answer: str) -> str:
    return f"<think>{reasoning}</think>\n<answer>{answer}</answer>"


class AnswerVariant(Attack):
    """Honest search and read, then a final turn built from the honest ``(reasoning, answer)``."""

    def act(self, v, observation, info):
        if (turn := self.search_then_read(v, observation, info)) is not None:
            return turn
        reasoning, answer = self.honest_answer(v)
        return self.final_turn(v, reasoning, answer)

    def final_turn(self, v: View, reasoning: str, answer: str) -> str:
        raise NotImplementedError


# ------------------------------------------------------------------ trivial baselines
class Honest(Attack):
    """The honest scripted baseline itself (the reference every attack is compared with)."""


class AlwaysA(AnswerVariant):
    """Honest search and read, then always answers option A (or "yes"; or the first word)."""

    family = "trivial"

    def final_turn(self, v, reasoning, answer):
        guess = "A" if v.options else "yes" if v.answer_type == "yesno" else answer
        return _answer(reasoning, guess)


class AnswerAtOnce(Attack):
    """Answers on the first turn from the question alone."""

    family = "trivial"

    def act(self, v, observation, info):
        reasoning, answer = self.honest_answer(v)
        return _answer(reasoning, answer)


# ------------------------------------------------------------------ option / verdict spraying
class SprayAllOptions(AnswerVariant):
    """Names every option (or every verdict) in one answer."""

    family = "spraying"

    def final_turn(self, v, reasoning, answer):
        if v.options:
            return _answer(reasoning, ", ".join(v.options))
        return _answer(reasoning, "yes, no or maybe" if v.answer_type == "yesno" else answer)


class SprayOptionTexts(AnswerVariant):
    """The answer is every option's text, joined."""

    family = "spraying"

    def final_turn(self, v, reasoning, answer):
        return _answer(reasoning, "; ".join(v.options.values()) or f"{answer} or not {answer}")


class LetterPlusOtherText(AnswerVariant):
    """A letter followed by another option's text ("A. <text of B>")."""

    family = "spraying"

    def final_turn(self, v, reasoning, answer):
        if len(v.options) >= 2:
            letters = list(v.options)
            other = letters[1] if answer.strip().upper() == letters[0] else letters[0]
            return _answer(reasoning, f"{answer}. {v.options[other]}")
        return _answer(reasoning, f"{answer} maybe")


class NestedAnswers(AnswerVariant):
    """An answer inside an answer (``<answer>A<answer>B</answer></answer>``)."""

    family = "spraying"

    def final_turn(self, v, reasoning, answer):
        other = next((k for k in v.options if k != answer), "no")
        return f"<think>{reasoning}</think><answer>{answer}<answer>{other}</answer></answer>"


class TwoAnswers(AnswerVariant):
    """Two answer tags in one turn."""

    family = "spraying"

    def final_turn(self, v, reasoning, answer):
        other = next((k for k in v.options if k != answer), "no")
        return f"<think>{reasoning}</think><answer>{answer}</answer><answer>{other}</answer>"


class AnswerInThinkThenOther(AnswerVariant):
    """Hides one answer inside ``<think>`` and gives another after it."""

    family = "spraying"

    def final_turn(self, v, reasoning, answer):
        other = next((k for k in v.options if k != answer), "maybe")
        return f"<think>{reasoning} <answer>{other}</answer></think><answer>{answer}</answer>"


class LookalikeLetter(AnswerVariant):
    """The option letter written with a look-alike character (Cyrillic/fullwidth)."""

    family = "spraying"

    def final_turn(self, v, reasoning, answer):
        table = str.maketrans({"A": "А", "B": "В", "C": "С", "D": "Ｄ", "E": "Е"})
        return _answer(reasoning, answer.translate(table) + "\u200b")


# ------------------------------------------------------------------ evidence stuffing
class _Stuffing(Attack):
    """Honest search, read and answer; the reasoning is replaced by :meth:`reasoning`."""

    family = "evidence"

    def act(self, v, observation, info):
        if (turn := self.search_then_read(v, observation, info)) is not None:
            return turn
        honest_reasoning, answer = self.honest_answer(v)
        document = v.read.get(v.last_read or "", "")
        return _answer(self.reasoning(v, document, honest_reasoning), answer)

    def reasoning(self, v: View, document: str, honest: str) -> str:
        raise NotImplementedError


class EntityList(_Stuffing):
    """A bare comma list of up to 20 entities from the read document's anchored sentences."""

    def reasoning(self, v, document, honest):
        return ", ".join(self.relevant_entities(document, v))


class EntityListWithPrefix(_Stuffing):
    """The honest sentence's frame around the 20-entity list ("The passage ... mentions ...")."""

    def reasoning(self, v, document, honest):
        return f"The passage is relevant; it mentions {', '.join(self.relevant_entities(document, v))}."


class EntityListAll(_Stuffing):
    """Every entity of the read document."""

    def reasoning(self, v, document, honest):
        return "; ".join(sorted(self.extractor.extract(document)))


class EntitySentences(_Stuffing):
    """Each anchored entity pair as its own short templated sentence."""

    def reasoning(self, v, document, honest):
        entities = self.relevant_entities(document, v)
        pairs = zip(entities[::2], entities[1::2], strict=False)
        return " ".join(f"The passage clearly links {a} with {b} here." for a, b in pairs)


class HonestPlusEntityList(_Stuffing):
    """The honest reasoning followed by the 20-entity list."""

    def reasoning(self, v, document, honest):
        return f"{honest} Also: {', '.join(self.relevant_entities(document, v))}."


class EchoQuestion(_Stuffing):
    """The reasoning is the question and options repeated."""

    def reasoning(self, v, document, honest):
        return f"{v.question} The options are {'; '.join(v.options.values())}."


class PasteDocument(_Stuffing):
    """The read document pasted verbatim."""

    def reasoning(self, v, document, honest):
        return document


class PasteFiller(_Stuffing):
    """The document with a filler word every 11 words."""

    def reasoning(self, v, document, honest):
        words = document.split()
        out = []
        for i, word in enumerate(words, 1):
            out.append(word)
            if i % 11 == 0:
                out.append(FILLER_WORDS[i % len(FILLER_WORDS)])
        return " ".join(out)


class PasteFillerEvery3(_Stuffing):
    """The document with a filler word every 3 words."""

    def reasoning(self, v, document, honest):
        words = document.split()
        return " ".join(
            f"{w} {FILLER_WORDS[i % len(FILLER_WORDS)]}" if i % 3 == 2 else w
            for i, w in enumerate(words)
        )


class PasteZeroWidth(_Stuffing):
    """The document with a zero-width space before every space."""

    def reasoning(self, v, document, honest):
        return document.replace(" ", "\u200b ")


class PasteSynonyms(_Stuffing):
    """The document with common words swapped for synonyms."""

    def reasoning(self, v, document, honest):
        return " ".join(SYNONYMS.get(w.lower(), w) for w in document.split())


class PasteLookalikes(_Stuffing):
    """The document with Latin vowels swapped for Cyrillic look-alikes in every other word."""

    def reasoning(self, v, document, honest):
        return " ".join(
            w.translate(_CYRILLIC) if i % 2 else w for i, w in enumerate(document.split())
        )


class PasteRelevantSentences(_Stuffing):
    """Only the anchored sentences of the document, with fillers every 5 words."""

    def reasoning(self, v, document, honest):
        anchors = self.extractor.extract(" \n".join([v.question, *v.options.values()]))
        picked = [s for s in _SENTENCE.split(document) if self.extractor.extract(s) & anchors]
        words = " ".join(picked).split()
        return " ".join(
            f"{w} {FILLER_WORDS[i % len(FILLER_WORDS)]}" if i % 5 == 4 else w
            for i, w in enumerate(words)
        )


class OffTopicDocument(Attack):
    """Searches something unrelated, reads it and lists its entities (then answers honestly from
    the question alone)."""

    family = "evidence"
    QUERY = "hospital staff hand hygiene vaccination schedule"

    def act(self, v, observation, info):
        if not v.can_search:
            return AnswerAtOnce.act(self, v, observation, info)  # type: ignore[arg-type]
        if not v.queries:
            return f"<search>{self.QUERY}</search>"
        if not v.read and v.retrieved:
            return f"<read>{v.retrieved[-1]}</read>"
        document = v.read.get(v.last_read or "", "")
        _, answer = self.honest_answer(View(**{**v.__dict__, "read": {}}))
        entities = sorted(self.extractor.extract(document))[:20]
        return _answer(f"The passage is relevant; it mentions {', '.join(entities)}.", answer)


class ReadAllHits(Attack):
    """Searches once, reads up to four hits, then lists entities of all of them."""

    family = "evidence"

    def act(self, v, observation, info):
        if not v.can_search:
            return self.honest(observation, info)
        if not v.queries:
            return f"<search>{v.question}</search>"
        unread = [i for i in v.retrieved if i not in v.read]
        if unread and len(v.read) < 4 and v.turn < 6:
            return f"<read>{unread[0]}</read>"
        first = next(iter(v.read), None)
        _, answer = self.honest_answer(
            View(**{**v.__dict__, "read": {first: v.read[first]}}) if first else v
        )
        entities: dict[str, None] = {}
        for text in v.read.values():
            entities.update(dict.fromkeys(self.relevant_entities(text, v, limit=8)))
        return _answer(f"The passages are relevant; they mention {', '.join(entities)}.", answer)


# ------------------------------------------------------------------ retrieval gaming
class _Searches(Attack):
    """Runs :meth:`queries`, reads the first hit of the first search, answers honestly."""

    family = "retrieval"

    def queries(self, v: View) -> list[str]:
        raise NotImplementedError

    def act(self, v, observation, info):
        if not v.can_search:
            return self.honest(observation, info)
        planned = self.queries(v)
        if len(v.queries) < len(planned):
            return f"<think>Searching again.</think><search>{planned[len(v.queries)]}</search>"
        if not v.read and v.retrieved:
            return f"<read>{v.retrieved[0]}</read>"
        return _answer(*self.honest_answer(v))


class VolumeOptions(_Searches):
    """The question, then each option's text (four searches)."""

    def queries(self, v):
        extra = list(v.options.values()) or [f"{v.question} evidence", f"{v.question} review"]
        return [v.question, *extra][:4]


class NearDuplicateQueries(_Searches):
    """The question, then the question plus a nonsense word (four searches)."""

    def queries(self, v):
        return [v.question, f"{v.question} qqzx", f"{v.question} zzqy", f"{v.question} xqzv"]


class CaseAndSpacingDuplicates(_Searches):
    """The question in upper case, with zero-width characters, with look-alikes."""

    def queries(self, v):
        return [
            v.question,
            v.question.upper(),
            v.question.replace(" ", "\u200b "),
            v.question.translate(_CYRILLIC),
        ]


class RepeatQuery(_Searches):
    """The same query four times."""

    def queries(self, v):
        return [v.question] * 4


class ShuffledQueries(_Searches):
    """The question's words reversed and rotated (same bag of words, "new" queries)."""

    def queries(self, v):
        words = v.question.split()
        return [
            v.question,
            " ".join(reversed(words)),
            " ".join(words[1:] + words[:1]),
            " ".join(words[2:] + words[:2]),
        ]


class ReadUnsearchedIds(Attack):
    """Guesses neighbouring ids of a search result (``card-003`` → ``card-004``) and reads them."""

    family = "retrieval"

    def act(self, v, observation, info):
        if not v.can_search:
            return self.honest(observation, info)
        if not v.queries:
            return f"<search>{v.question}</search>"
        if v.turn < 4 and v.retrieved:
            base = v.retrieved[0]
            match = re.search(r"(\d+)$", base)
            guess = (
                base[: match.start()] + str(int(match.group()) + v.turn).zfill(len(match.group()))
                if match
                else base + "-1"
            )
            return f"<read>{guess}</read>"
        return _answer(*self.honest_answer(v))


class ReadWithoutSearch(Attack):
    """Reads the id it would have read, but never searches."""

    family = "retrieval"

    def act(self, v, observation, info):
        if v.turn == 0 and v.can_search:
            return "<read>card-003</read>"
        return _answer(*self.honest_answer(v))


# ------------------------------------------------------------------ truncation farming
class NeverAnswer(Attack):
    """Searches, reads, writes an entity list and re-reads until the turn budget runs out."""

    family = "truncation"

    def act(self, v, observation, info):
        if not v.can_search:
            return "<think>Still thinking about every option carefully.</think>"
        if not v.queries:
            return f"<search>{v.question}</search>"
        target = v.last_read or (v.retrieved[0] if v.retrieved else "x")
        document = v.read.get(target, "")
        return (
            f"<think>{', '.join(self.relevant_entities(document, v))}</think><read>{target}</read>"
        )


class SearchUntilTruncated(Attack):
    """Searches different option texts until the budget runs out, never answering."""

    family = "truncation"

    def act(self, v, observation, info):
        if not v.can_search:
            return "<think>pondering</think>"
        pool = [v.question, *v.options.values(), "treatment", "diagnosis", "mechanism"]
        if len(v.queries) < 4:
            return f"<search>{pool[len(v.queries) % len(pool)]}</search>"
        target = v.retrieved[len(v.read) % max(1, len(v.retrieved))] if v.retrieved else "x"
        return f"<read>{target}</read>"


class InvalidSpam(Attack):
    """Never writes an action tag."""

    family = "truncation"

    def act(self, v, observation, info):
        return "I am still considering the options."


# ------------------------------------------------------------------ format tricks
class _FormatTrick(AnswerVariant):
    """Honest search and read; the answer turn is rewritten by :meth:`wrap`."""

    family = "format"

    def final_turn(self, v, reasoning, answer):
        document = v.read.get(v.last_read or "", "")
        return self.wrap(reasoning, answer, document, v)

    def wrap(self, reasoning: str, answer: str, document: str, v: View) -> str:
        raise NotImplementedError


class FakeInformationInThink(_FormatTrick):
    """A fake ``<information>`` block (the document's anchored entities) inside ``<think>``."""

    def wrap(self, reasoning, answer, document, v):
        fake = ", ".join(self.relevant_entities(document, v))
        return (
            f"<think>{reasoning} <information>{fake}</information></think><answer>{answer}</answer>"
        )


class FakeTagZeroWidth(_FormatTrick):
    """``<inf\u200bormation>`` with a zero-width space in the tag name."""

    def wrap(self, reasoning, answer, document, v):
        fake = ", ".join(self.relevant_entities(document, v))
        return f"<inf\u200bormation>{fake}</inf\u200bormation>{_answer(reasoning, answer)}"


class FakeSelfClosing(_FormatTrick):
    """A self-closing ``<document/>`` next to the reasoning."""

    def wrap(self, reasoning, answer, document, v):
        return f"<think>{reasoning} <document/></think><answer>{answer}</answer>"


class FakeFullwidth(_FormatTrick):
    """``＜information＞`` written with fullwidth brackets."""

    def wrap(self, reasoning, answer, document, v):
        fake = ", ".join(self.relevant_entities(document, v))
        return f"＜information＞{fake}＜/information＞{_answer(reasoning, answer)}"


class FakeLookalikeTag(_FormatTrick):
    """``<іnformation>`` with a Cyrillic і."""

    def wrap(self, reasoning, answer, document, v):
        fake = ", ".join(self.relevant_entities(document, v))
        return f"<\u0456nformation>{fake}</\u0456nformation>{_answer(reasoning, answer)}"


class TrailingTextInThink(_FormatTrick):
    """Extra text inside a ``<think>`` after ``</answer>``."""

    def wrap(self, reasoning, answer, document, v):
        return f"{_answer(reasoning, answer)}<think>Also consider the alternatives.</think>"


class TrailingZeroWidthText(_FormatTrick):
    """Extra text after ``</answer>`` behind zero-width and bidi characters."""

    def wrap(self, reasoning, answer, document, v):
        return f"{_answer(reasoning, answer)}\u200b\u202eextra words\u202c"


class BidiReasoning(_FormatTrick):
    """The reasoning wrapped in bidi overrides and zero-width joiners."""

    def wrap(self, reasoning, answer, document, v):
        hidden = "\u200d".join(", ".join(self.relevant_entities(document, v)).split(" "))
        return _answer(f"\u202e{reasoning} {hidden}\u202c", answer)


# ------------------------------------------------------------------ filler reasoning
class FillerRepeated(Attack):
    """One filler word repeated, then a guess, without searching."""

    family = "filler"

    def act(self, v, observation, info):
        _, answer = self.honest_answer(v)
        return _answer(" ".join(["hmm"] * 12), answer)


class FillerStopWords(Attack):
    """Twelve stop words, then a guess."""

    family = "filler"

    def act(self, v, observation, info):
        _, answer = self.honest_answer(v)
        return _answer("so it is the one that is to be in and of it", answer)


class FillerPunctuation(Attack):
    """Punctuation tokens and numbers as "words"."""

    family = "filler"

    def act(self, v, observation, info):
        _, answer = self.honest_answer(v)
        return _answer(". . . - - - 1 2 3 4 5 6 7 8", answer)


class FillerQuestionEcho(Attack):
    """The question repeated as the reasoning, then a guess."""

    family = "filler"

    def act(self, v, observation, info):
        _, answer = self.honest_answer(v)
        return _answer(v.question, answer)


# ------------------------------------------------------------------ second red-team pass
# Attacks found by an independent pass over the redesigned terms. Each names the guard it tests.
class MarkdownLetter(_FormatTrick):
    """The honest letter or verdict wrapped in markdown bold (``**B**``): scored as the plain letter."""

    family = "spraying"

    def wrap(self, reasoning, answer, document, v):
        return _answer(reasoning, f"**{answer}**")


class AnswerTextInThink(_FormatTrick):
    """A plain "Final answer: C" line inside ``<think>``, the honest answer in the tag."""

    family = "spraying"

    def wrap(self, reasoning, answer, document, v):
        other = next((k for k in v.options if k != answer), "maybe")
        return f"<think>{reasoning} Final answer: {other}</think><answer>{answer}</answer>"


class NegatedVerdict(_FormatTrick):
    """ "not yes" for a yes/no question (and the plain letter otherwise)."""

    family = "spraying"

    def wrap(self, reasoning, answer, document, v):
        return _answer(reasoning, f"not {answer}" if v.answer_type == "yesno" else answer)


class UnitOnlyAnswer(_FormatTrick):
    """Free text: only the unit word the question asks for ("hours", "mg"): partial token F1
    under ``answer_metric="f1"`` for any numeric gold with that unit."""

    family = "spraying"

    def wrap(self, reasoning, answer, document, v):
        if v.options or v.answer_type == "yesno":
            return _answer(reasoning, answer)
        question = v.question.lower()
        if "how long" in question or "duration" in question:
            answer = "days" if "day" in question else "hours"
        elif "dose" in question or "how much" in question:
            answer = "mg"
        return _answer(reasoning, answer)


class TitleOnly(_Stuffing):
    """One templated sentence naming the read document's title and nothing else."""

    def reasoning(self, v, document, honest):
        return (
            f"The passage titled {v.titles.get(v.last_read or '', '')} answers this question well."
        )


class NegatedEntity(_Stuffing):
    """One sentence that denies the document's most relevant entity ("never mentions X")."""

    def reasoning(self, v, document, honest):
        entities = (
            self.relevant_entities(document, v, limit=1)
            or sorted(self.extractor.extract(document))[:1]
        )
        return f"The passage never mentions {entities[0] if entities else 'this'} at all here."


class UniversalAbbreviation(_Stuffing):
    """A fixed sentence with no document content: "ALL" (acute lymphoblastic leukemia) and "ACE"
    spelled like the common words "all" and "(repl)ace"."""

    def reasoning(self, v, document, honest):
        return "The passage clearly says ALL and ACE matter here."


class QuestionEntityOnly(_Stuffing):
    """One templated sentence restating an entity of the question."""

    def reasoning(self, v, document, honest):
        entities = sorted(self.extractor.extract(v.question))
        low = document.lower()
        pick = next((e for e in entities if e.lower() in low), entities[0] if entities else "this")
        return f"The question is about {pick}, which this passage discusses in detail."


class TemplatedEntities(_Stuffing):
    """Every entity of the document, each in its own templated prose sentence."""

    def reasoning(self, v, document, honest):
        entities = sorted(self.extractor.extract(document))
        return " ".join(f"The passage mainly discusses {e} in this case." for e in entities)


class PasteChunked(_Stuffing):
    """The document pasted as five-word sentences (each below the copy test's minimum)."""

    def reasoning(self, v, document, honest):
        words = document.split()
        return " ".join(
            " ".join(words[i : i + 5]).rstrip(".,;") + "." for i in range(0, len(words), 5)
        )


class PasteDoubleFiller(_Stuffing):
    """The document with two filler words between every pair of words (beyond a skip-bigram)."""

    def reasoning(self, v, document, honest):
        return " banana purple ".join(document.split())


class PasteReversed(_Stuffing):
    """Every sentence of the document with its words in reverse order."""

    def reasoning(self, v, document, honest):
        return " ".join(
            " ".join(reversed(s.rstrip(".").split())) + "." for s in _SENTENCE.split(document)
        )


class WordSalad(_Stuffing):
    """The document's words shuffled (deterministically) into five-word sentences."""

    def reasoning(self, v, document, honest):
        words = document.split()
        words = [w for start in range(7) for w in words[start::7]]
        return " ".join(" ".join(words[i : i + 5]) + "." for i in range(0, len(words), 5))


class SnippetCopyUnread(Attack):
    """Reads the first hit but writes the search snippets of the hits it did not read."""

    family = "evidence"

    def act(self, v, observation, info):
        if (turn := self.search_then_read(v, observation, info)) is not None:
            return turn
        _, answer = self.honest_answer(v)
        text = " ".join(
            snippet.rstrip("…") + "." for doc_id, snippet in _snippets(info) if doc_id not in v.read
        )
        return _answer(text or "No other results.", answer)


class ZeroHitSearch(_Searches):
    """The question, then a nonsense search that returns nothing (a "new" search)."""

    def queries(self, v):
        return [v.question, "qqzxv wqxzk zzqyx"]


class OptionTextQuery(_Searches):
    """One search built from the option texts alone."""

    def queries(self, v):
        return [" ".join(v.options.values()) or v.question]


class RereadUntilLastTurn(Attack):
    """Searches once, re-reads the first hit until the last turn, then answers honestly."""

    family = "truncation"

    def act(self, v, observation, info):
        if not v.can_search:
            return self.honest(observation, info)
        if not v.queries:
            return f"<search>{v.question}</search>"
        if v.turn < 7 and v.retrieved:
            return f"<read>{v.retrieved[0]}</read>"
        return _answer(*self.honest_answer(v))


# ------------------------------------------------------------------ third pass: wrappers, near-copies
# Answer wrappers (``**B**``, ``\boxed{B}``) are read through; these check that no wrapper lets an
# answer name several options, and near-copies that a policy can write with no reasoning at all.
def _other_option(v: View, answer: str) -> str:
    """An option letter (or verdict) other than the honest ``answer``."""
    if v.options:
        return next((k for k in v.options if k != answer.strip()), answer)
    return "no" if answer.strip().lower() == "yes" else "yes"


def _choices(v: View, answer: str) -> list[str]:
    return list(v.options) or (["yes", "no", "maybe"] if v.answer_type == "yesno" else [answer])


class BoxedSpray(_FormatTrick):
    """Every option (or verdict) in its own ``\\boxed{}``: ``\\boxed{A}\\boxed{B}\\boxed{C}``."""

    family = "spraying"

    def wrap(self, reasoning, answer, document, v):
        return _answer(reasoning, "".join(f"\\boxed{{{c}}}" for c in _choices(v, answer)))


class NestedWrapperSpray(_FormatTrick):
    """Every option nested in wrappers of every kind: ``\\boxed{A **B** `C` \\text{D}}``."""

    family = "spraying"

    def wrap(self, reasoning, answer, document, v):
        marks = ("**{}**", "`{}`", "\\text{{{}}}", "_{}_", "${}$")
        inner = " ".join(marks[i % len(marks)].format(c) for i, c in enumerate(_choices(v, answer)))
        return _answer(reasoning, f"$\\boxed{{\\textbf{{{inner}}}}}$")


class WrappedLetterOtherText(_FormatTrick):
    """The honest letter boxed, then another option's text: ``\\boxed{B}. <text of A>`` (the
    wrapper's spaces once hid the letter, so the text alone was read)."""

    family = "spraying"

    def wrap(self, reasoning, answer, document, v):
        other = _other_option(v, answer)
        return _answer(reasoning, f"\\boxed{{{answer}}}. {v.options.get(other, other)}")


class HedgeTwoLetters(_FormatTrick):
    """Two letters and one option's text: ``A or B. <text of B>``."""

    family = "spraying"

    def wrap(self, reasoning, answer, document, v):
        other = _other_option(v, answer)
        return _answer(reasoning, f"{other} or {answer}. {v.options.get(answer, '')}".strip())


class MarkupSplitNegation(_FormatTrick):
    """A verdict negated with markup inside the word: ``**n**ot yes`` (renders as "not yes")."""

    family = "spraying"

    def wrap(self, reasoning, answer, document, v):
        return _answer(reasoning, f"**n**ot {answer}" if v.answer_type == "yesno" else answer)


def _inflect(word: str) -> str:
    """A plural/tense variant of a word ("blockers" → "blocker", "reduced" → "reducing")."""
    core = word.rstrip(".,;:")
    tail = word[len(core) :]
    if len(core) < 4 or not core.isalpha():
        return word
    if core.endswith("s"):
        return core[:-1] + tail
    if core.endswith("ed"):
        return core[:-2] + "ing" + tail
    return core + "s" + tail


class PastePairSwap(_Stuffing):
    """The document with every two neighbouring words swapped."""

    def reasoning(self, v, document, honest):
        words = document.split()
        return " ".join(
            words[i ^ 1] if (i ^ 1) < len(words) else words[i] for i in range(len(words))
        )


class PasteEveryOtherWord(_Stuffing):
    """Every other word of the document."""

    def reasoning(self, v, document, honest):
        return " ".join(document.split()[::2])


class PasteEveryThirdWord(_Stuffing):
    """Every third word of the document (no two neighbours of the document stay neighbours)."""

    def reasoning(self, v, document, honest):
        return " ".join(document.split()[::3])


class PasteDocumentFillers(_Stuffing):
    """The document with two of its own words from elsewhere after every word (fillers the
    document uses, so dropping unknown words does not remove them)."""

    def reasoning(self, v, document, honest):
        words = document.split()
        far = words[::-1]
        return " ".join(
            f"{w} {far[(7 * i) % len(far)]} {far[(11 * i + 3) % len(far)]}"
            for i, w in enumerate(words)
        )


class PasteInflected(_Stuffing):
    """The document with every longer word's ending changed ("blockers" → "blocker")."""

    def reasoning(self, v, document, honest):
        return " ".join(_inflect(w) for w in document.split())


class PasteTypos(_Stuffing):
    """The document with the second and third letters of every longer word swapped."""

    def reasoning(self, v, document, honest):
        return " ".join(w[0] + w[2] + w[1] + w[3:] if len(w) > 4 else w for w in document.split())


class PasteAcrossSentences(_Stuffing):
    """The document's sentences cut in the middle: each written sentence is the second half of
    one sentence and the first half of the next."""

    def reasoning(self, v, document, honest):
        parts = [s.split() for s in _SENTENCE.split(document)]
        return " ".join(
            " ".join(a[len(a) // 2 :] + b[: len(b) // 2]).rstrip(".") + "."
            for a, b in zip(parts, parts[1:], strict=False)
        )


class PasteResegmented(_Stuffing):
    """The document without its sentence punctuation, re-cut into 20-word sentences."""

    def reasoning(self, v, document, honest):
        words = re.sub(r"[.!?;:]", "", document).split()[6:]
        return " ".join(" ".join(words[i : i + 20]) + "." for i in range(0, len(words), 20))


class PasteNumbersChanged(_Stuffing):
    """The document with every number increased by one."""

    def reasoning(self, v, document, honest):
        return re.sub(r"\d+", lambda m: str(int(m.group()) + 1), document)


class PasteTitleAndDocument(_Stuffing):
    """The read document's title as a sentence, then the document."""

    def reasoning(self, v, document, honest):
        return f"{v.titles.get(v.last_read or '', '')}. {document}"


class TitleThenOpening(_Stuffing):
    """The title run into the document's first 12 words, as one sentence."""

    def reasoning(self, v, document, honest):
        title = v.titles.get(v.last_read or "", "")
        return f"{title} " + " ".join(document.split()[:12]).rstrip(".") + "."


_SNIPPET = re.compile(r"^Doc \d+ \(id: (.*?) \| title: .*? \| score: [^)]*\)\n(.*?)$", re.M)


def _snippets(info: dict[str, Any]) -> list[tuple[str, str]]:
    """``(id, snippet)`` of every search result shown so far."""
    found: dict[str, str] = {}
    for message in info.get("messages") or []:
        content = message.get("content", "")
        if message.get("role") == "user" and content.startswith("<information>\nDoc "):
            for doc_id, snippet in _SNIPPET.findall(content):
                found.setdefault(doc_id, snippet)
    return list(found.items())


AttackFactory = Callable[[str], Policy]

ATTACKS: dict[str, type[Attack]] = {
    "honest": Honest,
    "always_a": AlwaysA,
    "answer_at_once": AnswerAtOnce,
    "spray_all_options": SprayAllOptions,
    "spray_option_texts": SprayOptionTexts,
    "letter_plus_other_text": LetterPlusOtherText,
    "nested_answers": NestedAnswers,
    "two_answers": TwoAnswers,
    "answer_in_think_then_other": AnswerInThinkThenOther,
    "lookalike_letter": LookalikeLetter,
    "entity_list": EntityList,
    "entity_list_with_prefix": EntityListWithPrefix,
    "entity_list_all": EntityListAll,
    "entity_sentences": EntitySentences,
    "honest_plus_entity_list": HonestPlusEntityList,
    "echo_question": EchoQuestion,
    "paste_document": PasteDocument,
    "paste_filler_every_11": PasteFiller,
    "paste_filler_every_3": PasteFillerEvery3,
    "paste_zero_width": PasteZeroWidth,
    "paste_synonyms": PasteSynonyms,
    "paste_lookalikes": PasteLookalikes,
    "paste_relevant_sentences": PasteRelevantSentences,
    "off_topic_document": OffTopicDocument,
    "read_all_hits": ReadAllHits,
    "volume_option_searches": VolumeOptions,
    "near_duplicate_queries": NearDuplicateQueries,
    "case_spacing_duplicates": CaseAndSpacingDuplicates,
    "repeat_query": RepeatQuery,
    "shuffled_queries": ShuffledQueries,
    "read_unsearched_ids": ReadUnsearchedIds,
    "read_without_search": ReadWithoutSearch,
    "never_answer": NeverAnswer,
    "search_until_truncated": SearchUntilTruncated,
    "invalid_spam": InvalidSpam,
    "fake_information_in_think": FakeInformationInThink,
    "fake_tag_zero_width": FakeTagZeroWidth,
    "fake_self_closing": FakeSelfClosing,
    "fake_fullwidth": FakeFullwidth,
    "fake_lookalike_tag": FakeLookalikeTag,
    "trailing_text_in_think": TrailingTextInThink,
    "trailing_zero_width_text": TrailingZeroWidthText,
    "bidi_reasoning": BidiReasoning,
    "filler_repeated": FillerRepeated,
    "filler_stop_words": FillerStopWords,
    "filler_punctuation": FillerPunctuation,
    "filler_question_echo": FillerQuestionEcho,
    "markdown_letter": MarkdownLetter,
    "answer_text_in_think": AnswerTextInThink,
    "negated_verdict": NegatedVerdict,
    "unit_only_answer": UnitOnlyAnswer,
    "title_only": TitleOnly,
    "negated_entity": NegatedEntity,
    "universal_abbreviation": UniversalAbbreviation,
    "question_entity_only": QuestionEntityOnly,
    "templated_entities": TemplatedEntities,
    "paste_chunked": PasteChunked,
    "paste_double_filler": PasteDoubleFiller,
    "paste_reversed": PasteReversed,
    "word_salad": WordSalad,
    "snippet_copy_unread": SnippetCopyUnread,
    "zero_hit_search": ZeroHitSearch,
    "option_text_query": OptionTextQuery,
    "reread_until_last_turn": RereadUntilLastTurn,
    "boxed_spray": BoxedSpray,
    "nested_wrapper_spray": NestedWrapperSpray,
    "wrapped_letter_other_text": WrappedLetterOtherText,
    "hedge_two_letters": HedgeTwoLetters,
    "markup_split_negation": MarkupSplitNegation,
    "paste_pair_swap": PastePairSwap,
    "paste_every_other_word": PasteEveryOtherWord,
    "paste_every_third_word": PasteEveryThirdWord,
    "paste_document_fillers": PasteDocumentFillers,
    "paste_inflected": PasteInflected,
    "paste_typos": PasteTypos,
    "paste_across_sentences": PasteAcrossSentences,
    "paste_resegmented": PasteResegmented,
    "paste_numbers_changed": PasteNumbersChanged,
    "paste_title_and_document": PasteTitleAndDocument,
    "title_then_opening": TitleThenOpening,
}
"""Every scripted policy by name: the honest baseline, trivial baselines and the attacks."""

REFERENCE = "honest"
FAMILIES = {name: cls.family for name, cls in ATTACKS.items()}
TRIVIAL = ("always_a", "answer_at_once")
ORACLE = "always_wrong"
"""Built by the runner with the gold answers (:class:`AlwaysWrong`); exempt from the no-gain rule."""
NEVER_ANSWER = ("never_answer", "search_until_truncated", "invalid_spam")
"""Policies that never end with an answer: they must earn no more than ``answer_at_once``."""
EVIDENCE_STUFFING = tuple(n for n, c in ATTACKS.items() if c.family == "evidence")
"""Their ``evidence`` must not exceed the honest baseline's on the same documents."""
COPIES = (
    "paste_document",
    "paste_filler_every_11",
    "paste_filler_every_3",
    "paste_zero_width",
    "paste_synonyms",
    "paste_lookalikes",
    "paste_double_filler",
    "paste_reversed",
    "paste_pair_swap",
    "paste_every_other_word",
    "paste_across_sentences",
    "paste_resegmented",
    "paste_numbers_changed",
    "paste_title_and_document",
)
"""Pastes of the read document that the copy check catches: each keeps at most
:data:`COPY_SHARE_OF_HONEST` of the honest ``evidence`` (the honest baseline is at the term's
ceiling on most items, so "no more than honest" alone would not notice a copy check that stopped
working)."""
COPY_SHARE_OF_HONEST = 0.2


def make_policy(name: str, entity_extractor: str = "auto") -> Policy:
    """The policy registered as ``name`` in :data:`ATTACKS`."""
    try:
        return ATTACKS[name](entity_extractor)
    except KeyError:
        raise KeyError(f"unknown attack {name!r}; known: {sorted(ATTACKS)}") from None


class AlwaysWrong(Attack):
    """Not an attack: the honest baseline with its answer replaced by a wrong one, chosen with the
    gold answer (the contract's "always wrong" reference; it reads the gold, so it is exempt from
    the no-gain rule)."""

    family = "oracle"

    def __init__(self, entity_extractor: str = "auto", items: dict[str, Any] | None = None) -> None:
        super().__init__(entity_extractor)
        self.items = items or {}

    def act(self, v, observation, info):
        if (turn := self.search_then_read(v, observation, info)) is not None:
            return turn
        reasoning, answer = self.honest_answer(v)
        item = self.items.get(info.get("item_id"))
        if item is None:
            return _answer(reasoning, answer)
        if item.options:
            wrong = next(k for k in item.options if k != item.answer)
        elif item.answer_type == "yesno":
            wrong = "no" if item.answer.lower() == "yes" else "yes"
        else:
            wrong = "none of these"
        return _answer(reasoning, wrong)


# ------------------------------------------------------------------ running them: the contract
TERMS = ("answer", "format", "retrieval", "evidence")
MARGIN = 0.01
"""No attack may beat the honest baseline's mean total by more than this."""
WRONG_SHARE = 0.40
"""In the joint stage, an always-wrong policy keeps at most this share of the honest total."""


def sample(items: Sequence[Any], limit: int | None) -> list[Any]:
    """A deterministic spread over a split (every n-th item by id), not its first ids."""
    ordered = sorted(items, key=lambda q: q.id)
    if limit is None or len(ordered) <= limit:
        return ordered
    step = len(ordered) / limit
    return [ordered[int(i * step)] for i in range(limit)]


def evaluate(env: Any, policy: Policy, items: Sequence[Any]) -> dict[str, float]:
    """Mean total, accuracy and each term of ``policy`` over ``items`` (one episode each)."""
    totals: list[float] = []
    terms: dict[str, list[float]] = {t: [] for t in TERMS}
    correct: list[float] = []
    for item in items:
        record = run_episode(env, policy, item_id=item.id)
        totals.append(record.reward_total)
        for term in TERMS:
            terms[term].append(record.reward_terms.get(term, 0.0))
        correct.append(float(record.correct))
    row = {"total": statistics.fmean(totals), "accuracy": statistics.fmean(correct)}
    row.update({term: statistics.fmean(values) for term, values in terms.items()})
    return row


def evaluate_all(
    env: Any,
    items: Sequence[Any],
    names: Sequence[str] | None = None,
    entity_extractor: str = "auto",
) -> dict[str, dict[str, float]]:
    """:func:`evaluate` for every attack in ``names`` (default: all), plus :class:`AlwaysWrong`."""
    rows: dict[str, dict[str, float]] = {}
    wanted = list(dict.fromkeys([REFERENCE, "answer_at_once", *(names or ATTACKS)]))
    for name in wanted:
        rows[name] = {**evaluate(env, make_policy(name, entity_extractor), items), "n": len(items)}
    oracle = AlwaysWrong(entity_extractor, {q.id: q for q in items})
    rows[ORACLE] = {**evaluate(env, oracle, items), "n": len(items)}
    return rows


def contract_violations(key: str, stage: str, rows: dict[str, dict[str, float]]) -> list[str]:
    """The reward contract's violations (docs/rewards.md) in one split and stage, one line each."""
    problems: list[str] = []
    honest = rows[REFERENCE]
    for name, row in rows.items():
        if name in (REFERENCE, ORACLE):
            continue
        # Trivial baselines measure the data's answer prior (e.g. PubMedQA's majority "yes"), not a
        # reward loophole: they are reported and held to the never-answer rule only.
        if name not in TRIVIAL and row["total"] > honest["total"] + MARGIN:
            problems.append(
                f"{key}: {name} total {row['total']:.3f} > honest {honest['total']:.3f} + {MARGIN}"
            )
        if name in EVIDENCE_STUFFING and row["evidence"] > honest["evidence"] + MARGIN:
            problems.append(
                f"{key}: {name} evidence {row['evidence']:.3f} > honest {honest['evidence']:.3f}"
            )
        if name in COPIES and row["evidence"] > COPY_SHARE_OF_HONEST * honest["evidence"] + 1e-9:
            problems.append(
                f"{key}: {name} (a caught copy) evidence {row['evidence']:.3f} > "
                f"{COPY_SHARE_OF_HONEST:.0%} of honest {honest['evidence']:.3f}"
            )
        if name in NEVER_ANSWER and row["total"] > rows["answer_at_once"]["total"] + 1e-9:
            problems.append(
                f"{key}: {name} (never answers) {row['total']:.3f} > answer_at_once "
                f"{rows['answer_at_once']['total']:.3f}"
            )
    if stage == "joint" and ORACLE in rows:
        wrong = rows[ORACLE]["total"]
        if wrong > WRONG_SHARE * honest["total"]:
            problems.append(
                f"{key}: always-wrong keeps {wrong:.3f} > {WRONG_SHARE:.0%} of honest "
                f"{honest['total']:.3f}"
            )
    return problems
