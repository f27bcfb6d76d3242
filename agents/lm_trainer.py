"""The steps of the custom GRPO loop for a causal LM (``examples/train_lm_grpo.py``).

Owns what happens inside one stage: LoRA (``peft``) or full fine-tuning setup, the supervised
warm-start step on scripted trajectories, the GRPO step (rollout, group-normalised advantages,
masked loss, KL to the stage's starting weights), greedy dev evaluation, and resumable
checkpoints. The loop that orders the stages lives in the example.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from medr3_env.agents.grpo import (
    Batch,
    group_advantages,
    grpo_loss,
    make_batch,
    sft_loss,
    token_logprobs,
)
from medr3_env.agents.rollout import (
    Episode,
    GenerationSettings,
    LMTurns,
    ScriptedTurns,
    make_envs,
    run_lockstep,
    summarize,
)
from medr3_env.agents.stage_config import StageConfig
from medr3_env.corpora.records import QAItem

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class TrainConfig(BaseModel):
    """Everything a run needs besides the stage recipes (which give the GRPO settings).

    ``None`` means "take the stage YAML's value"; the CPU preset overrides a few of them.
    """

    model_config = ConfigDict(extra="forbid")

    steps: int = Field(20, ge=0)
    """GRPO steps per stage."""
    questions_per_step: int | None = Field(None, ge=1)
    """Prompts per rollout (YAML ``rollout_batch_size``)."""
    group_size: int | None = Field(None, ge=2)
    """Samples per prompt (YAML ``n_samples_per_prompt``)."""
    learning_rate: float | None = Field(None, gt=0.0)
    """YAML ``actor_learning_rate`` (1e-6, a full fine-tuning value); LoRA usually needs ~1e-4."""
    max_new_tokens: int | None = Field(None, ge=1)
    max_len: int | None = Field(None, ge=64)
    temperature: float | None = Field(None, gt=0.0)
    micro_batch: int | None = Field(None, ge=1)
    lora_rank: int = Field(16, ge=0)
    """0: full fine-tuning (a GPU job for real models)."""
    lora_alpha: int = 32
    sft_questions: int = Field(32, ge=0)
    """Train questions whose scripted trajectories form the warm start (per stage kind)."""
    sft_epochs: int = Field(1, ge=0)
    sft_learning_rate: float = Field(5e-4, gt=0.0)
    sft_batch: int = Field(4, ge=1)
    dev_questions: int = Field(16, ge=1)
    eval_every: int = Field(10, ge=0)
    eval_stage: str = "joint"
    eval_max_turns: int | None = Field(None, ge=1)
    """Cap the dev episodes' turns below the eval stage's ``max_turns`` (cheaper on a CPU)."""
    eval_max_new_tokens: int = Field(192, ge=1)
    save_every: int | None = Field(None, ge=1)
    """Checkpoint every N steps (YAML ``save_steps``)."""
    seed: int = 0
    dataset: str | None = None
    """Question-set spec; ``None``: the stage file's ``dataset`` (the starter set by default)."""


