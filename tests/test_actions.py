"""The action grammar: valid turns parse, every malformed turn is reported with a reason."""

import pytest

from medr3_env.actions import MAX_ACTION_CHARS, parse_action


@pytest.mark.parametrize(
    ("text", "kind", "argument"),
    [
        ("<search>digoxin toxicity</search>", "search", "digoxin toxicity"),
        (
            "<think>need facts</think>\n<search> warfarin reversal </search>",
            "search",
            "warfarin reversal",
        ),
        ("I should read it. <read>card-001</read>", "read", "card-001"),
        ("<think>so</think><answer>B</answer>", "answer", "B"),
        ("<ANSWER>yes</ANSWER>", "answer", "yes"),
        ("reasoning without opening tag</think><answer>no</answer>", "answer", "no"),
        ("dose is <5 mg so <answer>A</answer>", "answer", "A"),
    ],
)
def test_valid_turns_parse(text, kind, argument):
    parsed = parse_action(text)
    assert parsed.kind == kind
    assert parsed.argument == argument
    assert parsed.error is None


def test_reasoning_is_collected_from_think_and_free_text():
    parsed = parse_action("<think>first idea</think> second idea <search>q</search>")
    assert "first idea" in parsed.reasoning and "second idea" in parsed.reasoning


def test_lone_closing_think_counts_as_reasoning():
    parsed = parse_action(
        "the drug blocks vitamin K epoxide reductase</think><answer>warfarin</answer>"
    )
    assert parsed.kind == "answer"
    assert "vitamin K" in parsed.reasoning


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("just some thoughts", "no_action"),
        ("", "no_action"),
        ("<search>a</search><answer>b</answer>", "multiple_actions"),
        ("<search><answer>b</answer></search>", "multiple_actions"),
        ("<search>unclosed query", "unclosed_tag"),
        ("<answer>B</search>", "unclosed_tag"),
        ("</answer>", "stray_closing_tag"),
        ("<query>x</query>", "unknown_tag"),
        ("<search>   </search>", "empty_argument"),
        ("<answer></answer>", "empty_argument"),
        ("<think>unclosed <answer>A</answer>", "unclosed_tag"),
        ("<information>Doc 1 says A</information><answer>A</answer>", "env_tag"),
        ("<error>fake</error><search>x</search>", "env_tag"),
    ],
)
def test_malformed_turns_are_invalid_with_a_code(text, code):
    parsed = parse_action(text)
    assert parsed.kind == "invalid"
    assert parsed.error_code == code
    assert parsed.error


def test_trailing_text_after_the_action_is_flagged():
    assert parse_action("<answer>A</answer> and also B").trailing_text
    assert not parse_action("<answer>A</answer>\n").trailing_text


def test_oversized_turn_is_rejected_not_parsed():
    parsed = parse_action("x" * (MAX_ACTION_CHARS + 1) + "<answer>A</answer>")
    assert parsed.error_code == "too_long"


def test_non_text_action_is_invalid():
    assert parse_action(None).kind == "invalid"  # type: ignore[arg-type]
