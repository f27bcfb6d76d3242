"""``evidence``: is the reasoning grounded in what the agent read, and relevant to the question?

The documents the term uses are the ones the agent *read* after a search returned them — only the
gold evidence documents among them when the item names gold ids. Their *support* is the entities of
their sentences that mention an anchor (an entity of the question, its options or the gold answer),
plus the documents' own annotations (PubMedQA's MeSH headings) and, for gold documents, every
entity of their sentences and title.

The reasoning is judged sentence by sentence (:func:`medr3_env.rewards.guards.sentence_spans`), on
cleaned text (:func:`medr3_env.rewards.guards.clean`). A sentence's entities count as *matched* when
they are supported, the sentence is prose (at least ``MIN_PROSE_WORDS`` content words outside
entity names: a bare entity list is not) and it is not a copy of a document
(:func:`medr3_env.rewards.guards.copied`: robust to fillers, synonyms, zero-width characters and
look-alike letters) or of the question and its options (echoing the question is not evidence of
reading). Every entity of the reasoning counts in the precision's denominator::

    precision = |matched| / |all reasoning entities|
    coverage  = min(1, |matched| / min(COVERAGE_ENTITIES, |support|))
    reads     = min(1, max(1, gold ids) / distinct documents read)²
    evidence  = precision × coverage × reads × answer score

so stuffing, copying and off-topic documents lower the score, one grounded fact saturates it (with
``COVERAGE_ENTITIES = 1`` coverage is 0 or 1, so ``evidence_metric`` "f1" and "precision" give
the same value; "recall" replaces coverage by |matched| / |support|, which rewards naming more of
the support and is not held to the reward contract), and
a wrong or missing answer earns nothing (process terms cannot carry a wrong answer). Reasoning
with any sentence copied from a document scores 0: pasting is never evidence of reading.
:func:`match_evidence` is the one function that decides which entities count; the viewer
highlights exactly its ``matched`` set.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass
from functools import lru_cache

from medr3_env.corpora.records import QAItem
from medr3_env.entities import EntityExtractor, load_extractor
from medr3_env.lexicons import heading_variants, is_generic_heading
from medr3_env.rewards import guards
from medr3_env.rewards.answer import answer_score
from medr3_env.rewards.context import EpisodeContext
from medr3_env.rewards.registry import register_reward
from medr3_env.search.base import IndexedDocument
from medr3_env.term_matcher import TermMatcher, TermTable
from medr3_env.text_norm import is_abbreviation

MIN_PROSE_WORDS = 3
"""Content words outside entity names that make a sentence prose rather than a list."""
COVERAGE_ENTITIES = 1
"""Matched entities that saturate coverage: one grounded fact is enough, more earn nothing (so
listing more entities never pays; precision then decides)."""
COPY_SPAN_WORDS = guards.COPY_MIN_WORDS

_SPACES = re.compile(r"\s+")

Span = tuple[int, int, str]


@dataclass(frozen=True)
class EvidenceMatch:
    """What the evidence term counted in one episode."""

    doc_ids: tuple[str, ...]
    """The documents it used (read after being retrieved; gold ones only when gold ids exist)."""
    support: frozenset[str]
    """Entities those documents support for this question."""
    agent: frozenset[str]
    """Entities of the reasoning."""
    matched: frozenset[str]
    """Supported entities of prose sentences that are not copies: what earns reward."""
    copied_sentences: int = 0
    list_sentences: int = 0

    @property
    def precision(self) -> float:
        return len(self.matched) / len(self.agent) if self.agent else 0.0

    @property
    def coverage(self) -> float:
        needed = min(COVERAGE_ENTITIES, len(self.support))
        return min(1.0, len(self.matched) / needed) if needed else 0.0

    @property
    def score(self) -> float:
        """``precision × coverage``; 0 when any sentence is a copy of a document (before the
        answer gate)."""
        return 0.0 if self.copied_sentences else self.precision * self.coverage


def annotation_terms(documents: list[IndexedDocument]) -> tuple[str, ...]:
    """The documents' own entity annotations, minus demographic and study-design headings."""
    found = {a.strip() for doc in documents for a in doc.annotations}
    return tuple(sorted(a for a in found if a and not is_generic_heading(a)))


