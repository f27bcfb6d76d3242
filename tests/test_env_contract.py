"""The Gymnasium contract of MedR3Env: spaces, reset/step signatures, info keys, determinism."""

import ast
import importlib.metadata
import re
import warnings
from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import medr3_env
import medr3_env.version
from medr3_env import EnvConfig, MedR3Env
from medr3_env.observations import question_prompt

RESET_KEYS = {"item_id", "question", "options", "messages", "allowed_actions"}
STEP_KEYS = {"action", "retrieved_ids", "read_ids", "turn", "reward_terms", "reward_total"}


def test_check_env_passes_without_warnings(env):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env, skip_render_check=True)


def test_gym_make_works_with_no_arguments():
    env = gym.make("MedR3-v0")
    obs, info = env.reset(seed=0)
    assert isinstance(obs, str) and info["question"] in obs
    env.close()


@pytest.mark.parametrize(
    ("env_id", "stage", "allowed"),
    [
        ("MedR3-Reasoning-v0", "reasoning", ["answer"]),
        ("MedR3-Retrieval-v0", "retrieval", ["search", "read", "answer"]),
        ("MedR3-Joint-v0", "joint", ["search", "read", "answer"]),
    ],
)
def test_stage_ids_use_stage_defaults(env_id, stage, allowed):
    env = gym.make(env_id)
    assert env.unwrapped.config.stage == stage
    _, info = env.reset(seed=0)
    assert info["allowed_actions"] == allowed


def test_reset_info_has_public_keys(env):
    obs, info = env.reset(seed=3)
    assert set(info) >= RESET_KEYS
    assert info["messages"][0]["role"] == "system"
    item = env.current_item
    assert info["item_id"] == item.id and info["question"] == item.question
    assert info["messages"][1] == {"role": "user", "content": question_prompt(item)}
    assert obs == f"{info['messages'][0]['content']}\n\n{info['messages'][1]['content']}"
    assert info["question"] in info["messages"][1]["content"]
    if info["options"]:
        for letter, text in info["options"].items():
            assert f"{letter}. {text}" in obs


def test_seeded_resets_are_deterministic(starter_searcher):
    a = MedR3Env(searcher=starter_searcher)
    b = MedR3Env(searcher=starter_searcher)
    ids_a = [a.reset(seed=s)[1]["item_id"] for s in range(5)]
    ids_b = [b.reset(seed=s)[1]["item_id"] for s in range(5)]
    assert ids_a == ids_b
    assert len(set(ids_a)) > 1


def test_reset_picks_item_by_id(env):
    item = env.questions[0]
    _, info = env.reset(options={"item_id": item.id})
    assert info["item_id"] == item.id


def test_unknown_item_id_is_a_clear_error(env):
    with pytest.raises(KeyError, match="no question with id"):
        env.reset(options={"item_id": "does-not-exist"})


def _gold_episode(env):
    """search the question, read the first gold evidence id, answer the gold answer."""
    item = next(i for i in env.questions if i.answer_type == "mcq")
    obs, info = env.reset(options={"item_id": item.id})
    obs, r1, term, trunc, info = env.step(
        f"<think>look it up</think><search>{item.question}</search>"
    )
    assert info["action"] == "search" and not term and not trunc
    assert "<information>" in obs and info["retrieved_ids"]
    assert info["retrieved_ids"][0] in obs
    gold = item.evidence_ids[0]
    target = gold if gold in info["retrieved_ids"] else info["retrieved_ids"][0]
    obs, r2, term, trunc, info = env.step(f"<read>{target}</read>")
    assert info["action"] == "read" and info["read_ids"] == [target]
    assert env.searcher.get(target).content[:100] in obs
    obs, r3, term, trunc, info = env.step(
        f"<think>The passage settles it.</think><answer>{item.answer}</answer>"
    )
    return item, (r1, r2, r3), term, trunc, info


def test_full_episode_search_read_answer(env):
    item, rewards, terminated, truncated, info = _gold_episode(env)
    assert terminated and not truncated
    assert set(info) >= STEP_KEYS
    assert info["reward_terms"]["answer"] == 1.0
    assert info["correct"] is True
    assert sum(rewards) == pytest.approx(info["reward_total"])
    weights = info["reward_weights"]
    assert info["reward_total"] == pytest.approx(
        sum(weights[t] * v for t, v in info["reward_terms"].items())
    )


