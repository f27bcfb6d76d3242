"""The medr3 command through typer's test runner."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medr3_env import EnvConfig
from medr3_env.cli import app
from medr3_env.cli.app import MedR3Typer, one_line
from medr3_env.trajectory import read_trajectories
from tests.cli_errors import error_of

runner = CliRunner()


def test_demo_runs_episodes_and_writes_trajectories(tmp_path):
    out = tmp_path / "traj.jsonl"
    result = runner.invoke(app, ["demo", "-n", "6", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output and "answer" in result.output
    records = list(read_trajectories(out))
    assert len(records) == 6
    for record in records:
        assert record.turns[-1].action == "answer"
        assert [t.action for t in record.turns] == ["search", "read", "answer"]
        assert set(record.reward_terms) == {"answer", "format", "retrieval", "evidence"}


def test_demo_reasoning_stage_skips_search(tmp_path):
    out = tmp_path / "r.jsonl"
    result = runner.invoke(app, ["demo", "-n", "3", "--stage", "reasoning", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert all(len(r.turns) == 1 for r in read_trajectories(out))


def test_search_prints_hits_as_json():
    result = runner.invoke(app, ["search", "warfarin vitamin K", "-k", "2", "--json"])
    assert result.exit_code == 0
    hits = json.loads(result.stdout)  # progress lines, if any, go to stderr
    assert len(hits) == 2 and {"doc_id", "title", "score", "snippet"} <= set(hits[0])


def test_search_hostile_query_does_not_crash():
    assert runner.invoke(app, ["search", "title:* AND [a TO z] ~~"]).exit_code == 0


def test_index_build_and_info(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(
        json.dumps(
            {
                "id": "a",
                "title": "Aspirin",
                "content": "COX inhibitor",
                "contents": "Aspirin. COX inhibitor",
            }
        )
        + "\n"
    )
    out = tmp_path / "ix"
    result = runner.invoke(
        app, ["index", "build", "--corpus", f"medrag:{corpus}", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "indexed 1 documents" in result.output
    info = runner.invoke(app, ["index", "info", str(out)])
    assert info.exit_code == 0 and "corpus_fingerprint" in info.output
    hits = runner.invoke(app, ["search", "aspirin", "--index", str(out), "--json"])
    assert json.loads(hits.output)[0]["doc_id"] == "a"


def test_index_build_refuses_to_replace_the_current_directory(tmp_path, monkeypatch):
    """A build replaces --out as a whole, so --out must not be the working directory (or hold
    it): the shell would be left in a deleted folder. Nothing is written, not even a lock."""
    inner = tmp_path / "work" / "sub"
    inner.mkdir(parents=True)
    monkeypatch.chdir(inner)
    for out in (".", str(inner), "..", str(tmp_path)):
        result = runner.invoke(app, ["index", "build", "--out", out])
        assert "is the current directory or holds it" in error_of(result), out
    assert list(inner.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["work"]
    assert [p.name for p in (tmp_path / "work").iterdir()] == ["sub"]  # no sub.lock either
    result = runner.invoke(app, ["index", "build", "--out", "ix"])  # a folder of its own
    assert result.exit_code == 0, result.output
    assert (inner / "ix" / "manifest.json").is_file()


def test_bad_input_gives_clear_errors(tmp_path):
    result = runner.invoke(app, ["index", "info", str(tmp_path)])
    assert "not a MedR3 index" in error_of(result)
    result = runner.invoke(app, ["demo", "--stage", "nonsense", "--out", str(tmp_path / "x.jsonl")])
    assert "unknown stage 'nonsense'" in error_of(result)
    result = runner.invoke(app, ["search", "x", "--corpus", "medrag:/no/such/file.jsonl"])
    assert "not found" in error_of(result)


def test_errors_go_to_stderr_so_json_output_stays_json():
    result = runner.invoke(app, ["search", "x", "--corpus", "medrg:foo", "--json"])
    assert "unknown corpus format 'medrg'" in error_of(result)


def test_ctrl_c_prints_interrupted_on_stderr_and_exits_130():
    interrupted = MedR3Typer()

    @interrupted.command()
    def wait() -> None:
        raise KeyboardInterrupt

    @interrupted.command()
    def other() -> None:  # two commands, so `wait` is a subcommand name
        pass

    result = runner.invoke(interrupted, ["wait"])
    assert result.exit_code == 130
    assert result.stdout == "" and result.stderr.strip() == "interrupted"


def test_error_messages_keep_square_brackets():
    """Errors are printed literally: pip extras such as [train] are not taken as rich markup."""
    result = runner.invoke(app, ["search", "x", "--corpus", "medrag:/no/such/[dir]/file.jsonl"])
    assert "[dir]" in error_of(result)


def test_demo_takes_stages_like_eval(tmp_path):
    out = tmp_path / "d.jsonl"
    for command in (["demo"], ["eval", "--policy", "scripted"], ["export-prompts"]):
        result = runner.invoke(app, [*command, "--stage", "nope", "--out", str(out)])
        assert error_of(result) == (
            "error: unknown stage 'nope'; use 1, 2, 3 or one of reasoning, retrieval, joint"
        )
    result = runner.invoke(app, ["demo", "--stage", "1", "-n", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "(reasoning stage)" in result.stdout
    lines = result.stdout.splitlines()
    header = next(line.split() for line in lines if line.split()[:2] == ["type", "n"])
    cells = next(line.split() for line in lines if line.split()[:1] == ["all"])
    row = dict(zip(header, cells, strict=True))
    assert row["retrieval"] == row["evidence"] == "n/a"  # no search in this stage
    assert row["answer"] != "n/a" and row["format"] != "n/a"
    assert [len(r.turns) for r in read_trajectories(out)] == [1, 1]  # stage 1 answers at once
    stage_file = tmp_path / "short.yaml"
    stage_file.write_text("name: retrieval\nmax_turns: 2\n", encoding="utf-8")
    result = runner.invoke(app, ["demo", "--stage", str(stage_file), "-n", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    (record,) = read_trajectories(out)
    assert record.config["stage"] == "retrieval" and record.config["max_turns"] == 2


@pytest.mark.parametrize(
    "command",
    [
        ["demo", "-n", "-5"],
        ["demo", "--seed", "-1"],
        ["eval", "--policy", "scripted", "-n", "-1"],
        ["eval", "--policy", "scripted", "--seed", "-1"],
        ["export-prompts", "--out", "p.jsonl", "--limit", "-1"],
        ["replay", "x.jsonl", "--max-report", "-1"],
        ["replay", "x.jsonl", "--tolerance", "-0.1"],
    ],
)
def test_negative_counts_are_usage_errors(command, tmp_path):
    result = runner.invoke(app, command)
    assert result.exit_code == 2
    assert "Invalid value" in result.stderr and result.stdout == ""


def test_a_validation_error_is_one_line_of_fields_and_messages():
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as caught:
        EnvConfig(max_turns=0, backend="elastic")
    line = one_line(caught.value)
    assert line.startswith("backend: unknown search backend 'elastic'; registered: ")
    assert line.endswith("; max_turns: Input should be greater than or equal to 1")
    assert "pydantic.dev" not in line and "input_value" not in line and "\n" not in line
    result = runner.invoke(app, ["demo", "--backend", "elastic"])
    assert error_of(result).startswith("error: backend: unknown search backend 'elastic'")


def test_eval_names_every_policy_form_and_the_readme_row_too():
    result = runner.invoke(app, ["eval", "--policy", "foo"])
    assert error_of(result) == (
        "error: unknown policy 'foo'; use hf:PATH_OR_NAME, gguf:FILE.gguf, smollm2 or scripted"
    )
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.startswith("| `medr3 eval"))
    for form in ("hf:", "gguf:", "smollm2", "scripted"):
        assert form in row, form


def test_search_refuses_a_backend_that_is_not_the_indexs(tmp_path):
    pytest.importorskip("tantivy")
    out = tmp_path / "ix"
    built = runner.invoke(app, ["index", "build", "--backend", "tantivy", "--out", str(out)])
    assert built.exit_code == 0, built.output
    result = runner.invoke(app, ["search", "digoxin", "--index", str(out), "--backend", "whoosh"])
    assert error_of(result) == (
        f"error: --backend whoosh does not match the index at {out} (tantivy)"
    )
    for given in ([], ["--backend", "tantivy"]):  # left out: the index's own backend
        result = runner.invoke(app, ["search", "digoxin", "--index", str(out), "--json", *given])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)[0]["doc_id"]
    result = runner.invoke(app, ["search", "x", "--index", str(out), "--corpus", "starter"])
    assert error_of(result) == "error: give either --index or --corpus, not both"
    result = runner.invoke(
        app, ["search", "x", "--url", "http://127.0.0.1:9", "--backend", "whoosh"]
    )
    assert "--backend whoosh does not go with --url" in error_of(result)


def test_reward_table_averages_a_term_only_over_episodes_that_report_it():
    from types import SimpleNamespace

    from medr3_env.cli.reporting import _term_mean

    def turn(terms, not_applicable=()):
        return SimpleNamespace(reward_terms=terms, reward_not_applicable=list(not_applicable))

    records = [
        SimpleNamespace(
            reward_terms={"answer": 1.0, "custom": 0.5, "retrieval": 0.0},
            turns=[turn({"answer": 1.0, "custom": 0.5, "retrieval": 0.0}, ["retrieval"])],
        ),
        SimpleNamespace(  # "custom" failed in this episode
            reward_terms={"answer": 0.0, "retrieval": 0.0},
            turns=[turn({"answer": 0.0, "retrieval": 0.0}, ["retrieval"])],
        ),
    ]
    assert _term_mean(records, "answer") == "0.500"
    assert _term_mean(records, "custom") == "0.500"
    assert _term_mean(records, "never") == "–"
    assert _term_mean(records, "retrieval") == "n/a"  # not applicable in any episode
    records[1].turns.append(turn({"retrieval": 0.0}))  # applicable once: a real 0
    assert _term_mean(records, "retrieval") == "0.000"
