"""The causal-LM GRPO loop (``examples/train_lm_grpo.py``) on a CPU with a tiny random model:
token masks, losses, advantages, batched generation, checkpoints and resuming, ``--smoke``."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # trains tiny LMs; run with `python -m pytest -m slow`

torch = pytest.importorskip("torch", reason="needs torch (the `train` extra)")
pytest.importorskip("transformers", reason="needs transformers (the `train` extra)")
pytest.importorskip("peft", reason="needs peft (the `train` extra)")

from medr3_env import MedR3Env  # noqa: E402
from medr3_env.agents.grpo import (  # noqa: E402
    group_advantages,
    grpo_loss,
    make_batch,
    sft_loss,
    token_logprobs,
)
from medr3_env.agents.rollout import (  # noqa: E402
    GenerationSettings,
    LMTurns,
    ScriptedTurns,
    run_lockstep,
)
from medr3_env.baseline import ScriptedPolicy  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "train_lm_grpo.py"
STAGES = ("warmstart", "reasoning", "retrieval", "joint")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """A one-layer model gains nothing from threads, which only add synchronisation."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from medr3_env.agents.hf_policy import load_model
    from medr3_env.agents.tiny_lm import build_tiny_model

    folder = build_tiny_model(tmp_path_factory.mktemp("tiny-lm"))
    model, tokenizer = load_model(f"hf:{folder}", device="cpu")
    return folder, model, tokenizer


def joint_envs(searcher, count, **overrides):
    return [
        MedR3Env(stage="joint", split="train", searcher=searcher, **overrides) for _ in range(count)
    ]


@pytest.fixture(scope="module")
def scripted(tiny, starter_searcher):
    """Scripted episodes (search → read → answer) tokenized with the tiny model's tokenizer."""
    _, _, tokenizer = tiny
    envs = joint_envs(starter_searcher, 3)
    items = list(envs[0].questions.items[:3])
    policy = ScriptedPolicy(envs[0].config.entity_extractor)
    return run_lockstep(envs, items, tokenizer, ScriptedTurns(policy, tokenizer))


# ------------------------------------------------------------------------------ masks and losses
def test_the_action_mask_covers_exactly_the_policy_turns(tiny, scripted):
    _, _, tokenizer = tiny
    for episode in scripted:
        assert len(episode.token_ids) == len(episode.action_mask)
        spans, current = [], []
        for token, is_action in zip(episode.token_ids, episode.action_mask, strict=True):
            if is_action:
                current.append(token)
            elif current:
                spans.append(current)
                current = []
        if current:
            spans.append(current)
        turns = episode.record.turns
        assert len(spans) == len(turns) >= 2
        for span, turn in zip(spans, turns, strict=True):
            assert tokenizer.decode(span) == turn.action_text
        feedback = tokenizer.decode(
            [t for t, a in zip(episode.token_ids, episode.action_mask, strict=True) if not a]
        )
        for turn in turns[:-1]:  # the environment's answers are in the masked part, verbatim
            assert turn.observation in feedback


@pytest.mark.parametrize("loss_kind", ["grpo", "sft"])
def test_the_gradient_is_exactly_zero_on_environment_feedback_tokens(tiny, scripted, loss_kind):
    _, model, tokenizer = tiny
    batch = make_batch(
        [e.token_ids for e in scripted], [e.action_mask for e in scripted], tokenizer.pad_token_id
    )
    captured = {}

    def keep_logits(_module, _inputs, output):
        output.retain_grad()
        captured["logits"] = output

    handle = model.get_output_embeddings().register_forward_hook(keep_logits)
    try:
        model.zero_grad()
        logp = token_logprobs(model, batch)
        if loss_kind == "grpo":
            loss, _ = grpo_loss(logp, torch.tensor([1.0, -0.5, 2.0]), batch.action_mask)
        else:
            loss = sft_loss(logp, batch.action_mask)
        loss.backward()
    finally:
        handle.remove()
    # logits[:, t] predicts token t + 1, exactly what action_mask[:, t] describes.
    grad = captured["logits"].grad[:, :-1].abs().sum(dim=-1)
    feedback = ~batch.action_mask & batch.attention_mask[:, 1:].bool()
    assert feedback.sum() > 100 and batch.action_mask.sum() > 50
    assert torch.count_nonzero(grad[feedback]) == 0
    assert bool((grad[batch.action_mask] > 0).all())
    assert torch.count_nonzero(captured["logits"].grad[:, -1]) == 0


