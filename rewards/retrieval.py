"""``retrieval``: did the agent's searches find the gold evidence, without fishing for it?

::

    retrieval = found × precision × distinct × answer score

* ``found``: with gold evidence ids, recall of the gold ids among everything retrieved
  (``retrieval_metric="recall"``, default) or the best nDCG@k of any one search (``"ndcg"``);
  without gold ids, a lexical proxy: the largest share of the content words of the question plus
  the gold answer that one retrieved passage contains.
* ``precision`` = min(1, budget / distinct ids retrieved), budget = ``top_k`` × max(1, gold ids):
  one search per gold document is free, more volume dilutes the score.
* ``distinct`` = searches that found something new / searches
  (:func:`medr3_env.rewards.guards.distinct_search_count`: folded words and hit lists are compared,
  so "question + qqzx", upper case or reordered words are repeats).
* ``answer score``: a wrong or missing final answer earns nothing, so an episode cut off at
  ``max_turns`` is never paid for its searches.

Reading an id no search returned adds nothing. Not applicable (``None``) where search is disabled.
"""

from __future__ import annotations

import math
import re

from medr3_env.rewards import guards
from medr3_env.rewards.answer import answer_score
from medr3_env.rewards.context import EpisodeContext
from medr3_env.rewards.registry import register_reward
from medr3_env.search.query import query_terms

_WORD = re.compile(r"[^\W_]+")


def recall(gold: set[str], retrieved: tuple[str, ...]) -> float:
    return len(gold.intersection(retrieved)) / len(gold) if gold else 0.0


def ndcg_at_k(gold: set[str], ranked: list[str], k: int) -> float:
    """Binary-relevance nDCG@k of one ranked list."""
    dcg = sum(1.0 / math.log2(rank + 2) for rank, doc in enumerate(ranked[:k]) if doc in gold)
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(len(gold), k)))
    return dcg / ideal if ideal else 0.0


def lexical_coverage(target_terms: set[str], text: str) -> float:
    if not target_terms:
        return 0.0
    words = {w.lower() for w in _WORD.findall(text)}
    return len(target_terms & words) / len(target_terms)


def volume_precision(ctx: EpisodeContext) -> float:
    """min(1, ``top_k`` × max(1, gold ids) / distinct ids retrieved)."""
    distinct = len(ctx.retrieved_ids)
    if not distinct:
        return 0.0
    budget = ctx.config.top_k * max(1, len(ctx.item.evidence_ids))
    return min(1.0, budget / distinct)


def found_score(ctx: EpisodeContext) -> float:
    """Gold recall / best nDCG@k / lexical proxy of the searches, before the guards."""
    gold = set(ctx.item.evidence_ids)
    if gold:
        if ctx.config.retrieval_metric == "ndcg":
            return max(
                ndcg_at_k(gold, [h.doc_id for h in hits], ctx.config.top_k)
                for hits in ctx.retrieved
            )
        return recall(gold, ctx.retrieved_ids)
    target = set(query_terms(f"{ctx.item.question} {ctx.item.answer_text}", max_terms=64))
    score = 0.0
    for doc_id in ctx.retrieved_ids:
        doc = ctx.documents.get(doc_id)
        if doc is not None:
            score = max(score, lexical_coverage(target, doc.contents))
    return score


@register_reward("retrieval", range=(0.0, 1.0))
def retrieval_reward(ctx: EpisodeContext) -> float | None:
    """Gold recall (or nDCG@k) × volume precision × distinct searches × answer score."""
    if not ctx.config.search_enabled:
        return None
    if not ctx.queries or ctx.final_answer is None:
        return 0.0
    gate = answer_score(ctx)
    if gate == 0.0:
        return 0.0
    distinct = guards.distinct_search_count(ctx) / len(ctx.queries)
    return found_score(ctx) * volume_precision(ctx) * distinct * gate
