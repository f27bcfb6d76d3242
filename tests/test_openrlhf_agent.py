"""The OpenRLHF agent file driven by OpenRLHF's real ``MultiTurnAgentExecutor.execute``.

Only the vLLM engine is replaced: :class:`ScriptedEngine` replays scripted model turns, honouring
the stop sequences and token budget it is given, as vLLM does. The tokenizer is trained locally.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch", reason="the agent tests need torch (the `train` extra)")
pytest.importorskip(
    "openrlhf.utils.agent",
    reason="needs openrlhf: pip install --no-deps openrlhf==0.11.2 plus transformers, aiohttp",
)
pytest.importorskip("tokenizers", reason="the agent tests build a tokenizer with `tokenizers`")

import medr3_env.agents  # noqa: E402
from medr3_env import MedR3Env  # noqa: E402
from medr3_env.agents.chat_turns import STOP_SEQUENCES, render_prompt  # noqa: E402
from medr3_env.agents.prompts import prompt_record  # noqa: E402
from medr3_env.agents.stage_config import load_stage_config  # noqa: E402
from medr3_env.agents.tiny_lm import build_tiny_tokenizer  # noqa: E402
from medr3_env.corpora import load_corpus  # noqa: E402
from medr3_env.corpora.records import QAItem  # noqa: E402

AGENT_FILE = Path(medr3_env.agents.__file__).parent / "openrlhf_agent.py"
DIGOXIN_PASSAGE = "card-003"  # the starter passage on digoxin toxicity
Turn = str | Callable[[str], str]


@dataclass
class SamplingParams:
    """The vLLM ``SamplingParams`` fields the executor and the agent touch."""

    temperature: float = 1.0
    max_tokens: int | None = None
    stop: list[str] | None = None
    include_stop_str_in_output: bool = False
    skip_special_tokens: bool = False
    logprobs: int | None = None


@dataclass
class _Completion:
    token_ids: list[int]
    text: str
    finish_reason: str
    logprobs: Any = None


@dataclass
class _RequestOutput:
    outputs: list[_Completion]


@dataclass
class ScriptedEngine:
    """Stands in for OpenRLHF's vLLM actor: ``generate`` replays the next scripted turn."""

    tokenizer: Any
    turns: list[Turn]
    calls: list[tuple[str, SamplingParams]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    async def generate(self, prompt_token_ids, sampling_params, multi_modal_data=None):
        context = self.tokenizer.decode(prompt_token_ids, skip_special_tokens=False)
        self.calls.append((context, sampling_params))
        turn = self.turns[len(self.calls) - 1]
        text = turn(context) if callable(turn) else turn
        finish = "stop"
        ends = [text.find(s) + len(s) for s in (sampling_params.stop or []) if s in text]
        if ends:  # vLLM stops at the first stop string (kept with include_stop_str_in_output)
            end = min(ends)
            text = text[:end] if sampling_params.include_stop_str_in_output else text[: end - 1]
        else:  # the model closes its turn with the end-of-sequence token
            text += self.tokenizer.eos_token
        ids = self.tokenizer(text=text, add_special_tokens=False)["input_ids"]
        if sampling_params.max_tokens is not None and len(ids) > sampling_params.max_tokens:
            ids, finish = ids[: sampling_params.max_tokens], "length"
            text = self.tokenizer.decode(ids, skip_special_tokens=False)
        self.texts.append(text)
        return _RequestOutput([_Completion(list(ids), text, finish)])


@pytest.fixture(scope="module")
def tokenizer():
    return build_tiny_tokenizer()


@pytest.fixture(scope="module")
def item():
    """A question written for these tests (answer B), over the starter corpus's digoxin passage:
    the scripted turns below must stay right whatever the starter question set says."""
    passage = next(d for d in load_corpus("starter") if d.id == DIGOXIN_PASSAGE)
    assert "digoxin" in passage.contents.lower(), (
        "the digoxin passage moved; update DIGOXIN_PASSAGE"
    )
    return QAItem(
        id="test-digoxin-antidote",
        question="A woman taking digoxin has vomiting, yellow vision and bidirectional "
        "ventricular tachycardia. Which is the most appropriate specific therapy?",
        answer_type="mcq",
        options={
            "A": "Intravenous amiodarone",
            "B": "Digoxin immune Fab",
            "C": "Intravenous verapamil",
            "D": "Intravenous adenosine",
        },
        answer="B",
        evidence_ids=(DIGOXIN_PASSAGE,),
        split="train",
    )


@pytest.fixture()
def executor(monkeypatch):
    """The agent file loaded the way OpenRLHF's vLLM actor loads it (by path, no arguments)."""

    def make(stage: str | None = "joint", stage_config: Path | None = None):
        for name in ("MEDR3_STAGE", "MEDR3_STAGE_CONFIG", "MEDR3_SEARCH_URL", "MEDR3_CORPUS"):
            monkeypatch.delenv(name, raising=False)
        if stage is not None:
            monkeypatch.setenv("MEDR3_STAGE", stage)
        if stage_config is not None:
            monkeypatch.setenv("MEDR3_STAGE_CONFIG", str(stage_config))
        spec = importlib.util.spec_from_file_location("agent_module", AGENT_FILE)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        from openrlhf.utils.agent import AgentExecutorBase

        assert issubclass(module.AgentExecutor, AgentExecutorBase)
        return module.AgentExecutor()

    return make


def run(executor, tokenizer, item, turns, *, stage="joint", max_length=4096, params=None):
    record = prompt_record(load_stage_config(stage), item, "starter")
    prompt = render_prompt(tokenizer, record["prompt"])
    engine = ScriptedEngine(tokenizer, list(turns))
    params = params or SamplingParams()
    result = asyncio.run(
        executor.execute(prompt, record["label"], params, max_length, tokenizer, engine)
    )
    return result, engine, prompt


def replay(item, texts, **config) -> dict:
    """The same turns through a plain MedR3Env: the reference breakdown."""
    env = MedR3Env(split=None, **config)
    env.reset(options={"item": item})
    info: dict = {}
    for text in texts:
        _, _, terminated, truncated, info = env.step(text.removesuffix("<|im_end|>"))
        if terminated or truncated:
            break
    return info


def first_doc_id(context: str) -> str:
    return re.findall(r"\(id: ([^ |]+) \|", context)[-1]


def spans(tokenizer, result) -> tuple[list[str], str]:
    """Decoded action spans and the decoded text outside them."""
    tokens = result["observation_tokens"]
    inside, outside, cursor = [], [], 0
    for start, end in result["action_ranges"]:
        outside.append(tokenizer.decode(tokens[cursor:start], skip_special_tokens=False))
        inside.append(tokenizer.decode(tokens[start:end], skip_special_tokens=False))
        cursor = end
    outside.append(tokenizer.decode(tokens[cursor:], skip_special_tokens=False))
    return inside, "".join(outside)


SEARCH = "<think>The patient has digoxin toxicity.</think>\n<search>digoxin toxicity antidote</search> then <answer>A</answer>"


def READ(context: str) -> str:
    return f"<think>Read the top hit.</think>\n<read>{first_doc_id(context)}</read>"


ANSWER = "<think>Digoxin immune Fab reverses digoxin toxicity.</think>\n<answer>B</answer>"


@pytest.mark.parametrize("stage", ["retrieval", "joint"])
def test_full_episode_matches_the_environment(executor, tokenizer, item, stage):
    params = SamplingParams(temperature=1.0)
    result, engine, prompt = run(
        executor(stage), tokenizer, item, [SEARCH, READ, ANSWER], stage=stage, params=params
    )

    # Generation paused after each closing tag: the text after </search> was never generated.
    assert engine.texts[0].endswith("</search>") and "<answer>A" not in engine.texts[0]
    assert all(
        set(STOP_SEQUENCES) <= set(p.stop) and p.include_stop_str_in_output for _, p in engine.calls
    )
    assert params.stop is None and params.max_tokens is None  # the shared params stay untouched

    reference = replay(item, engine.texts, stage=stage)
    assert reference["correct"] is True
    assert result["reward"] == pytest.approx(reference["reward_total"])
    logs = result["extra_logs"]
    for term, value in reference["reward_terms"].items():
        assert logs[f"medr3/{term}"] == pytest.approx(value), term
    assert logs["medr3/reward_total"] == pytest.approx(reference["reward_total"])
    assert (logs["medr3/correct"], float(result["scores"])) == (1.0, 1.0)
    assert (logs["medr3/searches"], logs["medr3/reads"], logs["medr3/turns"]) == (1.0, 1.0, 3.0)
    assert all(isinstance(v, float) for v in logs.values())
    weights = load_stage_config(stage).env.reward_weights
    assert reference["reward_total"] == pytest.approx(
        sum(weights[t] * v for t, v in reference["reward_terms"].items())
    )


def test_feedback_is_outside_the_trained_action_ranges(executor, tokenizer, item):
    result, engine, prompt = run(executor("joint"), tokenizer, item, [SEARCH, READ, ANSWER])
    inside, outside = spans(tokenizer, result)
    assert inside == engine.texts  # exactly the model's tokens are trained
    assert not any("<information>" in text or "<|im_start|>" in text for text in inside)
    assert outside.startswith(prompt)
    feedback = outside[len(prompt) :]
    assert feedback.count("<information>") == 2  # search results and the document
    # Feedback carries the chat-template turn markers: close the model turn, open the next one.
    assert outside.count("<|im_end|>\n<|im_start|>user\n<information>") == 2
    assert outside.count("</information><|im_end|>\n<|im_start|>assistant\n") == 2
    full = tokenizer.decode(result["observation_tokens"], skip_special_tokens=False)
    assert full.endswith("<answer>B</answer>")  # nothing is appended after the final answer


def test_reasoning_stage_refuses_search(executor, tokenizer, item):
    answer = "<think>Bidirectional ventricular tachycardia with high potassium in a patient on digoxin means toxicity, treated with the antibody fragments.</think>\n<answer>B</answer>"
    result, engine, _ = run(executor("1"), tokenizer, item, [SEARCH, answer], stage="reasoning")
    assert "not available in the reasoning stage" in engine.calls[1][0]
    logs = result["extra_logs"]
    assert logs["medr3/invalid_turns"] == 1.0 and logs["medr3/searches"] == 0.0
    assert logs["medr3/format"] == pytest.approx(-0.25 + 1.0)
    assert logs["medr3/answer"] == 1.0
    reference = replay(item, engine.texts, stage="reasoning")
    assert result["reward"] == pytest.approx(reference["reward_total"])
    assert "medr3/retrieval" in logs and logs["medr3/retrieval"] == 0.0


def test_malformed_turns_are_penalised_without_crashing(executor, tokenizer, item):
    turns = [
        "I think the answer is B",
        "<information>fake results</information>",
        "<search>digoxin",
        "<search>  </search>",
        "<read>no-such-doc</read>",
        ANSWER,
    ]
    result, engine, _ = run(executor("joint"), tokenizer, item, turns)
    logs = result["extra_logs"]
    assert logs["medr3/invalid_turns"] == 5.0
    assert logs["medr3/format"] == pytest.approx(5 * -0.25 + 1.0)
    assert logs["medr3/correct"] == 1.0
    reference = replay(item, engine.texts, stage="joint")
    assert result["reward"] == pytest.approx(reference["reward_total"])
    contexts = [context for context, _ in engine.calls]
    assert "<error>" in contexts[1] and "No action found" in contexts[1]
    # A turn the model closed itself (end-of-sequence) does not get a second end marker.
    assert "<|im_end|><|im_end|>" not in contexts[-1]


def test_episode_without_an_answer_is_truncated_at_max_turns(executor, tokenizer, item):
    result, engine, _ = run(
        executor("reasoning"), tokenizer, item, ["hmm", "still thinking"], stage="reasoning"
    )
    assert len(result["action_ranges"]) == 2 == len(engine.calls)
    logs = result["extra_logs"]
    assert (logs["medr3/truncated"], logs["medr3/correct"]) == (1.0, 0.0)
    assert result["reward"] == pytest.approx(2 * 0.2 * -0.25)


def test_token_budget_ends_the_rollout(executor, tokenizer, item):
    long_search = "<think>" + "digoxin " * 400 + "</think><search>digoxin</search>"
    prompt_tokens = len(
        tokenizer(
            text=render_prompt(
                tokenizer, prompt_record(load_stage_config("joint"), item, "s")["prompt"]
            ),
            add_special_tokens=False,
        )["input_ids"]
    )
    result, engine, _ = run(
        executor("joint"), tokenizer, item, [long_search], max_length=prompt_tokens + 50
    )
    assert len(engine.calls) == 1 and result["truncated"] is True
    assert len(result["observation_tokens"]) >= prompt_tokens + 50


def test_stage_config_file_overrides_the_stage(executor, tokenizer, item, tmp_path):
    path = tmp_path / "custom.yaml"
    path.write_text(
        "name: reasoning\nreward_weights: {answer: 1.0, format: 1.0, retrieval: 0, evidence: 0}\n",
        encoding="utf-8",
    )
    result, _, _ = run(
        executor(None, stage_config=path), tokenizer, item, ["no action"] * 2, stage="reasoning"
    )
    assert result["reward"] == pytest.approx(2 * 1.0 * -0.25)


def test_a_stage_file_corpus_with_loader_options_is_what_the_agent_searches(
    executor, tokenizer, item, tmp_path, monkeypatch
):
    rows = [
        ("dup-1", "Digoxin toxicity antidote: digoxin immune Fab fragments bind the drug."),
        ("dup-1", "Digoxin toxicity antidote, as a second collection words it."),
        ("other-2", "Hyperkalemia is treated with calcium gluconate first."),
    ]
    lines = [json.dumps({"id": i, "title": "", "content": text}) for i, text in rows]
    (tmp_path / "medquad.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    stage_file = tmp_path / "stage.yaml"
    stage_file.write_text(
        "name: joint\ncorpus: medrag:medquad.jsonl?on_duplicate=first\n"
        f"cache_dir: {tmp_path / 'cache'}\nentity_extractor: lexicon:starter\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path.parent)  # the relative corpus path is the stage file's folder
    agent = executor(None, stage_config=stage_file)
    result, _, _ = run(agent, tokenizer, item, [SEARCH, READ, ANSWER])
    _, feedback = spans(tokenizer, result)
    assert "dup-1" in feedback and DIGOXIN_PASSAGE not in feedback  # the stage file's corpus
    assert "immune Fab fragments bind" in feedback  # the first of the duplicate rows was kept
    assert "second collection" not in feedback


def test_bad_label_is_a_clear_error(executor, tokenizer):
    agent = executor("joint")
    engine = ScriptedEngine(tokenizer, [ANSWER])
    with pytest.raises(ValueError, match="question item as JSON"):
        asyncio.run(agent.execute("prompt", "B", SamplingParams(), 512, tokenizer, engine))


def test_concurrent_samples_share_one_searcher_and_run_off_the_event_loop(
    executor, tokenizer, item, monkeypatch
):
    import medr3_env.env as env_module

    built: list[Any] = []
    original = env_module.build_searcher
    monkeypatch.setattr(env_module, "_SEARCHERS", {})
    monkeypatch.setattr(
        env_module, "build_searcher", lambda *a, **k: built.append(1) or original(*a, **k)
    )
    threads: set[int] = set()
    original_step = MedR3Env.step

    def step(self, action):
        threads.add(threading.get_ident())
        return original_step(self, action)

    monkeypatch.setattr(MedR3Env, "step", step)
    agent = executor("joint")
    record = prompt_record(load_stage_config("joint"), item, "starter")
    prompt = render_prompt(tokenizer, record["prompt"])
    params = SamplingParams()

    async def group():
        engines = [ScriptedEngine(tokenizer, [SEARCH, READ, ANSWER]) for _ in range(4)]
        return await asyncio.gather(
            *(agent.execute(prompt, record["label"], params, 4096, tokenizer, e) for e in engines)
        )

    results = asyncio.run(group())
    assert len(built) == 1
    assert threading.get_ident() not in threads
    assert [r["extra_logs"]["medr3/correct"] for r in results] == [1.0] * 4
    assert params.stop is None
