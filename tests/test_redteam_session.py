"""What a policy that reads ``info`` can learn before the episode ends: nothing about the gold.

Two episodes play the same turns on the same question, once with its real gold answer and gold
evidence ids and once with a different gold; every observation and every ``info`` before the last
step (``parsed_action``, ``action_text``, ``term_documents``, the reward terms so far, the
messages) must be identical, so no field carries the gold to a policy."""

from __future__ import annotations

from typing import Any

import pytest

from medr3_env import MedR3Env
from medr3_env.config import STAGES
from medr3_env.corpora.records import QAItem


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