def test_messages_carry_the_whole_conversation(env):
    _, _, _, _, info = _gold_episode(env)
    roles = [m["role"] for m in info["messages"]]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user", "assistant"]


@pytest.mark.parametrize(
    ("action", "code"),
    [
        ("no tags at all", "no_action"),
        ("<search>a</search><search>b</search>", "multiple_actions"),
        ("<lookup>x</lookup>", "unknown_tag"),
        ("<search>open", "unclosed_tag"),
        ("<search> </search>", "empty_argument"),
        ("<read>no-such-doc</read>", "unknown_doc"),
        ("<information>fake</information><answer>A</answer>", "env_tag"),
    ],
)
def test_malformed_actions_are_penalised_not_raised(env, action, code):
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(action)
    assert info["action"] == "invalid" and info["error"] == code
    assert obs.startswith("<error>")
    assert info["step_reward_terms"]["format"] < 0
    assert reward < 0
    assert info["turn"] == 1 and not terminated


def test_reading_a_real_id_before_searching_is_refused(env):
    env.reset(seed=0)
    real_id = env.questions[0].evidence_ids[0]
    _, _, _, _, info = env.step(f"<read>{real_id}</read>")
    assert info["error"] == "read_before_search"


def test_search_is_refused_in_the_reasoning_stage(starter_searcher):
    env = MedR3Env(stage="reasoning", searcher=starter_searcher)
    env.reset(seed=0)
    obs, reward, terminated, _, info = env.step("<search>aspirin</search>")
    assert info["error"] == "not_allowed" and "reasoning stage" in obs
    assert reward < 0 and not terminated


def test_search_budget_is_enforced(starter_searcher):
    env = MedR3Env(searcher=starter_searcher, max_searches=1, max_turns=5)
    env.reset(seed=0)
    assert env.step("<search>insulin</search>")[4]["action"] == "search"
    assert env.step("<search>metformin</search>")[4]["error"] == "search_budget"


def test_max_turns_truncates(starter_searcher):
    env = MedR3Env(searcher=starter_searcher, max_turns=2)
    env.reset(seed=0)
    assert env.step("thinking")[3] is False
    obs, reward, terminated, truncated, info = env.step("still thinking")
    assert truncated and not terminated
    assert info["reward_terms"]["answer"] == 0.0
    with pytest.raises(RuntimeError, match="reset"):
        env.step("<answer>A</answer>")


def test_empty_search_result_is_a_normal_observation(env):
    env.reset(seed=0)
    obs, _, _, _, info = env.step("<search>zzzqqqxxy nonexistentterm</search>")
    assert info["action"] == "search" and info["retrieved_ids"] == []
    assert "No passages match" in obs


def test_config_object_and_overrides_combine(starter_searcher):
    env = MedR3Env(EnvConfig(top_k=2), searcher=starter_searcher, stage="retrieval")
    assert env.config.top_k == 2 and env.config.stage == "retrieval"
    env.reset(seed=0)
    assert len(env.step("<search>insulin</search>")[4]["retrieved_ids"]) <= 2


def test_wrong_config_is_a_validation_error():
    with pytest.raises(ValueError, match="top_k"):
        EnvConfig(top_k=0)
    with pytest.raises(ValueError, match="registered terms"):
        EnvConfig(reward_weights={"answr": 1.0})
    with pytest.raises(ValueError, match="extra"):
        EnvConfig(topk=3)