def test_advantages_are_normalised_within_each_group():
    rewards = torch.tensor([[0.0, 1.0, 1.0, 2.0], [5.0, 5.0, 5.0, 5.0], [-1.0, 3.0, 0.5, 0.25]])
    advantages = group_advantages(rewards)
    assert torch.allclose(advantages.mean(dim=1), torch.zeros(3), atol=1e-6)
    assert torch.allclose(advantages[[0, 2]].std(dim=1), torch.ones(2), atol=1e-4)
    assert torch.equal(advantages[1], torch.zeros(4))  # no spread, no signal
    # Shifting or scaling one group leaves every group's advantages unchanged.
    moved = rewards.clone()
    moved[0] = moved[0] * 3 + 7
    assert torch.allclose(group_advantages(moved), advantages, atol=1e-4)
    with pytest.raises(ValueError, match="samples>=2"):
        group_advantages(torch.tensor([[1.0], [2.0]]))


def test_kl_to_the_start_is_zero_before_any_update_and_positive_after(tiny, scripted):
    from medr3_env.agents.lm_trainer import StageRun, TrainConfig
    from medr3_env.agents.stage_config import load_stage_config

    folder, _, tokenizer = tiny
    from medr3_env.agents.hf_policy import load_model

    model, _ = load_model(f"hf:{folder}", device="cpu")
    run = StageRun(
        model, tokenizer, load_stage_config("joint"), TrainConfig(lora_rank=4), Path("unused"),
        learning_rate=5e-2,
    )  # fmt: skip
    batch = make_batch([e.token_ids for e in scripted], [e.action_mask for e in scripted], 0)
    with torch.no_grad():
        logp = token_logprobs(run.model, batch)
    _, stats = grpo_loss(
        logp, torch.ones(3), batch.action_mask, ref_logp=run.reference_logprobs(batch)
    )
    assert stats["kl"] == pytest.approx(0.0, abs=1e-7)  # LoRA starts as the identity
    for _ in range(3):
        run.sft_step(scripted)
    with torch.no_grad():
        logp = token_logprobs(run.model, batch)
    _, stats = grpo_loss(
        logp, torch.ones(3), batch.action_mask, ref_logp=run.reference_logprobs(batch)
    )
    assert stats["kl"] > 1e-4


# ------------------------------------------------------------------------------ batched generation
def test_batched_greedy_generation_matches_one_episode_at_a_time(tiny, starter_searcher):
    _, model, tokenizer = tiny
    settings = GenerationSettings(max_new_tokens=6, max_len=2048)
    envs = joint_envs(starter_searcher, 3, max_turns=2)
    items = list(envs[0].questions.items[:3])
    batched = LMTurns(model, tokenizer, settings)
    together = run_lockstep(envs, items, tokenizer, batched)
    alone = [
        run_lockstep([env], [item], tokenizer, LMTurns(model, tokenizer, settings))[0]
        for env, item in zip(envs, items, strict=True)
    ]
    for a, b in zip(together, alone, strict=True):
        assert a.token_ids == b.token_ids and a.action_mask == b.action_mask
        assert [t.action_text for t in a.record.turns] == [t.action_text for t in b.record.turns]
    assert batched.tokens_generated == sum(e.generated_tokens for e in together) > 0


def test_a_turn_stops_after_the_first_closing_action_tag(tiny):
    from medr3_env.agents.rollout import eos_token_ids, stop_index

    _, model, tokenizer = tiny
    ids = tokenizer(
        "<think>x</think><search>aspirin</search> trailing words <read>", add_special_tokens=False
    )["input_ids"]
    kept = ids[: stop_index(ids, tokenizer, eos_token_ids(model, tokenizer))]
    assert tokenizer.decode(kept).rstrip().endswith("</search>")
    assert "trailing" not in tokenizer.decode(kept)
    eos = tokenizer.eos_token_id
    assert stop_index([ids[0], eos, ids[1]], tokenizer, {eos}) == 2


