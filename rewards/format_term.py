"""``format``: a dense ladder that rewards well-formed turns, in the spirit of Search-R1.

Per step (the episode's format reward is the sum):

=====================================================  =======
turn                                                   value
=====================================================  =======
malformed (no/two/unknown/unclosed tags, empty, fake
observation tags, disallowed action, bad doc id ...)   -0.25
well-formed search/read with text after the tag        -0.10
well-formed search/read                                 0.00
well-formed answer with text after ``</answer>``        0.50
well-formed answer, nothing after it                    1.00
=====================================================  =======

An episode cut off at ``max_turns`` never earns the answer bonus.
"""

from __future__ import annotations

from medr3_env.rewards.context import EpisodeContext
from medr3_env.rewards.registry import register_reward

INVALID_TURN = -0.25
TRAILING_TEXT = -0.10
ANSWER_WITH_TRAILING_TEXT = 0.5
CLEAN_ANSWER = 1.0


@register_reward("format", range=(INVALID_TURN, CLEAN_ANSWER), when="step")
def format_reward(ctx: EpisodeContext) -> float:
    """Per-turn format ladder: -0.25 malformed, 0 ok, +1 clean final answer."""
    turn = ctx.last_turn
    if turn is None:
        return 0.0
    if not turn.valid:
        return INVALID_TURN
    if turn.kind == "answer":
        return ANSWER_WITH_TRAILING_TEXT if turn.trailing_text else CLEAN_ANSWER
    return TRAILING_TEXT if turn.trailing_text else 0.0
