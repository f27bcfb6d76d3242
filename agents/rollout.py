"""Lockstep multi-turn MedR3 episodes driven by a causal LM: one batched ``generate`` per turn.

Owns the token-level transcript of each episode (prompt, model turns, environment feedback) and its
action mask, built the way OpenRLHF's ``MultiTurnAgentExecutor`` builds ``action_ranges``: the
generated token ids are kept as generated, each piece of feedback is tokenized on its own (no
special tokens) and appended, and only the generated tokens are marked as actions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from medr3_env.agents.chat_turns import (
    STOP_SEQUENCES,
    TurnMarkers,
    cut_at_stop,
    render_prompt,
    strip_eos,
    turn_markers,
)
from medr3_env.corpora.records import QAItem
from medr3_env.trajectory import TrajectoryRecord, TrajectoryRecorder


class GenerationSettings(BaseModel):
    """How one model turn is decoded."""

    model_config = ConfigDict(extra="forbid")

    max_new_tokens: int = Field(192, ge=1)
    """A protocol turn is a short ``<think>`` plus one action; 192 tokens fit the longest query."""
    temperature: float = Field(0.0, ge=0.0)
    """0 decodes greedily."""
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_len: int = Field(8192, ge=16)
    """Whole episode in tokens; an episode that reaches it ends (counted as length-truncated)."""


@dataclass
class EpisodeState:
    """One running episode: its token transcript and what the environment said last."""

    recorder: TrajectoryRecorder
    token_ids: list[int]
    action_mask: list[bool]
    observation: str
    info: dict[str, Any]
    question: dict[str, Any]
    done: bool = False
    turns: int = 0
    valid_turns: int = 0
    generated_tokens: int = 0
    hit_max_len: bool = False
    last_info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Episode:
    """A finished episode: tokens for training plus the recorded trajectory."""

    token_ids: list[int]
    action_mask: list[bool]
    """True exactly on the tokens the policy produced; prompt and feedback are False."""
    record: TrajectoryRecord
    turns: int
    valid_turns: int
    generated_tokens: int
    hit_max_len: bool

    @property
    def reward(self) -> float:
        return self.record.reward_total


class TurnSource(Protocol):
    """Produces the next turn's token ids for every running episode of a batch."""

    def __call__(self, states: Sequence[EpisodeState]) -> list[list[int]]: ...


def stop_index(tokens: Sequence[int], tokenizer: Any, eos_ids: set[int]) -> int:
    """How many of ``tokens`` belong to the turn: through the first end-of-sequence token or the
    token that completes a stop sequence; later tokens are padding or run-on text."""
    text = ""
    longest = max(len(s) for s in STOP_SEQUENCES)
    for index, token in enumerate(tokens):
        if token in eos_ids:
            return index + 1
        text += tokenizer.decode([token], skip_special_tokens=False)
        tail = text[-(longest + 16) :]
        if any(stop in tail for stop in STOP_SEQUENCES):
            return index + 1
    return len(tokens)


def eos_token_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(int(i) for i in configured)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return ids


class LMTurns:
    """Batched sampling from a ``transformers`` causal LM (left padding, stop after action tags).

    ``tokens_generated`` and ``seconds`` accumulate over calls (for tokens/s).
    """

    def __init__(self, model: Any, tokenizer: Any, settings: GenerationSettings) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.settings = settings
        self.eos_ids = eos_token_ids(model, tokenizer)
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else next(iter(sorted(self.eos_ids)), 0))
        self.tokens_generated = 0
        self.seconds = 0.0

    def __call__(self, states: Sequence[EpisodeState]) -> list[list[int]]:
        return self.generate([s.token_ids for s in states])

    def generate(self, contexts: Sequence[Sequence[int]]) -> list[list[int]]:
        """One turn for each context (token ids), in one ``generate`` call."""
        import torch

        started = time.perf_counter()
        width = max(len(c) for c in contexts)
        device = self.model.device
        input_ids = torch.full((len(contexts), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(contexts), width), dtype=torch.long)
        for row, context in enumerate(contexts):
            input_ids[row, width - len(context) :] = torch.tensor(list(context), dtype=torch.long)
            attention[row, width - len(context) :] = 1
        budget = min(self.settings.max_new_tokens, self.settings.max_len - min(map(len, contexts)))
        sampling = self.settings.temperature > 0
        options: dict[str, Any] = {
            "max_new_tokens": max(1, budget),
            "do_sample": sampling,
            "stop_strings": list(STOP_SEQUENCES),
            "tokenizer": self.tokenizer,
            "pad_token_id": self.pad_id,
            "eos_token_id": sorted(self.eos_ids) or None,
        }
        if sampling:
            options.update(temperature=self.settings.temperature, top_p=self.settings.top_p)
        else:  # greedy: silence the model's own sampling defaults
            options.update(temperature=None, top_p=None, top_k=None)
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            output = self.model.generate(
                input_ids=input_ids.to(device), attention_mask=attention.to(device), **options
            )
        if was_training:
            self.model.train()
        turns = []
        for row, context in enumerate(contexts):
            new = output[row, width:].tolist()
            new = new[: stop_index(new, self.tokenizer, self.eos_ids)]
            room = self.settings.max_len - len(context)
            turns.append(new[: max(0, room)])
        self.tokens_generated += sum(len(t) for t in turns)
        self.seconds += time.perf_counter() - started
        return turns

    @property
    def tokens_per_second(self) -> float:
        return self.tokens_generated / self.seconds if self.seconds else 0.0