# ------------------------------------------------------------------------------ stages and resuming
def test_a_resumed_stage_continues_from_its_checkpoint(tiny, scripted, tmp_path):
    from medr3_env.agents.hf_policy import load_model
    from medr3_env.agents.lm_trainer import StageRun, TrainConfig
    from medr3_env.agents.stage_config import load_stage_config

    folder, _, tokenizer = tiny
    stage, config = load_stage_config("reasoning"), TrainConfig(lora_rank=4)
    first = StageRun(
        load_model(f"hf:{folder}", device="cpu")[0], tokenizer, stage, config, tmp_path
    )
    for _ in range(2):
        first.sft_step(scripted[:2])
    first.save()
    again = StageRun(
        load_model(f"hf:{folder}", device="cpu")[0], tokenizer, stage, config, tmp_path
    )
    assert again.resume() and again.step == 2
    trained = {n: p for n, p in first.model.named_parameters() if p.requires_grad}
    restored = dict(again.model.named_parameters())
    assert trained and all(torch.equal(p, restored[n]) for n, p in trained.items())
    assert any(torch.count_nonzero(p) for n, p in trained.items() if "lora_B" in n)
    assert (
        again.optimizer.state_dict()["state"].keys() == first.optimizer.state_dict()["state"].keys()
    )
    assert again.rng.random() == first.rng.random()


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, starter_searcher):
    """``python examples/train_lm_grpo.py --smoke --out DIR`` exactly as a user runs it."""
    out = tmp_path_factory.mktemp("smoke")
    completed = subprocess.run(
        [sys.executable, str(EXAMPLE), "--smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ},
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return out


def metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_smoke_runs_every_stage_and_writes_metrics_and_checkpoints(smoke_run):
    rows = metrics(smoke_run / "metrics.jsonl")
    for stage in STAGES:
        steps = [r["stage_step"] for r in rows if r["stage"] == stage]
        assert steps == sorted(set(steps)) and len(steps) >= 2, stage
    for row in rows:
        assert isinstance(row["loss"], float)
        if row["stage"] == "warmstart":
            assert row["trained_tokens"] > 0
            continue
        for key in ("reward_total", "accuracy", "valid_turn_rate", "tokens_per_s", "kl"):
            assert key in row, key
        assert 0.0 <= row["valid_turn_rate"] <= 1.0 and row["tokens_per_s"] > 0
        assert set(row["reward_terms"]) == {"answer", "format", "retrieval", "evidence"}
    for folder in ("stage0_warmstart", "stage1_reasoning", "stage2_retrieval", "stage3_joint"):
        state = json.loads((smoke_run / folder / "checkpoint" / "trainer_state.json").read_text())
        assert state["step"] == 2
        assert (smoke_run / folder / "checkpoint" / "adapter_model.safetensors").is_file()
        assert (smoke_run / folder / "final" / "model.safetensors").is_file()
    results = json.loads((smoke_run / "evaluations.json").read_text())
    assert list(results) == ["before", *STAGES]
    assert all(r["episodes"] == 2 and r["eval_stage"] == "joint" for r in results.values())
    dev = metrics(smoke_run / "dev.jsonl")
    assert {r["label"] for r in dev} >= {"before", *STAGES}
    episodes = metrics(smoke_run / "dev-trajectories" / "joint.jsonl")
    assert [e["item"]["id"] for e in episodes] == results["joint"]["dev_ids"]


def test_medr3_plot_draws_the_training_metrics(smoke_run, tmp_path):
    pytest.importorskip("matplotlib", reason="needs matplotlib (the `viz` extra)")
    from medr3_env.plotting import load_log, plot_logs

    curves = load_log(smoke_run / "metrics.jsonl")
    assert [s for s, _, _ in curves.stages] == list(STAGES)
    assert "total" in curves.terms and "accuracy" in curves.terms
    written = plot_logs([smoke_run / "metrics.jsonl", smoke_run / "dev.jsonl"], tmp_path)
    assert any(p.suffix == ".png" and p.stat().st_size > 0 for p in written)


def test_rerunning_resumes_an_unfinished_stage_and_skips_finished_ones(smoke_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(smoke_run, out)
    shutil.rmtree(out / "stage3_joint" / "final")  # stage 3 "crashed" after its checkpoint
    evaluations = json.loads((out / "evaluations.json").read_text())
    del evaluations["retrieval"]  # stage 2 stopped after saving its weights, before evaluating
    (out / "evaluations.json").write_text(json.dumps(evaluations))
    before = metrics(out / "metrics.jsonl")
    spec = importlib.util.spec_from_file_location("train_lm_grpo", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--smoke", "--out", str(out), "--stage-steps", "2,2,3"])
    after = metrics(out / "metrics.jsonl")
    for stage in ("warmstart", "reasoning", "retrieval"):
        assert [r for r in after if r["stage"] == stage] == [
            r for r in before if r["stage"] == stage
        ]
    assert [r["stage_step"] for r in after if r["stage"] == "joint"] == [0, 1, 2]
    state = json.loads((out / "stage3_joint" / "checkpoint" / "trainer_state.json").read_text())
    assert state["step"] == 3 and (out / "stage3_joint" / "final" / "config.json").is_file()
    assert list(json.loads((out / "evaluations.json").read_text())) == [
        "before", "warmstart", "reasoning", "joint", "retrieval"
    ]  # fmt: skip
    assert not list(out.glob("*/*.partial"))
