"""Loaders on small fixtures in the real formats, including broken lines."""

import json

import pytest

from medr3_env.corpora import CorpusFormatError, SpecError, load_corpus, load_questions
from medr3_env.corpora.medrag import load_medrag
from medr3_env.corpora.native import load_native_questions


def _write(path, lines):
    path.write_bytes(b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines))
    return path


def _medrag(doc_id, title="T", content="some content"):
    return json.dumps(
        {"id": doc_id, "title": title, "content": content, "contents": f"{title}. {content}"},
        ensure_ascii=False,
    )


def test_medrag_chunks_load_through_the_spec(tmp_path):
    path = _write(
        tmp_path / "chunks.jsonl",
        [_medrag("a", "Aspirin", "Irreversibly inhibits COX-1."), _medrag("b")],
    )
    docs = list(load_corpus(f"medrag:{path}"))
    assert [d.id for d in docs] == ["a", "b"]
    assert (
        docs[0].title == "Aspirin" and docs[0].contents == "Aspirin. Irreversibly inhibits COX-1."
    )


def test_medrag_without_content_falls_back_to_contents(tmp_path):
    path = _write(
        tmp_path / "c.jsonl", [json.dumps({"id": "x", "title": "", "contents": "text only"})]
    )
    assert next(iter(load_medrag(path))).content == "text only"


def test_medrag_without_any_text_field_names_both_and_what_the_record_has(tmp_path):
    path = _write(tmp_path / "c.jsonl", [json.dumps({"id": "x", "title": "T", "text": "body"})])
    with pytest.raises(CorpusFormatError) as info:
        list(load_medrag(path))
    assert info.value.field == "content" and info.value.line == 1
    message = str(info.value)
    assert "'content'" in message and "'contents'" in message
    assert message.endswith("fields: id, text, title")


def test_malformed_line_names_file_line_and_field(tmp_path):
    path = _write(
        tmp_path / "bad.jsonl", [_medrag("a"), json.dumps({"title": "no id", "content": "c"})]
    )
    with pytest.raises(CorpusFormatError) as info:
        list(load_medrag(path))
    assert info.value.line == 2 and info.value.field == "id" and "bad.jsonl" in str(info.value)


def test_broken_json_is_reported_or_skipped_with_a_count(tmp_path, caplog):
    path = _write(tmp_path / "broken.jsonl", [_medrag("a"), "{not json", _medrag("b"), "[1, 2]"])
    with pytest.raises(CorpusFormatError, match="line 2"):
        list(load_medrag(path))
    docs = list(load_medrag(path, on_error="skip"))
    assert [d.id for d in docs] == ["a", "b"]
    assert sum("skipping malformed record" in r.message for r in caplog.records) == 2


def test_duplicate_ids_are_always_an_error(tmp_path):
    path = _write(tmp_path / "dup.jsonl", [_medrag("a"), _medrag("a")])
    with pytest.raises(CorpusFormatError, match="duplicate document id 'a'"):
        list(load_medrag(path, on_error="skip"))


def test_duplicate_ids_across_files_in_a_folder(tmp_path):
    _write(tmp_path / "1.jsonl", [_medrag("a")])
    _write(tmp_path / "2.jsonl", [_medrag("a")])
    with pytest.raises(CorpusFormatError, match="duplicate"):
        list(load_medrag(tmp_path))


def test_non_utf8_is_reported_not_mangled(tmp_path):
    path = _write(
        tmp_path / "latin1.jsonl", [_medrag("a"), _medrag("b", content="café").encode("latin-1")]
    )
    with pytest.raises(CorpusFormatError, match="not UTF-8"):
        list(load_medrag(path))


def test_fingerprint_changes_with_content(tmp_path):
    path = _write(tmp_path / "c.jsonl", [_medrag("a")])
    before = load_medrag(path).fingerprint()
    _write(path, [_medrag("a", content="changed")])
    assert load_medrag(path).fingerprint() != before