class ScriptedTurns:
    """Turns of a text policy (e.g. :class:`medr3_env.baseline.ScriptedPolicy`), tokenized as a
    model would have to produce them: used to build supervised warm-start data."""

    def __init__(self, policy: Callable[[str, dict[str, Any]], str], tokenizer: Any) -> None:
        self.policy = policy
        self.tokenizer = tokenizer

    def __call__(self, states: Sequence[EpisodeState]) -> list[list[int]]:
        return [
            list(
                self.tokenizer(text=self.policy(s.observation, s.info), add_special_tokens=False)[
                    "input_ids"
                ]
            )
            for s in states
        ]


def start_episode(
    env: Any, item: QAItem, tokenizer: Any, *, seed: int | None = None
) -> EpisodeState:
    """Reset ``env`` on ``item`` and tokenize the opening prompt (chat template applied)."""
    recorder = TrajectoryRecorder(env)
    observation, info = recorder.reset(seed=seed, options={"item": item})
    prompt = render_prompt(tokenizer, info["messages"])
    ids = list(tokenizer(text=prompt, add_special_tokens=False)["input_ids"])
    question = {k: info[k] for k in ("question", "options", "answer_type")}
    return EpisodeState(
        recorder=recorder,
        token_ids=ids,
        action_mask=[False] * len(ids),
        observation=observation,
        info={**info, "turn": 0},
        question=question,
    )


def apply_turn(
    state: EpisodeState, turn: list[int], tokenizer: Any, markers: TurnMarkers, max_len: int
) -> None:
    """Append ``turn`` (action tokens), step the environment, append its feedback (masked)."""
    action_text = tokenizer.decode(turn, skip_special_tokens=False)
    state.token_ids += turn
    state.action_mask += [True] * len(turn)
    state.generated_tokens += len(turn)
    action = strip_eos(cut_at_stop(action_text), markers.eos_text)
    observation, _, terminated, truncated, info = state.recorder.step(action)
    state.turns += 1
    state.valid_turns += info.get("action") != "invalid"
    state.done = bool(terminated or truncated)
    state.last_info = info
    state.observation = observation
    state.info = {**info, **state.question}
    if state.done:
        return
    feedback = markers.wrap(observation, action_text)
    feedback_ids = list(tokenizer(text=feedback, add_special_tokens=False)["input_ids"])
    state.token_ids += feedback_ids
    state.action_mask += [False] * len(feedback_ids)
    if len(state.token_ids) >= max_len:
        state.done, state.hit_max_len = True, True


def run_lockstep(
    envs: Sequence[Any],
    items: Sequence[QAItem],
    tokenizer: Any,
    source: TurnSource,
    *,
    max_len: int = 8192,
    seed: int | None = None,
    on_turn: Callable[[Sequence[EpisodeState]], None] | None = None,
) -> list[Episode]:
    """Run one episode per (env, item) pair to the end, all unfinished episodes generating
    together each turn. ``on_turn`` sees every state after each turn (progress display)."""
    if len(envs) != len(items):
        raise ValueError(f"{len(envs)} environments for {len(items)} items; give one each")
    markers = turn_markers(tokenizer)
    states = [
        start_episode(env, item, tokenizer, seed=seed)
        for env, item in zip(envs, items, strict=True)
    ]
    for state in states:
        if len(state.token_ids) >= max_len:
            raise ValueError(
                f"the prompt of item {state.recorder.env.current_item.id!r} has "
                f"{len(state.token_ids)} tokens, more than max_len={max_len}; raise max_len"
            )
    while True:
        active = [s for s in states if not s.done]
        if not active:
            break
        for state, turn in zip(active, source(active), strict=True):
            apply_turn(state, turn, tokenizer, markers, max_len)
        if on_turn is not None:
            on_turn(states)
    return [
        Episode(
            token_ids=s.token_ids,
            action_mask=s.action_mask,
            record=s.recorder.record(),
            turns=s.turns,
            valid_turns=s.valid_turns,
            generated_tokens=s.generated_tokens,
            hit_max_len=s.hit_max_len,
        )
        for s in states
    ]


def make_envs(config: Any, count: int, *, like: Any = None) -> list[Any]:
    """``count`` environments of one :class:`~medr3_env.config.EnvConfig` sharing one searcher
    (``like``'s, when given: an existing environment to reuse as the first one)."""
    from medr3_env.env import MedR3Env

    first = like if like is not None else MedR3Env(config)
    rest = [
        MedR3Env(config, searcher=first.searcher, questions=first.questions)
        for _ in range(count - 1)
    ]
    return [first, *rest][:count]


def summarize(episodes: Sequence[Episode]) -> dict[str, Any]:
    """Mean accuracy, valid-turn rate, total reward and each raw reward term."""
    if not episodes:
        return {"episodes": 0}
    count = len(episodes)
    names = list(dict.fromkeys(t for e in episodes for t in e.record.reward_weights))
    turns = sum(e.turns for e in episodes)
    return {
        "episodes": count,
        "accuracy": sum(e.record.correct for e in episodes) / count,
        "valid_turn_rate": sum(e.valid_turns for e in episodes) / max(1, turns),
        "reward_total": sum(e.reward for e in episodes) / count,
        "reward_terms": {
            t: sum(e.record.reward_terms.get(t, 0.0) for e in episodes) / count for t in names
        },
        "turns": turns / count,
        "generated_tokens": sum(e.generated_tokens for e in episodes),
        "hit_max_len": sum(e.hit_max_len for e in episodes),
    }
