"""``evidence``: does the reasoning use the documents the agent actually read?

Entities (normalised biomedical concept strings) of the agent's reasoning and short answer are
compared with the *relevant* entities of the documents it read (or, if it read nothing, the
documents it retrieved). A document sentence is relevant when it mentions an anchor entity: one
from the question, its options or the gold answer. ``evidence_metric`` selects precision, recall or
F1 (default) of agent entities against relevant document entities.

Guards against reward hacking:

* verbatim copying: spans of ``COPY_SPAN_WORDS`` or more consecutive words that also occur in a
  read document are removed before extraction, so pasting documents earns nothing;
* entity stuffing: precision is measured against the relevant entities only, and more than
  ``MAX_AGENT_ENTITIES`` distinct entities scale the score down; a long answer (over
  ``MAX_ANSWER_WORDS``) contributes no entities.
"""

from __future__ import annotations

import re

from medr3_env.rewards.context import EpisodeContext
from medr3_env.rewards.registry import register_reward

from medr3_env.entities import load_extractor
from medr3_env.search.base import IndexedDocument

COPY_SPAN_WORDS = 12
MAX_AGENT_ENTITIES = 20
MAX_ANSWER_WORDS = 30

_WORD = re.compile(r"\S+")


def _norm_word(word: str) -> str:
    return word.strip(".,;:!?()[]{}\"'").lower()


def strip_copied_spans(text: str, sources: list[str], span: int = COPY_SPAN_WORDS) -> str:
    """``text`` without runs of ``span``+ consecutive words that appear verbatim in ``sources``."""
    words = [(m.group(), _norm_word(m.group())) for m in _WORD.finditer(text)]
    if len(words) < span or not sources:
        return text
    grams: set[tuple[str, ...]] = set()
    for source in sources:
        tokens = [_norm_word(w) for w in source.split()]
        grams.update(tuple(tokens[i : i + span]) for i in range(len(tokens) - span + 1))
    copied = [False] * len(words)
    keys = [w for _, w in words]
    for start in range(len(words) - span + 1):
        if tuple(keys[start : start + span]) in grams:
            for i in range(start, start + span):
                copied[i] = True
    # Keep a line break where a span was removed so entities on both sides never merge.
    out: list[str] = []
    for (raw, _), was_copied in zip(words, copied, strict=True):
        if not was_copied:
            out.append(raw)
        elif not out or out[-1] != "\n":
            out.append("\n")
    return " ".join(out)


def relevant_entities(documents: list[IndexedDocument], anchors: set[str]) -> set[str]:
    """Entities of document sentences that mention an anchor (all entities if none do)."""
    relevant: set[str] = set()
    everything: set[str] = set()
    for doc in documents:
        for sentence in doc.sentence_entities:
            everything.update(sentence)
            if anchors.intersection(sentence):
                relevant.update(sentence)
        everything.update(a.lower() for a in doc.annotations)
    return relevant or everything


def overlap_score(agent: set[str], target: set[str], metric: str) -> float:
    if not agent or not target:
        return 0.0
    hits = len(agent & target)
    precision, recall = hits / len(agent), hits / len(target)
    if metric == "precision":
        return precision
    if metric == "recall":
        return recall
    return 0.0 if hits == 0 else 2 * precision * recall / (precision + recall)


@register_reward("evidence", range=(0.0, 1.0))
def evidence_reward(ctx: EpisodeContext) -> float | None:
    """Entity overlap (F1 by default) between the reasoning and the relevant read documents."""
    ids = ctx.read_ids or ctx.retrieved_ids
    documents = [doc for doc in (ctx.documents.get(i) for i in ids) if doc is not None]
    if not documents:
        return 0.0 if ctx.config.search_enabled else None
    extractor = load_extractor(ctx.config.entity_extractor)
    item = ctx.item
    anchor_text = " \n".join(
        [item.question, *(item.options or {}).values(), item.answer_text, *item.aliases]
    )
    anchors = extractor.extract(anchor_text)
    target = relevant_entities(documents, anchors)

    answer = ctx.final_answer or ""
    agent_text = ctx.reasoning
    if len(answer.split()) <= MAX_ANSWER_WORDS:
        agent_text = f"{agent_text}\n{answer}"
    agent_text = strip_copied_spans(agent_text, [doc.content for doc in documents])
    agent = extractor.extract(agent_text)
    score = overlap_score(agent, target, ctx.config.evidence_metric)
    if len(agent) > MAX_AGENT_ENTITIES:
        score *= MAX_AGENT_ENTITIES / len(agent)
    return score