def test_native_questions_validate_records(tmp_path):
    good = {
        "id": "q1",
        "question": "Which?",
        "answer_type": "mcq",
        "options": {"A": "x", "B": "y"},
        "answer": "B",
    }
    bad = {**good, "id": "q2", "answer": "E"}
    path = _write(tmp_path / "q.jsonl", [json.dumps(good), json.dumps(bad)])
    with pytest.raises(CorpusFormatError, match="line 2"):
        load_native_questions(path)
    skipped = load_native_questions(path, on_error="skip")
    assert [q.id for q in skipped] == ["q1"]
    assert skipped.stats is not None and skipped.stats.skipped == 1
    assert skipped.split("all").stats is skipped.stats
    broken = _write(tmp_path / "b.jsonl", [json.dumps(good), "{oops", "[1]", json.dumps(bad)])
    assert load_native_questions(broken, on_error="skip").stats.skipped == 3


def test_unknown_format_and_missing_file_are_spec_errors(tmp_path):
    with pytest.raises(SpecError, match="unknown corpus format"):
        load_corpus("nosuch:/x")
    with pytest.raises(SpecError, match="not found"):
        load_corpus(f"medrag:{tmp_path / 'missing.jsonl'}")
    with pytest.raises(SpecError, match="unknown dataset format"):
        load_questions("nosuch:/x")


def test_env_runs_on_a_user_medrag_corpus(tmp_path):
    from medr3_env import MedR3Env

    path = _write(
        tmp_path / "mini.jsonl",
        [
            _medrag("m1", "Metformin", "Metformin lowers hepatic glucose output."),
            _medrag("m2", "Insulin", "Insulin lowers glucose."),
        ],
    )
    env = MedR3Env(corpus=f"medrag:{path}", cache_dir=tmp_path / "cache")
    env.reset(seed=0)
    _, _, _, _, info = env.step("<search>metformin hepatic</search>")
    assert info["retrieved_ids"][0] == "m1"


# --- duplicate ids and loader options in spec strings ------------------------------------


def _medquad_like(tmp_path):
    """Ids reused across collections, as in MedQuAD: a, b, a, c, b."""
    rows = [("a", "one"), ("b", "two"), ("a", "three"), ("c", "four"), ("b", "five")]
    return _write(tmp_path / "dups.jsonl", [_medrag(i, content=c) for i, c in rows])


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("first", [("a", "one"), ("b", "two"), ("c", "four")]),
        ("last", [("a", "three"), ("c", "four"), ("b", "five")]),
    ],
)
@pytest.mark.parametrize("on_disk", [False, True])
def test_on_duplicate_keeps_one_record_per_id_and_counts_the_rest(
    tmp_path, monkeypatch, mode, expected, on_disk
):
    if on_disk:  # the id set moves to SQLite after MEMORY_IDS ids: same answers
        monkeypatch.setattr("medr3_env.corpora.dedupe.MEMORY_IDS", 1)
    corpus = load_corpus(f"medrag:{_medquad_like(tmp_path)}?on_duplicate={mode}")
    assert [(d.id, d.content) for d in corpus] == expected
    assert corpus.stats.duplicates == 2 and corpus.stats.first_duplicate in ("a", "b")
    assert [(d.id, d.content) for d in corpus] == expected  # a second pass counts afresh
    assert corpus.stats.duplicates == 2


def test_on_duplicate_error_is_the_default_and_says_how_to_keep_one(tmp_path):
    path = _medquad_like(tmp_path)
    with pytest.raises(CorpusFormatError, match="line 3.*on_duplicate='first'"):
        list(load_corpus(f"medrag:{path}"))
    with pytest.raises(CorpusFormatError, match="duplicate"):
        list(load_corpus(f"medrag:{path}?on_duplicate=error&on_error=skip"))