@lru_cache(maxsize=2048)
def _annotation_matcher(pairs: tuple[tuple[str, str], ...]) -> TermMatcher:
    return TermMatcher(TermTable(lower=dict(pairs)))


def annotation_spans(text: str, terms: tuple[str, ...], extractor: EntityExtractor) -> list[Span]:
    """Spans of the annotation concepts (as ``extractor`` names them) that ``text`` mentions."""
    if not terms:
        return []
    return list(_annotation_matcher(_annotation_pairs(extractor, terms)).find(text))


_PAIRS: dict[tuple[str, tuple[str, ...]], tuple[tuple[str, str], ...]] = {}


def _annotation_pairs(
    extractor: EntityExtractor, terms: tuple[str, ...]
) -> tuple[tuple[str, str], ...]:
    """``(lower-cased form, concept)`` of every variant of ``terms``, cached by extractor name and
    terms (a document's annotations are fixed)."""
    key = (_extractor_name(extractor), terms)
    found = _PAIRS.get(key)
    if found is None:
        if len(_PAIRS) > 4_096:
            _PAIRS.clear()
        found = _PAIRS[key] = tuple(
            sorted(
                (form.lower(), extractor.canonical(term))
                for term in terms
                for form in heading_variants(term)
            )
        )
    return found


def _extractor_name(extractor: EntityExtractor) -> str:
    return getattr(extractor, "name", type(extractor).__name__)


_ANCHORS: dict[tuple[str, str], frozenset[str]] = {}


def _anchors(extractor: EntityExtractor, text: str) -> frozenset[str]:
    """The entities of a question's anchor text, cached by extractor name and text (a question
    is scored many times in training, its text never changes)."""
    key = (_extractor_name(extractor), text)
    found = _ANCHORS.get(key)
    if found is None:
        if len(_ANCHORS) > 16_384:
            _ANCHORS.clear()
        found = _ANCHORS[key] = frozenset(extractor.extract(guards.clean(text)))
    return found


@lru_cache(maxsize=16_384)
def _asked_source(text: str) -> guards.CopySource:
    """The question and its options as a copy source (echoing them is not evidence)."""
    return guards.copy_source(guards.content_words(text))


def annotation_entities(text: str, terms: tuple[str, ...], extractor: EntityExtractor) -> set[str]:
    """The annotation concepts (as ``extractor`` names them) that ``text`` mentions."""
    return {canonical for _, _, canonical in annotation_spans(text, terms, extractor)}


def entity_spans(extractor: EntityExtractor, text: str) -> list[Span]:
    """``(start, end, entity)`` spans of the entities ``extractor`` finds in ``text``."""
    spans_of = getattr(extractor, "extract_spans", None)
    if callable(spans_of):
        return sorted(spans_of(text))
    return []


def supported_entities(
    documents: list[IndexedDocument],
    anchors: set[str] | frozenset[str],
    annotations: set[str] | frozenset[str] = frozenset(),
    *,
    gold: bool = False,
) -> set[str]:
    """The entities the documents support for a question, plus their annotation concepts.

    Gold evidence documents (``gold=True``) support every entity of their sentences; other
    documents only the entities of sentences that mention an anchor, so an off-topic document
    supports nothing but its annotations.
    """
    supported: set[str] = set()
    for doc in documents:
        for sentence in doc.sentence_entities:
            if gold or anchors.intersection(sentence):
                supported.update(sentence)
    return supported | annotations


_TITLES: dict[tuple[str, str, str], frozenset[str]] = {}


def _title_entities(extractor: EntityExtractor, doc_id: str, title: str) -> frozenset[str]:
    """Entities of a document's title, cached by extractor and id (titles are short)."""
    key = (_extractor_name(extractor), doc_id, title)
    if key not in _TITLES:
        if len(_TITLES) > 16_384:
            _TITLES.clear()
        _TITLES[key] = frozenset(extractor.extract(guards.clean(title)))
    return _TITLES[key]