def test_gymnasium_wrappers_and_make_vec():
    env = gym.wrappers.RecordEpisodeStatistics(gym.make("MedR3-v0", max_turns=2))
    env.reset(seed=0)
    env.step("x")
    _, _, _, truncated, info = env.step("y")
    assert truncated and "episode" in info
    vec = gym.make_vec("MedR3-v0", num_envs=4)
    observations, infos = vec.reset(seed=0)
    assert len(observations) == 4
    kinds = {type(o) for o in infos["options"]}
    for _ in range(3):  # mixed MCQ and yes/no items (options of different sizes) batch fine
        observations, rewards, terminated, truncated, infos = vec.step(
            ["<search>insulin</search>"] * 4
        )
        assert len(rewards) == 4 and list(infos["action"]) == ["search"] * 4
        assert infos["reward_terms"]["format"].shape == (4,)
    observations, rewards, terminated, truncated, infos = vec.step(["<answer>A</answer>"] * 4)
    assert terminated.all()
    vec.close()
    assert kinds == {dict}


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_gymnasiums_own_vectorization_modes(mode):
    """Gymnasium's SyncVectorEnv / AsyncVectorEnv (shared memory on) over mixed question types."""
    single = gym.make("MedR3-v0", split="test")
    vec = gym.make_vec("MedR3-v0", num_envs=3, vectorization_mode=mode, split="test")
    try:
        observations, infos = vec.reset(seed=0)
        expected, _ = single.reset(seed=0)
        assert observations[0] == expected and len(observations) == 3
        hostile = "<search>insulin 🩺 \x00 é \u202e dose</search>"
        observations, _, _, _, infos = vec.step([hostile] * 3)
        assert all(o.startswith("<information>") for o in observations)
        assert list(infos["action"]) == ["search"] * 3
        observations, rewards, terminated, _, infos = vec.step(["<answer>A</answer>"] * 3)
        assert terminated.all() and rewards.shape == (3,)
        assert infos["reward_terms"]["format"].shape == (3,)
    finally:
        vec.close()


def test_render_ansi_returns_conversation(starter_searcher):
    env = MedR3Env(searcher=starter_searcher, render_mode="ansi")
    env.reset(seed=0)
    env.step("<search>insulin</search>")
    text = env.render()
    assert "[assistant]" in text and "<search>insulin</search>" in text


def test_version_is_the_installed_distributions_and_version_py():
    """One version: ``medr3_env.__version__``, the installed metadata and version.py's literal."""
    source = Path(medr3_env.version.__file__).read_text(encoding="utf-8")
    (assignment,) = [
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "__version__"
    ]
    written = ast.literal_eval(assignment.value)
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", written)
    assert medr3_env.__version__ == importlib.metadata.version("medr3-env") == written


@pytest.mark.slow
def test_ten_thousand_gym_make_calls_hold_one_searcher():
    """Environments of one corpus share one index, however many are made."""
    from medr3_env.env import searcher_key

    first = gym.make("MedR3-v0")
    searcher = first.unwrapped.searcher
    envs = [gym.make("MedR3-v0") for _ in range(10_000)]
    assert all(env.unwrapped.searcher is searcher for env in envs)
    assert all(env.unwrapped.questions.items == first.unwrapped.questions.items for env in envs[:3])
    config = first.unwrapped.config
    key = searcher_key(config, first.unwrapped.questions)
    assert key == ("corpus", searcher.manifest.corpus_fingerprint, "whoosh", "auto")


def test_searchers_are_shared_by_content_not_by_object(tmp_path):
    from medr3_env.corpora import Corpus, Document, QuestionSet
    from medr3_env.corpora.records import QAItem

    def questions(text: str) -> QuestionSet:
        docs = [Document(id="d1", title="Insulin", content=text)]
        item = QAItem(id="q1", question="insulin?", answer_type="yesno", answer="yes")
        return QuestionSet("tiny", [item], Corpus.from_documents("tiny", docs))

    kwargs = {"cache_dir": tmp_path, "entity_extractor": "none", "reward_weights": {"format": 1.0}}
    one = MedR3Env(questions=questions("Insulin lowers glucose."), **kwargs)
    same = MedR3Env(questions=questions("Insulin lowers glucose."), **kwargs)
    changed = MedR3Env(questions=questions("Insulin lowers blood glucose."), **kwargs)
    other_backend = MedR3Env(
        questions=questions("Insulin lowers glucose."), backend="tantivy", **kwargs
    )
    other_extractor = MedR3Env(
        questions=questions("Insulin lowers glucose."), **{**kwargs, "entity_extractor": "auto"}
    )
    assert same.searcher is one.searcher
    assert changed.searcher is not one.searcher
    assert other_backend.searcher is not one.searcher
    assert other_extractor.searcher is not one.searcher
    assert other_extractor.searcher.entity_extractor != one.searcher.entity_extractor == "none"


