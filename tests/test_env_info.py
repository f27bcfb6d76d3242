"""What ``info`` reports so that downstream code never re-parses: the text the environment acted
on, the parser's result, and the documents each reward term used."""

from __future__ import annotations

import json
import warnings

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

from medr3_env import MedR3Env
from medr3_env.actions import parse_action

PARSED_KEYS = {"kind", "valid", "argument", "reasoning", "trailing_text", "error_code", "error"}


def _gold(env: MedR3Env):
    item = next(q for q in env.questions if q.evidence_ids and q.answer_type == "mcq")
    env.reset(options={"item_id": item.id})
    return item


def test_info_holds_the_parsed_action_of_every_kind_of_turn(env):
    item = _gold(env)
    query = item.question[:100].strip()
    turns = [
        ("<lookup>x</lookup>", "invalid", "unknown_tag"),
        (f"<think>first the drug</think><search>{query}</search> and more", "search", None),
        ("<read>{doc_id}</read>", "read", None),
        (f"Because the passage says so.<answer>{item.answer}</answer>", "answer", None),
    ]
    doc_id = ""
    for template, kind, code in turns:
        text = template.replace("{doc_id}", doc_id)
        info = env.step(text)[4]
        parsed = info["parsed_action"]
        assert set(parsed) == PARSED_KEYS and info["action_text"] == text
        assert parsed == {**parse_action(text).__dict__, "valid": kind != "invalid"}
        assert parsed["kind"] == info["action"] == kind and parsed["error_code"] == code
        json.dumps(info["parsed_action"])  # plain data
        if kind == "invalid":
            assert parsed["valid"] is False and "<lookup>" in parsed["error"]
            assert parsed["argument"] == "" and info["error"] == "unknown_tag"
        if kind == "search":
            doc_id = info["retrieved_ids"][0]
            assert parsed["argument"] == info["query"] == query
            assert parsed["reasoning"] == "first the drug" and parsed["trailing_text"] is True
        if kind == "read":
            assert parsed["argument"] == doc_id and parsed["error"] is None
        if kind == "answer":
            assert parsed["argument"] == item.answer == info["final_answer"]
            assert parsed["reasoning"] == "Because the passage says so."


def test_a_refused_turn_keeps_its_parse_apart_from_the_outcome(starter_searcher):
    env = MedR3Env(stage="reasoning", searcher=starter_searcher)
    env.reset(seed=0)
    info = env.step("<search>aspirin</search>")[4]
    assert info["action"] == "invalid" and info["error"] == "not_allowed"
    assert info["parsed_action"]["kind"] == "search" and info["parsed_action"]["valid"]
    assert info["parsed_action"]["argument"] == "aspirin"


def test_bytes_and_surrogates_are_reported_as_the_text_acted_on(env):
    env.reset(seed=0)
    info = env.step("<search>caf\u00e9 dose</search>".encode())[4]
    assert info["action_text"] == "<search>caf\u00e9 dose</search>"
    assert info["parsed_action"]["argument"] == "caf\u00e9 dose" == info["query"]
    info = env.step("<search>a\udc80b</search>")[4]
    assert info["action_text"] == "<search>a\ufffdb</search>"
    assert info["parsed_action"]["argument"] == "a\ufffdb"


def test_term_documents_name_what_retrieval_and_evidence_used(env):
    item = _gold(env)
    first = env.step(f"<search>{item.question[:120]}</search>")[4]
    assert first["term_documents"] == {}  # both terms are terminal
    doc_id = first["retrieved_ids"][0]
    env.step(f"<read>{doc_id}</read>")
    info = env.step(f"<answer>{item.answer}</answer>")[4]
    used = info["term_documents"]
    assert used["retrieval"] == first["retrieved_ids"]
    gold = set(item.evidence_ids)
    assert used["evidence"] == ([doc_id] if doc_id in gold else [])
    assert used["evidence"] == info["evidence"]["doc_ids"]
    assert set(used) <= set(info["step_reward_terms"])


def test_term_documents_leave_out_terms_that_did_not_apply(starter_searcher):
    env = MedR3Env(stage="reasoning", searcher=starter_searcher)
    item = next(q for q in env.questions if q.answer_type == "mcq")
    env.reset(options={"item_id": item.id})
    info = env.step(f"<answer>{item.answer}</answer>")[4]
    assert info["term_documents"] == {}
    assert "retrieval" in info["reward_not_applicable"]


@pytest.mark.parametrize("env_id", ["MedR3-v0", "MedR3-Reasoning-v0"])
def test_check_env_passes_with_the_new_info(env_id):
    env = gym.make(env_id, split="test")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped, skip_render_check=True)
    env.reset(seed=0)
    info = env.step(b"<answer>A</answer>")[4]
    assert info["action_text"] == "<answer>A</answer>"
    assert info["parsed_action"]["kind"] == "answer"
    env.close()


def test_a_turn_that_is_not_text_is_reported_as_not_text(env):
    env.reset(seed=0)
    obs, reward, terminated, _, info = env.step(12345)  # type: ignore[arg-type]
    assert info["action"] == "invalid" and info["error"] == "not_text"
    assert info["action_text"] == "" and info["parsed_action"]["error_code"] == "not_text"
    assert obs.startswith("<error>") and reward < 0 and not terminated
