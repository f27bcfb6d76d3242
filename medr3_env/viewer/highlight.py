"""Which biomedical entities the evidence term matched in an episode, and where they occur.

The environment reports what the evidence term counted (``info["evidence"]``, recorded as
``TrajectoryRecord.evidence_entities``), and the viewer highlights exactly that set. For older
records without it, the same function the term uses
(:func:`medr3_env.rewards.evidence.match_evidence`) runs again on the documents the term uses (the
ones read after a search returned them; gold ones only when gold ids exist) as recorded in the
observations. Read documents longer than ``max_doc_chars`` were recorded cut, so for those older
records an entity that occurs only after the cut is not highlighted.
"""

from __future__ import annotations

import re
from typing import Any

from medr3_env.actions import parse_action
from medr3_env.entities import EntityExtractor, normalise_entity
from medr3_env.rewards.evidence import match_evidence
from medr3_env.search.base import IndexedDocument
from medr3_env.trajectory import TrajectoryRecord

Span = tuple[int, int, str]

_READ = re.compile(r"\A<information>\nDocument (\S+) \| ([^\n]*)\n(.*)\n</information>\Z", re.S)
_CUT = re.compile(r" \[\.\.\. cut at \d+ characters\]\Z")


def entity_spans(extractor: EntityExtractor, text: str) -> list[Span]:
    """``(start, end, entity)`` character spans of the entities ``extractor`` finds in ``text``.

    Uses the extractor's ``extract_spans`` when it has one, else its term matcher (lexicon
    extractor) or its spaCy pipeline's entities (model extractor).
    """
    spans_of = getattr(extractor, "extract_spans", None)
    if callable(spans_of):
        return sorted(spans_of(text))
    matcher = getattr(extractor, "matcher", None)
    if matcher is not None and callable(getattr(matcher, "find", None)):
        return sorted(matcher.find(text))
    nlp = getattr(extractor, "nlp", None)
    if nlp is not None:
        canonical = getattr(extractor, "canonical", normalise_entity)
        return [(e.start_char, e.end_char, canonical(e.text)) for e in nlp(text).ents]
    return []


def recorded_documents(record: TrajectoryRecord) -> list[tuple[str, str, str]]:
    """``(id, title, text)`` of the documents the evidence term uses, from the observations: the
    documents read after a search returned them (gold ones only when the item names gold ids)."""
    searched: set[str] = {doc_id for turn in record.turns for doc_id, _ in turn.retrieved}
    gold = set(record.item.evidence_ids)
    read: dict[str, tuple[str, str, str]] = {}
    for turn in record.turns:
        match = _READ.match(turn.observation) if turn.action == "read" else None
        if match and match.group(1) in searched and (not gold or match.group(1) in gold):
            read.setdefault(
                match.group(1), (match.group(1), match.group(2), _CUT.sub("", match.group(3)))
            )
    return list(read.values())


def agent_reasoning(record: TrajectoryRecord) -> str:
    """The reasoning of the episode's valid turns, as the reward context joins it."""
    parts = []
    for turn in record.turns:
        if turn.action == "invalid":
            continue
        reasoning = turn.reasoning
        if reasoning is None:  # schema 1 records: parse the stored turn again
            reasoning = parse_action(turn.action_text).reasoning
        if reasoning:
            parts.append(reasoning)
    return "\n".join(parts)


def matched_entities(
    record: TrajectoryRecord, extractor: EntityExtractor, cache: dict[Any, Any] | None = None
) -> set[str]:
    """The entities the evidence term counted in this episode (its ``matched`` set).

    ``cache`` (a dict shared between calls with the same extractor) keeps document entities and
    the results of identical episodes when they have to be recomputed (older records).
    """
    if record.evidence_entities is not None:
        return set(record.evidence_entities)
    cache = {} if cache is None else cache
    recorded = recorded_documents(record)
    key = (record.item.model_dump_json(), agent_reasoning(record), tuple(recorded))
    if key not in cache:
        cache[key] = _matched(record, extractor, recorded, cache)
    return set(cache[key])


def _matched(
    record: TrajectoryRecord,
    extractor: EntityExtractor,
    recorded: list[tuple[str, str, str]],
    cache: dict[Any, Any],
) -> frozenset[str]:
    documents = []
    for doc_id, title, text in recorded:
        if text not in cache:
            cache[text] = next(iter(extractor.extract_sentences([text])), ())
        documents.append(
            IndexedDocument(id=doc_id, title=title, content=text, sentence_entities=cache[text])
        )
    if not documents:
        return frozenset()
    return match_evidence(extractor, record.item, agent_reasoning(record), documents).matched