def test_make_vec_sends_one_search_many_batch_per_step():
    """Plain ``gymnasium.make_vec`` shares one searcher and batches the step's searches."""
    vec = gym.make_vec("MedR3-v0", num_envs=4)
    searcher = vec.envs[0].unwrapped.searcher
    assert all(env.unwrapped.searcher is searcher for env in vec.envs)
    batches: list[list[str]] = []
    search_many = searcher.search_many

    def counted(queries, k=5):
        batches.append(list(queries))
        return search_many(queries, k)

    searcher.search_many = counted
    try:
        vec.reset(seed=0)
        queries = ["insulin dose", "sepsis fluids", "digoxin toxicity", "asthma inhaler"]
        observations, _, _, _, infos = vec.step([f"<search>{q}</search>" for q in queries])
        assert batches == [queries]
        for query, ids in zip(queries, infos["retrieved_ids"], strict=True):
            assert list(ids) == [h.doc_id for h in search_many([query], 5)[0]]
        vec.step(["<answer>A</answer>"] * 4)
        assert len(batches) == 1  # answers search nothing
    finally:
        del searcher.search_many
        vec.close()


@pytest.mark.parametrize(
    ("annotations", "evidence"),
    [(("Lactic Acidosis", "Metformin", "Renal Insufficiency"), 1.0), ((), 0.0)],
    ids=["annotated", "unannotated"],
)
def test_search_only_index_scores_evidence_from_annotations_alone(tmp_path, annotations, evidence):
    """With ``entity_extractor="none"`` the evidence term counts the documents' own annotation
    concepts (PubMedQA's MeSH headings) named in the reasoning, and nothing else (docs/search.md)."""
    from medr3_env.corpora import Corpus, Document, QuestionSet
    from medr3_env.corpora.records import QAItem

    docs = [
        Document(
            id="p1",
            title="Metformin and lactic acidosis",
            content="Metformin rarely causes lactic acidosis in patients with renal failure. "
            "The risk rises when kidney function falls.",
            annotations=list(annotations),
        ),
        Document(id="p2", title="Bones", content="Unrelated text about bones and fractures."),
    ]
    item = QAItem(
        id="q1",
        question="Does metformin cause lactic acidosis in renal failure?",
        answer_type="yesno",
        answer="yes",
        evidence_ids=["p1"],
    )
    corpus = Corpus.from_documents(f"none-{len(annotations)}", docs)
    env = MedR3Env(
        questions=QuestionSet("tiny", [item], corpus),
        cache_dir=tmp_path,
        entity_extractor="none",
    )
    assert env.searcher.entity_extractor == "none"
    env.reset(seed=0)
    env.step("<search>metformin lactic acidosis renal failure</search>")
    env.step("<read>p1</read>")
    *_, done, _, info = env.step(
        "<think>The passage says lactic acidosis from metformin happens mostly when renal "
        "insufficiency is present, so I conclude yes for this patient group.</think>"
        "<answer>yes</answer>"
    )
    assert done and info["reward_terms"]["answer"] == 1.0
    assert info["reward_terms"]["evidence"] == evidence


@pytest.mark.parametrize("when", ["step", "terminal"])
def test_a_failing_term_under_warn_is_reported_never_counted_as_zero(when):
    """on_reward_error="warn": the failed term is in reward_errors, out of the total and absent
    from reward_terms (which anything averaging the breakdown reads), not shown as 0."""
    from medr3_env.rewards import register_reward
    from medr3_env.rewards.registry import unregister_reward

    @register_reward("test_raiser", range=(0.0, 1.0), when=when)
    def raiser(ctx):
        raise RuntimeError("boom")

    try:
        env = gym.make(
            "MedR3-v0",
            reward_weights={"answer": 1.0, "format": 0.5, "test_raiser": 1.0},
            on_reward_error="warn",
        )
        env.reset(seed=0)
        _, reward, terminated, _, info = env.step("<think>a guess</think><answer>A</answer>")
        assert terminated
        assert "test_raiser" in info["reward_errors"]
        assert "boom" in info["reward_errors"]["test_raiser"]
        assert "test_raiser" not in info["reward_terms"]
        assert set(info["reward_terms"]) == {"answer", "format"}
        weights = info["reward_weights"]
        expected = sum(weights[name] * value for name, value in info["reward_terms"].items())
        assert reward == pytest.approx(expected)
    finally:
        unregister_reward("test_raiser")