def test_on_duplicate_on_table_corpora(tmp_path):
    csv = tmp_path / "notes.csv"
    csv.write_text("note_id,body\nn1,first text\nn2,other\nn1,second text\n")
    corpus = load_corpus(f"csv:{csv}?id_field=note_id&text_field=body&on_duplicate=last")
    assert [(d.id, d.content) for d in corpus] == [("n2", "other"), ("n1", "second text")]
    assert corpus.stats.duplicates == 1


def test_spec_options_and_keyword_options_are_the_same_thing(tmp_path):
    path = _medquad_like(tmp_path)
    from_spec = load_corpus(f"medrag:{path}?on_duplicate=first")
    from_kwargs = load_corpus(f"medrag:{path}", on_duplicate="first")
    assert [d.id for d in from_spec] == [d.id for d in from_kwargs] == ["a", "b", "c"]
    assert from_spec.fingerprint() == from_kwargs.fingerprint()
    with pytest.raises(SpecError, match="both in spec"):
        load_corpus(f"medrag:{path}?on_duplicate=first", on_duplicate="last")


def test_loader_options_change_the_fingerprint_only_when_they_change_content(tmp_path):
    path = _medquad_like(tmp_path)
    plain = load_corpus(f"medrag:{path}").fingerprint()
    first = load_corpus(f"medrag:{path}?on_duplicate=first").fingerprint()
    last = load_corpus(f"medrag:{path}?on_duplicate=last").fingerprint()
    assert len({plain, first, last}) == 3
    assert load_corpus(f"medrag:{path}?on_duplicate=error").fingerprint() == plain  # default
    assert load_corpus(f"medrag:{path}?name=mine").fingerprint() == plain  # a label only


@pytest.mark.parametrize(
    ("suffix", "fragment"),
    [
        (
            "?on_duplicat=first",
            r"unknown option\(s\) on_duplicat .*valid options: name, on_duplicate, on_error",
        ),
        ("?on_duplicate=never", "on_duplicate='never'.*'error', 'first' or 'last'"),
        ("?on_error=skip&on_error=raise", "given twice"),
    ],
)
def test_bad_spec_options_are_errors_listing_the_valid_ones(tmp_path, suffix, fragment):
    path = _medquad_like(tmp_path)
    with pytest.raises(SpecError, match=fragment):
        load_corpus(f"medrag:{path}{suffix}")


def test_question_specs_take_options_too(tmp_path, shared_data):
    spec = f"medmcqa:{tmp_path / 'm.jsonl'}"
    rows = [
        {"question": "Q1?", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": 0},
        {"question": "Q2?", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": 9},
    ]
    _write(tmp_path / "m.jsonl", [json.dumps(r) for r in rows])
    questions = load_questions(f"{spec}?cop_base=0&on_error=skip")
    assert [q.answer for q in questions] == ["A"]
    with pytest.raises(SpecError, match="valid options: cop_base, on_error"):
        load_questions(f"{spec}?cop=0")
    mirage = load_questions(
        f"mirage:{shared_data / 'mirage' / 'benchmark.json'}#medqa?on_error=skip"
    )
    assert len(mirage) > 100


def test_gym_make_and_the_cli_take_spec_options(tmp_path):
    import gymnasium as gym
    from typer.testing import CliRunner

    from medr3_env.cli import app
    from medr3_env.search.base import IndexManifest

    path = _medquad_like(tmp_path)
    spec = f"medrag:{path}?on_duplicate=last"
    env = gym.make("MedR3-v0", corpus=spec, cache_dir=str(tmp_path / "cache"))
    env.reset(seed=0)
    _, _, _, _, info = env.step("<search>three</search>")
    assert info["retrieved_ids"][:1] == ["a"]
    out = tmp_path / "ix"
    result = CliRunner().invoke(app, ["index", "build", "--corpus", spec, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "indexed 3 documents" in result.output
    assert "dropped 2 records whose id was already used (on_duplicate=last" in result.output
    manifest = IndexManifest.read(out)
    assert manifest.duplicate_ids == 2 and manifest.loader_options == {"on_duplicate": "last"}