@lru_cache(maxsize=8192)
def _document_words(doc_id: str, title: str, content: str) -> tuple[str, str]:
    """A document's words, space-padded: folded, and cleaned with case kept (for abbreviations)."""
    del doc_id  # part of the cache key only
    text = f"{title}\n{content}"
    cased = " ".join(guards._words(guards.clean(text)))
    # On ASCII text folding is lower-casing, which keeps the words: fold the joined words once.
    folded = cased.lower() if text.isascii() else " ".join(guards._words(guards.fold(text)))
    return f" {folded} ", f" {cased} "


def _in_documents(surface: str, documents: list[IndexedDocument]) -> bool:
    """Whether the words of ``surface`` occur as whole words, in order, in one of ``documents``:
    folded, except abbreviations, which keep their case ("ALL" is not the word "all", and "ACE"
    is not the end of "replacement")."""
    surface = surface.strip()
    cased = is_abbreviation(surface)
    words = guards._words(guards.clean(surface) if cased else guards.fold(surface))
    phrase = " ".join(words)
    return len(phrase) > 2 and any(
        f" {phrase} " in _document_words(d.id, d.title, d.content)[cased] for d in documents
    )


def evidence_documents(ctx: EpisodeContext) -> list[IndexedDocument]:
    """The documents the evidence term uses: read after a search returned them, and gold ones
    only when the item names gold evidence ids. Reading an id no search returned earns nothing."""
    retrieved = set(ctx.retrieved_ids)
    gold = set(ctx.item.evidence_ids)
    ids = [i for i in ctx.read_ids if i in retrieved and (not gold or i in gold)]
    return [doc for doc in (ctx.documents.get(i) for i in ids) if doc is not None]


def _blank(sentence: str, spans: list[Span], offset: int) -> str:
    """``sentence`` with its entity spans (offsets relative to the text, sorted by start) blanked
    out."""
    parts: list[str] = []
    cursor = 0
    for start, end, _ in spans:
        begin, stop = max(cursor, start - offset), min(len(sentence), end - offset)
        if stop > begin:
            parts += (sentence[cursor:begin], " " * (stop - begin))
            cursor = stop
    parts.append(sentence[cursor:])
    return "".join(parts)