class StageRun:
    """One stage's trainable model, optimizer, environments and bookkeeping."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        stage: StageConfig,
        config: TrainConfig,
        folder: Path,
        *,
        name: str | None = None,
        learning_rate: float | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.stage = stage
        self.config = config
        self.name = name or stage.name
        self.folder = folder
        self.grpo = stage.grpo
        self.group = config.group_size or self.grpo.n_samples_per_prompt
        self.prompts = config.questions_per_step or self.grpo.rollout_batch_size
        self.micro = config.micro_batch or self.grpo.micro_train_batch_size
        self.generation = GenerationSettings(
            max_new_tokens=config.max_new_tokens or self.grpo.max_new_tokens,
            temperature=config.temperature or self.grpo.temperature,
            top_p=self.grpo.top_p,
            max_len=config.max_len or self.grpo.max_len,
        )
        self.model, self.reference = attach_trainable(model, config)
        self.optimizer = torch.optim.AdamW(
            [p for p in self.model.parameters() if p.requires_grad],
            lr=learning_rate or config.learning_rate or self.grpo.actor_learning_rate,
        )
        self.step = 0
        self.rng = random.Random(config.seed * 1000 + stage.number)
        self._envs: list[Any] = []

    # ------------------------------------------------------------------ checkpoints
    @property
    def checkpoint(self) -> Path:
        return self.folder / "checkpoint"

    def save(self) -> Path:
        """Trainable weights, optimizer, step and RNG states: enough to resume the stage. Written
        to a sibling folder first and swapped in, so an interrupted save leaves the last one."""
        staging = self.checkpoint.with_name("checkpoint.partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        self.model.save_pretrained(staging)
        torch.save(self.optimizer.state_dict(), staging / "optimizer.pt")
        state = {"step": self.step, "stage": self.name, "rng": self.rng.getstate()}
        (staging / "trainer_state.json").write_text(json.dumps(state), encoding="utf-8")
        replace_folder(staging, self.checkpoint)
        return self.checkpoint

    def resume(self) -> bool:
        """Load :meth:`save`'s checkpoint if there is one; returns whether it did."""
        state_file = self.checkpoint / "trainer_state.json"
        if not state_file.is_file():
            return False
        state = json.loads(state_file.read_text(encoding="utf-8"))
        if is_peft(self.model):
            from peft import set_peft_model_state_dict
            from peft.utils import load_peft_weights

            set_peft_model_state_dict(self.model, load_peft_weights(str(self.checkpoint)))
        else:
            from transformers import AutoModelForCausalLM

            saved = AutoModelForCausalLM.from_pretrained(self.checkpoint)
            self.model.load_state_dict(saved.state_dict())
        self.optimizer.load_state_dict(
            torch.load(self.checkpoint / "optimizer.pt", weights_only=False)
        )
        self.step = int(state["step"])
        rng = state["rng"]
        self.rng.setstate((rng[0], tuple(rng[1]), rng[2]))
        return True

    def finish(self, out: Path) -> Any:
        """Merge LoRA into the weights, save them with the tokenizer to ``out`` (complete or not
        at all); returns the plain model the next stage starts from."""
        model = self.model.merge_and_unload() if is_peft(self.model) else self.model
        staging = out.with_name(out.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        model.save_pretrained(staging)
        self.tokenizer.save_pretrained(staging)
        replace_folder(staging, out)
        return model

    # ------------------------------------------------------------------ steps
    def envs(self, count: int) -> list[Any]:
        if len(self._envs) < count:
            config = self.stage.env_config(dataset=self.config.dataset, split="train")
            self._envs = make_envs(config, count, like=self._envs[0] if self._envs else None)
        return self._envs[:count]

    def sample_questions(self) -> list[QAItem]:
        items = list(self.envs(1)[0].questions.items)
        return self.rng.sample(items, min(self.prompts, len(items)))

    def grpo_step(self) -> dict[str, Any]:
        """Roll out ``group`` samples of each sampled question, update on the generated tokens."""
        started = time.perf_counter()
        questions = self.sample_questions()
        items = [q for q in questions for _ in range(self.group)]
        sampler = LMTurns(self.model, self.tokenizer, self.generation)
        torch.manual_seed(self.config.seed * 100_003 + self.stage.number * 1009 + self.step)
        episodes = run_lockstep(
            self.envs(len(items)),
            items,
            self.tokenizer,
            sampler,
            max_len=self.generation.max_len,
            on_turn=print_turn,
        )
        rewards = torch.tensor([e.reward for e in episodes]).view(len(questions), self.group)
        advantages = group_advantages(rewards).flatten()
        stats = self.update(episodes, advantages, sft=False)
        self.step += 1
        summary = summarize(episodes)
        return {
            **summary,
            **stats,
            "tokens_per_s": sampler.tokens_per_second,
            "groups_with_signal": int((rewards.std(dim=1) > 0).sum()),
            "seconds": time.perf_counter() - started,
        }

    def sft_step(self, episodes: Sequence[Episode]) -> dict[str, Any]:
        """One optimizer step of next-token loss on the policy's turns of ``episodes``."""
        started = time.perf_counter()
        stats = self.update(episodes, None, sft=True)
        self.step += 1
        tokens = sum(sum(e.action_mask) for e in episodes)
        return {**stats, "trained_tokens": tokens, "seconds": time.perf_counter() - started}

    def update(
        self, episodes: Sequence[Episode], advantages: torch.Tensor | None, *, sft: bool
    ) -> dict[str, Any]:
        """Accumulate the loss over micro-batches, clip the gradient norm to 1, step."""
        device = self.model.device
        pad = self.tokenizer.pad_token_id or 0
        rows = list(range(len(episodes)))
        if not sft:
            assert advantages is not None
            rows = [i for i in rows if float(advantages[i]) != 0.0]
            if not rows:  # every group scored alike: no gradient, nothing to compute
                return {"loss": 0.0, "kl": None, "trained_rows": 0}
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        losses, kls = [], []
        for start in range(0, len(rows), self.micro):
            chunk = rows[start : start + self.micro]
            batch = make_batch(
                [episodes[i].token_ids for i in chunk],
                [episodes[i].action_mask for i in chunk],
                pad,
            ).to(device)
            logp = token_logprobs(self.model, batch)
            if sft:
                loss = sft_loss(logp, batch.action_mask)
                stats: dict[str, float] = {}
            else:
                assert advantages is not None
                ref = self.reference_logprobs(batch)
                loss, stats = grpo_loss(
                    logp,
                    advantages[chunk].to(device),
                    batch.action_mask,
                    ref_logp=ref,
                    eps_clip=self.grpo.eps_clip,
                    kl_coef=self.grpo.init_kl_coef,
                )
            (loss * len(chunk) / len(rows)).backward()
            losses.append(float(loss.detach()) * len(chunk))
            if "kl" in stats:
                kls.append(stats["kl"] * len(chunk))
        torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], 1.0)
        self.optimizer.step()
        return {
            "loss": sum(losses) / len(rows),
            "kl": sum(kls) / len(rows) if kls else None,
            "trained_rows": len(rows),
        }

    def reference_logprobs(self, batch: Batch) -> torch.Tensor:
        """Log-probs under the stage's starting weights (LoRA switched off, or a frozen copy)."""
        with torch.no_grad():
            if self.reference is not None:
                return token_logprobs(self.reference, batch)
            with self.model.disable_adapter():
                return token_logprobs(self.model, batch)


