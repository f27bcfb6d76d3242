"""Property-based fuzzing of the action parser and env.step: never raises, rewards finite,
turn count always advances. CI runs a few thousand examples; benchmarks/fuzz_actions.py runs more."""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medr3_env.actions import parse_action
from medr3_env.testing import FUZZ_TAGS, FUZZ_WORDS

pieces = st.one_of(st.sampled_from(FUZZ_TAGS), st.sampled_from(FUZZ_WORDS), st.text(max_size=30))
actions = st.one_of(
    st.text(max_size=300),
    st.lists(pieces, max_size=40).map("".join),
    st.builds(
        lambda n, s: s * n,
        st.integers(1, 3000),
        st.sampled_from(["<search>", "x", "<answer>A</answer>", "<think>", "\udc80", "＜", "<a "]),
    ),
)


@pytest.mark.slow
@settings(max_examples=2000, deadline=None)
@given(actions)
def test_parser_never_raises(text):
    parsed = parse_action(text)
    assert parsed.kind in {"search", "read", "answer", "invalid"}
    assert (parsed.error is None) == (parsed.kind != "invalid")


@settings(
    max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@pytest.mark.slow
@given(st.lists(actions, min_size=1, max_size=4), st.integers(0, 10_000))
def test_step_never_raises_and_turns_advance(env, turns, seed):
    env.reset(seed=seed)
    for expected_turn, action in enumerate(turns, start=1):
        obs, reward, terminated, truncated, info = env.step(action)
        assert isinstance(obs, str) and env.observation_space.contains(obs)
        assert math.isfinite(reward)
        assert info["turn"] == expected_turn
        assert all(math.isfinite(v) for v in info["reward_terms"].values())
        if terminated or truncated:
            break