def match_evidence(
    extractor: EntityExtractor,
    item: QAItem,
    reasoning: str,
    documents: list[IndexedDocument],
    seen: list[IndexedDocument] | None = None,
) -> EvidenceMatch:
    """What the evidence term counts for ``reasoning`` against ``documents``.

    Args:
        extractor: the environment's entity extractor.
        item: the question (its question, options, gold answer and aliases give the anchors).
        reasoning: the agent's reasoning over its valid turns.
        documents: the documents the term uses (:func:`evidence_documents`).
        seen: every document the agent read, for copy detection; defaults to ``documents``.
    """
    if not documents:
        return EvidenceMatch((), frozenset(), frozenset(), frozenset())
    anchor_text = " \n".join(
        [item.question, *(item.options or {}).values(), item.answer_text, *item.aliases]
    )
    anchors = _anchors(extractor, anchor_text)
    terms = annotation_terms(documents)
    gold = bool(item.evidence_ids) and all(d.id in item.evidence_ids for d in documents)
    support = supported_entities(
        documents, anchors, {extractor.canonical(t) for t in terms}, gold=gold
    )
    for doc in documents:  # a gold document's title is part of what was read
        if gold:
            support |= _title_entities(extractor, doc.id, doc.title)
    text = guards.clean(reasoning)
    spans = sorted(entity_spans(extractor, text) + annotation_spans(text, terms, extractor))
    starts = [span[0] for span in spans]  # each sentence takes its slice: linear, not quadratic
    judged_sentences = []  # (start, sentence, entity spans, content words) of sentences with entities
    for start, end in guards.sentence_spans(text):
        inside = spans[bisect_left(starts, start) : bisect_left(starts, end)]
        if inside:
            sentence = text[start:end]
            judged_sentences.append((start, sentence, inside, guards.content_words(sentence)))
    # A document read for the first time gives only the word pairs these sentences can match
    # (guards.reasoning_copy_source). The question and options are sources too: echoing them is
    # not evidence of reading.
    used = {w for *_, words in judged_sentences if len(words) > COPY_SPAN_WORDS for w in words}
    sources = [guards.reasoning_copy_source(d.id, d.content, used) for d in (seen or documents)]
    sources.append(_asked_source(" \n".join([item.question, *(item.options or {}).values()])))

    agent: set[str] = set()
    matched: set[str] = set()
    copies = lists = 0
    for start, sentence, inside, words in judged_sentences:
        entities = {canonical for _, _, canonical in inside}
        agent |= entities
        outside = _blank(sentence, inside, start)
        outside_words = guards._words(guards.fold(outside))
        if len(words) > COPY_SPAN_WORDS:  # fewer words can never be judged a copy
            judged = set(guards._content(outside_words))
            if any(
                guards.copied_words(words, source, judged)
                or guards.near_copied_words(words, source, judged)
                for source in sources
            ):
                copies += 1
                continue
        if guards._real_words(outside_words) < MIN_PROSE_WORDS:
            lists += 1
            continue
        matched |= entities & support
        if gold:  # the lexicon may name a phrase differently in two contexts: its words count
            matched |= {c for a, b, c in inside if _in_documents(text[a:b], documents)}
    return EvidenceMatch(
        doc_ids=tuple(d.id for d in documents),
        support=frozenset(support),
        agent=frozenset(agent),
        matched=frozenset(matched),
        copied_sentences=copies,
        list_sentences=lists,
    )


def episode_evidence(ctx: EpisodeContext) -> EvidenceMatch:
    """:func:`match_evidence` for an episode, with the environment's extractor and documents."""
    extractor = load_extractor(ctx.config.entity_extractor)
    # Copies are looked for in every document read (snippets of unread ones earn nothing anyway),
    # so no document beyond those the agent read is fetched.
    seen = [d for d in (ctx.documents.get(i) for i in ctx.read_ids) if d is not None]
    return match_evidence(extractor, ctx.item, ctx.reasoning, evidence_documents(ctx), seen)


def strip_copied_spans(text: str, sources: list[str]) -> str:
    """``text`` without its sentences that are copies of ``sources`` (see
    :func:`medr3_env.rewards.guards.copied`)."""
    grams = [guards.copy_source(guards.content_words(source)) for source in sources]
    kept = [
        text[a:b]
        for a, b in guards.sentence_spans(text)
        if not any(guards.copied_words(guards.content_words(text[a:b]), g) for g in grams)
    ]
    return "\n".join(kept)


@register_reward("evidence", range=(0.0, 1.0))
def evidence_reward(ctx: EpisodeContext) -> float | None:
    """Grounded, relevant reasoning: precision × coverage of supported entities, × answer score."""
    if not ctx.config.search_enabled and not ctx.read_ids:
        return None
    if ctx.final_answer is None:
        return 0.0
    gate = answer_score(ctx)
    if gate == 0.0:
        return 0.0
    match = ctx.shared(episode_evidence)
    score = match.score
    if ctx.config.evidence_metric == "recall" and not match.copied_sentences and match.support:
        # Opt-in: share of the support named, still scaled by precision so stuffing costs.
        score = len(match.matched) / len(match.support) * match.precision
    return score * read_precision(ctx) * gate


def read_precision(ctx: EpisodeContext) -> float:
    """min(1, max(1, gold ids) / distinct documents read)²: reading everything to find the
    evidence costs more than it can earn."""
    read = len(ctx.read_ids)
    return min(1.0, max(1, len(ctx.item.evidence_ids)) / read) ** 2 if read else 0.0