def replace_folder(new: Path, target: Path) -> None:
    """Put the finished folder ``new`` at ``target``, dropping what was there."""
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)


def print_turn(states: Sequence[Any]) -> None:
    """One line per rollout turn, so a slow CPU run shows it is alive."""
    running = sum(not s.done for s in states)
    tokens = sum(s.generated_tokens for s in states)
    print(f"  turn done: {running}/{len(states)} episodes running, {tokens} tokens", flush=True)


def is_peft(model: Any) -> bool:
    return hasattr(model, "merge_and_unload") and hasattr(model, "disable_adapter")


def attach_trainable(model: Any, config: TrainConfig) -> tuple[Any, Any]:
    """(trainable model, frozen reference or ``None``): LoRA adapters on the attention and MLP
    projections, whose disabled state is the reference; or the whole model plus a frozen copy."""
    if config.lora_rank == 0:
        import copy

        reference = copy.deepcopy(model).eval()
        for parameter in reference.parameters():
            parameter.requires_grad_(False)
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        return model, reference
    from peft import LoraConfig, get_peft_model

    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets = [t for t in LORA_TARGETS if t in names]
    if not targets:
        raise ValueError(
            f"no LoRA target modules ({', '.join(LORA_TARGETS)}) in {type(model).__name__}; "
            "use --lora-rank 0 for full fine-tuning"
        )
    lora = LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=0.0,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora), None


def scripted_episodes(
    stage: StageConfig, config: TrainConfig, tokenizer: Any, items: Sequence[QAItem]
) -> list[Episode]:
    """The scripted baseline's episodes on ``items`` in ``stage``, tokenized like rollouts."""
    from medr3_env.baseline import ScriptedPolicy

    if not items:
        return []
    env_config = stage.env_config(dataset=config.dataset, split="train")
    envs = make_envs(env_config, len(items))
    source = ScriptedTurns(ScriptedPolicy(envs[0].config.entity_extractor), tokenizer)
    return run_lockstep(envs, items, tokenizer, source, max_len=stage.grpo.max_len)


def evaluate(
    model: Any,
    tokenizer: Any,
    stage: StageConfig,
    config: TrainConfig,
    *,
    envs: list[Any] | None = None,
) -> tuple[dict[str, Any], list[Episode]]:
    """Greedy episodes on the first ``dev_questions`` dev questions: summary and episodes."""
    if envs is None:
        envs = dev_envs(stage, config)
    items = list(envs[0].questions.items[: config.dev_questions])
    envs = envs[: len(items)]
    settings = GenerationSettings(
        max_new_tokens=config.eval_max_new_tokens,
        temperature=0.0,
        max_len=config.max_len or stage.grpo.max_len,
    )
    sampler = LMTurns(model, tokenizer, settings)
    started = time.perf_counter()
    episodes = run_lockstep(
        envs, items, tokenizer, sampler, max_len=settings.max_len, on_turn=print_turn
    )
    summary = {
        **summarize(episodes),
        "tokens_per_s": sampler.tokens_per_second,
        "seconds": time.perf_counter() - started,
        "eval_stage": stage.name,
        "dev_ids": [item.id for item in items],
    }
    return summary, episodes


def dev_envs(stage: StageConfig, config: TrainConfig) -> list[Any]:
    """Environments for greedy dev evaluation in ``stage`` (turns capped by ``eval_max_turns``)."""
    overrides: dict[str, Any] = {"dataset": config.dataset, "split": "dev"}
    if config.eval_max_turns:
        overrides["max_turns"] = min(config.eval_max_turns, stage.env.max_turns)
    return make_envs(stage.env_config(**overrides), config.dev_questions)


class MetricsLog:
    """Appends one JSON object per line (``medr3 plot`` reads the ``step``/``stage`` schema)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def drop_from(self, stage: str, step: int) -> None:
        """Remove ``stage``'s lines at ``stage_step >= step`` (written after the checkpoint a
        resumed run restarts from), so every step appears once."""
        if not self.path.is_file():
            return
        rows = [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines()]
        kept = [r for r in rows if r.get("stage") != stage or r.get("stage_step", -1) < step]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
