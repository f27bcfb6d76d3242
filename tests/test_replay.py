"""Trajectory records (schema v3; v1 and v2 still readable) and deterministic replay."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from medr3_env.baseline import ScriptedPolicy
from medr3_env.cli import app
from medr3_env.corpora.errors import CorpusFormatError
from medr3_env.episodes import run_episode
from medr3_env.replay import compare_records, replay_file, replay_records
from medr3_env.trajectory import (
    TRAJECTORY_SCHEMA_VERSION,
    TrajectoryFormatError,
    TrajectoryRecorder,
    read_trajectories,
    write_jsonl,
)

runner = CliRunner()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, starter_searcher):
    """Five baseline episodes plus one with malformed turns that is cut off at max_turns."""
    from medr3_env import MedR3Env

    env = MedR3Env(searcher=starter_searcher, split="test")
    policy = ScriptedPolicy(env.config.entity_extractor)
    records = [run_episode(env, policy, item_id=item.id, seed=3) for item in env.questions[:5]]
    short = MedR3Env(searcher=starter_searcher, split="test", max_turns=3)
    recorder = TrajectoryRecorder(short)
    recorder.reset(seed=11)
    for text in ("<query>x</query>", "<search>warfarin</search> extra", "<read>no-such-id</read>"):
        recorder.step(text)
    records.append(recorder.record())
    path = write_jsonl(records, tmp_path_factory.mktemp("replay") / "traj.jsonl")
    return path, records


def _rewrite(path, out, edit):
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    edit(rows)
    out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return out


def test_record_holds_everything_needed_to_replay(recorded):
    _, records = recorded
    first = records[0]
    assert first.schema_version == TRAJECTORY_SCHEMA_VERSION == 3
    assert first.seed == 3 and first.config["stage"] == "joint" and first.config["split"] == "test"
    assert first.initial_observation and first.item.question in first.initial_observation
    search, read, answer = first.turns
    assert search.argument == search.query and search.reasoning
    assert search.retrieved and all(isinstance(s, float) for _, s in search.retrieved)
    assert read.read_ids == [read.argument] and read.observation.startswith("<information>")
    assert answer.observation == "" and answer.argument == first.final_answer
    # v3: the documents each term used, on the step it was evaluated (both terms are terminal).
    assert search.term_documents == {} and read.term_documents == {}
    assert answer.term_documents["retrieval"] == [doc_id for doc_id, _ in search.retrieved]
    assert answer.term_documents["evidence"] == first.evidence_doc_ids == [read.argument]
    assert first.evidence_entities and search.parse_error is None
    assert first.reward_total == pytest.approx(sum(t.reward for t in first.turns))
    assert first.corpus_fingerprint and first.entity_extractor and first.medr3_version
    broken = records[-1]
    assert [t.error for t in broken.turns] == ["unknown_tag", None, "unknown_doc"]
    assert broken.turns[0].parse_error and "<query>" in broken.turns[0].parse_error
    assert broken.turns[0].argument is None and broken.turns[2].parse_error is None
    assert broken.turns[1].trailing_text and broken.truncated and not broken.terminated


def test_replay_of_untouched_file_is_identical(recorded):
    path, records = recorded
    results = list(replay_file(path))
    assert len(results) == len(records)
    assert all(r.ok for r in results), [m.describe() for r in results for m in r.mismatches]
    result = runner.invoke(app, ["replay", str(path), "--check"])
    assert result.exit_code == 0, result.output
    assert f"all {len(records)} episodes replay identically" in result.output


def test_tampered_file_is_detected_per_episode_and_turn(recorded, tmp_path):
    path, _ = recorded

    def tamper(rows):
        rows[1]["turns"][0]["observation"] = rows[1]["turns"][0]["observation"].replace(
            "Doc 1", "Doc 9"
        )
        rows[2]["turns"][2]["reward_terms"]["answer"] = (
            1.0 - rows[2]["turns"][2]["reward_terms"]["answer"]
        )
        rows[3]["turns"][1]["action_text"] = "<answer>A</answer>"

    bad = _rewrite(path, tmp_path / "bad.jsonl", tamper)
    results = list(replay_file(bad))
    assert [r.ok for r in results] == [True, False, False, False, True, True]
    observation = results[1].mismatches
    assert [(m.turn, m.field) for m in observation] == [(1, "observation")]
    assert "at character" in observation[0].describe()
    assert (3, "reward_terms") in [(m.turn, m.field) for m in results[2].mismatches]
    # Answering at turn 2 ends the episode early: the replay has fewer turns than the record.
    assert (None, "number of turns") in [(m.turn, m.field) for m in results[3].mismatches]

    checked = runner.invoke(app, ["replay", str(bad), "--check"])
    assert checked.exit_code == 1
    assert "episode 2 (" in checked.output and "turn 1: observation differs" in checked.output
    assert "3 of 6 episodes differ" in checked.output
    assert runner.invoke(app, ["replay", str(bad)]).exit_code == 0


def test_compare_records_tolerates_only_tiny_float_noise(recorded):
    _, records = recorded
    record = records[0]
    noisy = record.model_copy(update={"reward_total": record.reward_total + 1e-12})
    assert compare_records(record, noisy) == []
    off = record.model_copy(update={"reward_total": record.reward_total + 1e-6})
    assert [m.field for m in compare_records(record, off)] == ["reward_total"]


V3_TURN = ("parse_error", "term_documents")
V3_EPISODE = ("evidence_doc_ids",)


def _downgrade_to_v2(rows):
    for row in rows:
        row["schema_version"] = 2
        for key in V3_EPISODE:
            row.pop(key)
        for turn in row["turns"]:
            for key in V3_TURN:
                turn.pop(key)


def test_version_2_files_still_load_and_replay(recorded, tmp_path):
    path, records = recorded
    old = _rewrite(path, tmp_path / "v2.jsonl", _downgrade_to_v2)
    loaded = list(read_trajectories(old))
    assert [r.schema_version for r in loaded] == [2] * len(records)
    assert loaded[0].evidence_doc_ids is None and loaded[0].turns[-1].term_documents == {}
    assert loaded[0].turns[0].argument == records[0].turns[0].argument
    assert all(r.ok for r in replay_records(loaded))


def test_version_1_files_still_load_and_replay(recorded, tmp_path):
    path, records = recorded
    v2_turn = ("argument", "reasoning", "trailing_text", "reward_not_applicable", "reward_errors")
    v2_episode = ("initial_observation", "corpus_fingerprint", "entity_extractor", "medr3_version")

    def downgrade(rows):
        _downgrade_to_v2(rows)
        for row in rows:
            row["schema_version"] = 1
            for key in v2_episode:
                row.pop(key)
            for turn in row["turns"]:
                for key in v2_turn:
                    turn.pop(key)

    old = _rewrite(path, tmp_path / "v1.jsonl", downgrade)
    loaded = list(read_trajectories(old))
    assert [r.schema_version for r in loaded] == [1] * len(records)
    assert loaded[0].initial_observation is None and loaded[0].turns[0].argument is None
    assert all(r.ok for r in replay_records(loaded))


def test_unknown_schema_version_and_bad_lines_give_clear_errors(recorded, tmp_path):
    path, _ = recorded
    future = _rewrite(path, tmp_path / "v9.jsonl", lambda rows: rows[0].update(schema_version=9))
    with pytest.raises(ValueError, match="line 1: .*schema version 9 is not supported"):
        list(read_trajectories(future))
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text('{"not": "a record"}\n', encoding="utf-8")
    result = runner.invoke(app, ["replay", str(garbage), "--check"])
    assert result.exit_code == 2 and "line 1: not a trajectory record" in result.output
    # A broken line among good ones: the trajectory reader names it, not the corpus reader.
    good = path.read_text(encoding="utf-8").splitlines()
    for bad_line, reason in (("{oops", "invalid JSON"), ("[1, 2]", "expected a JSON object")):
        broken = tmp_path / "broken.jsonl"
        broken.write_text(f"{good[0]}\n\n{bad_line}\n{good[1]}\n", encoding="utf-8")
        with pytest.raises(TrajectoryFormatError) as caught:
            list(read_trajectories(broken))
        assert not isinstance(caught.value, CorpusFormatError)
        assert caught.value.line == 3 and str(caught.value).startswith(f"{broken}, line 3: ")
        assert reason in str(caught.value)
        output = runner.invoke(app, ["replay", str(broken)]).output
        assert "line 3" in output and reason in output
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes(good[0].encode() + b"\n" + '{"q": "caf\xe9"}'.encode("latin-1") + b"\n")
    with pytest.raises(TrajectoryFormatError, match="line 2: not UTF-8"):
        list(read_trajectories(latin1))
    missing = runner.invoke(app, ["replay", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "file not found" in missing.output
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    assert "empty" in runner.invoke(app, ["replay", str(empty)]).output


def test_unreplayable_config_is_reported_not_raised(recorded, tmp_path):
    path, _ = recorded
    bad = _rewrite(path, tmp_path / "cfg.jsonl", lambda rows: rows[0]["config"].update(top_k=999))
    first = next(iter(replay_file(bad)))
    assert not first.ok and "cannot re-create the environment" in (first.error or "")


def test_recorder_works_on_a_gym_make_environment(tmp_path):
    import gymnasium as gym

    env = gym.make("MedR3-Reasoning-v0", split="test")
    recorder = TrajectoryRecorder(env)
    recorder.reset(seed=5)
    recorder.step(
        "<think>The classic first-line choice for this condition is B.</think><answer>B</answer>"
    )
    record = recorder.record()
    assert record.config["stage"] == "reasoning" and record.seed == 5 and len(record.turns) == 1
    path = write_jsonl([record], tmp_path / "one.jsonl")
    assert all(r.ok for r in replay_file(path))


def test_bytes_turn_is_recorded_as_its_decoded_text(starter_searcher, tmp_path):
    from medr3_env import MedR3Env

    env = MedR3Env(searcher=starter_searcher, split="test")
    recorder = TrajectoryRecorder(env)
    recorder.reset(seed=1)
    query = "warfarin reversal \u00e9"
    recorder.step(f"<think>check dosing</think><search>{query}</search>".encode())
    recorder.step(b"<answer>\xff</answer>")  # not UTF-8: replaced, as the environment reads it
    record = recorder.record()
    first, last = record.turns
    assert first.action_text == f"<think>check dosing</think><search>{query}</search>"
    assert first.action == "search" and first.query == first.argument == query
    assert first.reasoning == "check dosing"
    assert last.action_text == "<answer>\ufffd</answer>" and record.final_answer == "\ufffd"
    path = write_jsonl([record], tmp_path / "bytes.jsonl")
    results = list(replay_file(path))
    assert all(r.ok for r in results), [m.describe() for r in results for m in r.mismatches]


def test_a_line_cut_short_is_reported_as_cut_short_with_its_column(tmp_path):
    from medr3_env.jsonl import JsonlError, iter_lines

    path = tmp_path / "cut.jsonl"
    path.write_text('{"id": "a", "content": "cut\n{"id": "b"}\n{"id": "c" "x": 1}\r\n', "utf-8")
    rows = list(iter_lines(path))
    first, second, third = (value for _, value in rows)
    assert isinstance(first, JsonlError)
    assert first.reason == "invalid JSON (Unterminated string starting at column 24)"
    assert second == {"id": "b"}
    assert isinstance(third, JsonlError) and third.line == 3
    assert third.reason == "invalid JSON (Expecting ',' delimiter at column 12)"


def test_a_jsonl_file_of_other_records_is_refused_in_one_line_listing_what_is_missing(tmp_path):
    from medr3_env.trajectory import TrajectoryFormatError, read_trajectories

    path = tmp_path / "prompts.jsonl"
    path.write_text('{"id": "q1", "prompt": "What is ...?"}\n', "utf-8")
    with pytest.raises(TrajectoryFormatError) as caught:
        list(read_trajectories(path))
    message = str(caught.value)
    assert "\n" not in message and "errors.pydantic.dev" not in message
    assert message.startswith(
        f"{path}, line 1: not a trajectory record (missing: item, config, turns"
    )


def test_a_reward_term_this_process_lacks_is_one_line_and_exit_2(recorded, tmp_path):
    """A file recorded with a term registered in the user's script: replaying it without that
    term is a setup error (one line naming the term, exit 2), not a mismatch (exit 1)."""
    path, _ = recorded

    def add_term(rows):
        for row in rows:
            row["config"]["reward_weights"]["my_script_term"] = 1.0

    custom = _rewrite(path, tmp_path / "custom.jsonl", add_term)
    first = next(iter(replay_file(custom)))
    assert first.setup_error and "my_script_term" in (first.error or "")
    assert "\n" not in first.error and "errors.pydantic.dev" not in first.error
    result = runner.invoke(app, ["replay", str(custom), "--check"])
    assert result.exit_code == 2
    assert "mismatch" not in result.output
    assert "my_script_term" in result.stderr and "register it first" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
