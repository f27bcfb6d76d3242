"""PubMedQA, MedQA, MedMCQA, MIRAGE, BioASQ, generic JSONL/CSV and hf: specs on small fixtures
written in each format, plus integration tests on ../shared data (skipped when absent)."""

import json

import pytest

from medr3_env.corpora import CorpusFormatError, SpecError, load_corpus, load_questions

PUBMEDQA = {
    "111": {
        "QUESTION": "Does early mobilisation shorten hospital stay after hip fracture surgery?",
        "CONTEXTS": ["Patients were mobilised within 24 hours.", "Length of stay was compared."],
        "LABELS": ["METHODS", "RESULTS"],
        "MESHES": ["Hip Fractures", "Length of Stay"],
        "final_decision": "yes",
        "LONG_ANSWER": "Early mobilisation shortened stay.",
    },
    "222": {
        "QUESTION": "Is serum ferritin a reliable marker of iron stores in chronic inflammation?",
        "CONTEXTS": ["Ferritin is an acute phase reactant.", "Bone marrow iron was measured."],
        "MESHES": ["Ferritins"],
        "final_decision": "no",
        "LONG_ANSWER": "Not reliable.",
    },
}


@pytest.fixture()
def pubmedqa_file(tmp_path):
    path = tmp_path / "ori_pqal.json"
    path.write_text(json.dumps(PUBMEDQA))
    (tmp_path / "test_ground_truth.json").write_text(json.dumps({"222": "no"}))
    return path


def test_pubmedqa_questions_with_gold_abstracts_and_splits(pubmedqa_file):
    questions = load_questions(f"pubmedqa:{pubmedqa_file}")
    assert [q.id for q in questions] == ["111", "222"]
    first = questions.get("111")
    assert first.answer_type == "yesno" and first.answer == "yes" and first.evidence_ids == ("111",)
    assert [q.id for q in questions.split("test")] == ["222"]


def test_pubmedqa_abstracts_as_corpus_keep_mesh_and_drop_long_answer(pubmedqa_file):
    docs = {d.id: d for d in load_corpus(f"pubmedqa:{pubmedqa_file}")}
    assert docs["111"].annotations == ("Hip Fractures", "Length of Stay")
    assert "mobilised within 24 hours" in docs["111"].content
    assert "shortened stay" not in docs["111"].content


def test_pubmedqa_env_builds_over_its_own_abstracts(pubmedqa_file, tmp_path):
    from medr3_env import MedR3Env

    env = MedR3Env(dataset=f"pubmedqa:{pubmedqa_file}", split="all", cache_dir=tmp_path / "c")
    env.reset(options={"item_id": "222"})
    env.step("<search>ferritin iron stores inflammation</search>")
    _, _, done, _, info = env.step("<answer>no</answer>")
    assert (
        done and info["reward_terms"]["answer"] == 1.0 and info["reward_terms"]["retrieval"] == 1.0
    )


def test_pubmedqa_bad_record_names_the_field(tmp_path):
    bad = {"1": {"QUESTION": "q?", "CONTEXTS": [], "final_decision": "yes"}}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(CorpusFormatError, match="1.CONTEXTS"):
        load_questions(f"pubmedqa:{path}")


def _jsonl(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_medqa_jsonl(tmp_path):
    row = {
        "question": "Most likely diagnosis?",
        "options": {"A": "x", "B": "y", "C": "z", "D": "w", "E": "v"},
        "answer_idx": "E",
        "answer": "v",
    }
    path = _jsonl(tmp_path / "medqa.jsonl", [row, {**row, "answer_idx": "F"}])
    with pytest.raises(CorpusFormatError, match="line 2.*answer"):
        load_questions(f"medqa:{path}")
    items = load_questions(f"medqa:{path}", on_error="skip")
    assert len(items) == 1 and items[0].answer == "E" and items[0].answer_text == "v"


def test_medmcqa_cop_is_one_based_by_default(tmp_path):
    row = {
        "id": "abc",
        "question": "Which nerve?",
        "opa": "ulnar",
        "opb": "radial",
        "opc": "median",
        "opd": "axillary",
        "cop": 3,
    }
    path = _jsonl(tmp_path / "dev.json", [row, {**row, "id": "bad", "cop": 7}])
    items = load_questions(f"medmcqa:{path}", on_error="skip")
    assert (
        [q.id for q in items] == ["abc"]
        and items[0].answer == "C"
        and items[0].answer_text == "median"
    )


def test_mirage_subsets(tmp_path):
    data = {
        "pubmedqa": {
            "999": {
                "question": "Q?",
                "options": {"A": "yes", "B": "no", "C": "maybe"},
                "answer": "B",
                "PMID": ["999"],
            }
        },
        "mmlu": {
            "anatomy-000": {
                "question": "Which bone?",
                "options": {"A": "a", "B": "b", "C": "c", "D": "d"},
                "answer": "D",
            }
        },
    }
    path = tmp_path / "benchmark.json"
    path.write_text(json.dumps(data))
    pubmed = load_questions(f"mirage:{path}#pubmedqa")
    assert pubmed[0].evidence_ids == ("999",) and pubmed[0].answer == "B"
    assert load_questions(f"mirage:{path}#mmlu")[0].answer == "D"
    with pytest.raises(SpecError, match="needs a subset: .*medqa, medmcqa, pubmedqa, mmlu, bioasq"):
        load_questions(f"mirage:{path}")
    with pytest.raises(SpecError, match="no subset 'medqa'; it has mmlu, pubmedqa"):
        load_questions(f"mirage:{path}#medqa")


@pytest.mark.parametrize("fmt", ["mirage", "bioasq"])
def test_whole_file_json_formats_report_bad_bytes_and_bad_json(tmp_path, fmt):
    path = tmp_path / "data.json"
    spec = f"{fmt}:{path}#medqa" if fmt == "mirage" else f"{fmt}:{path}"
    path.write_bytes(b'{"medqa": {"1": \xff}}')
    with pytest.raises(CorpusFormatError, match=r"data.json: not UTF-8"):
        load_questions(spec)
    path.write_text('{"medqa": {"1": ', encoding="utf-8")
    with pytest.raises(CorpusFormatError, match=r"data.json, line 1: invalid JSON"):
        load_questions(spec)


def test_question_sets_expose_their_skip_counts(tmp_path):
    """Bad JSON lines and bad records both count, in ``QuestionSet.stats`` (kept by splits)."""
    mcq = {"question": "Which?", "options": {"A": "x", "B": "y"}, "answer_idx": "A"}
    medqa = tmp_path / "medqa.jsonl"
    medqa.write_text(
        "\n".join([json.dumps(mcq), "{not json", json.dumps({**mcq, "answer_idx": "Z"})]) + "\n",
        encoding="utf-8",
    )
    generic = _jsonl(
        tmp_path / "generic.jsonl",
        [{"question": "Is it?", "answer": "yes"}, {"question": "No answer?", "answer": ""}],
    )
    broken = dict(PUBMEDQA, **{"333": {"QUESTION": "No contexts?", "final_decision": "yes"}})
    pubmedqa = tmp_path / "ori_pqal.json"
    pubmedqa.write_text(json.dumps(broken), encoding="utf-8")
    for spec, kept, skipped in [
        (f"medqa:{medqa}", 1, 2),
        (f"jsonl:{generic}", 1, 1),
        (f"pubmedqa:{pubmedqa}", 2, 1),
    ]:
        questions = load_questions(f"{spec}?on_error=skip")
        assert len(questions) == kept, spec
        assert questions.stats is not None and questions.stats.skipped == skipped, spec
        assert questions.split("all").stats is questions.stats


def test_pubmedqa_corpus_exposes_its_skip_count(tmp_path):
    broken = dict(PUBMEDQA, **{"333": {"QUESTION": "No contexts?", "final_decision": "yes"}})
    path = tmp_path / "ori_pqal.json"
    path.write_text(json.dumps(broken), encoding="utf-8")
    corpus = load_corpus(f"pubmedqa:{path}?on_error=skip")
    assert [doc.id for doc in corpus] == ["111", "222"]
    assert corpus.stats is not None and corpus.stats.skipped == 1
    assert len(list(corpus)) == 2 and corpus.stats.skipped == 1  # counted again on each pass


def test_bioasq_yes_no_questions_with_pmids(tmp_path):
    data = {
        "questions": [
            {
                "id": "b1",
                "type": "yesno",
                "body": "Is X a kinase?",
                "exact_answer": "yes",
                "documents": ["http://www.ncbi.nlm.nih.gov/pubmed/12345"],
            },
            {"id": "b2", "type": "factoid", "body": "Which gene?", "exact_answer": [["BRCA1"]]},
        ]
    }
    path = tmp_path / "bioasq.json"
    path.write_text(json.dumps(data))
    items = load_questions(f"bioasq:{path}")
    assert [q.id for q in items] == ["b1"] and items[0].evidence_ids == ("12345",)


def test_generic_jsonl_and_csv_with_field_mapping(tmp_path):
    csv_path = tmp_path / "notes.csv"
    csv_path.write_text("note_id,heading,body\nn1,Gout,Urate crystals deposit in joints\nn2,,\n")
    with pytest.raises(CorpusFormatError, match="line 3.*body"):
        list(
            load_corpus(
                f"csv:{csv_path}", id_field="note_id", title_field="heading", text_field="body"
            )
        )
    docs = list(
        load_corpus(
            f"csv:{csv_path}",
            id_field="note_id",
            title_field="heading",
            text_field="body",
            on_error="skip",
        )
    )
    assert [d.id for d in docs] == ["n1"] and docs[0].title == "Gout"
    qpath = _jsonl(
        tmp_path / "qs.jsonl",
        [{"qid": "1", "q": "Is gout caused by urate?", "a": "Yes", "ev": ["n1"]}],
    )
    items = load_questions(
        f"jsonl:{qpath}", id_field="qid", question_field="q", answer_field="a", evidence_field="ev"
    )
    assert (
        items[0].answer_type == "yesno"
        and items[0].answer == "yes"
        and items[0].evidence_ids == ("n1",)
    )


def test_hf_spec_offline_gives_instructions():
    import importlib.util

    if importlib.util.find_spec("datasets") is not None:
        pytest.skip("datasets is installed; the offline message is for installs without it")
    with pytest.raises(SpecError, match="pip install datasets"):
        list(load_corpus("hf:MedRAG/textbooks"))


@pytest.mark.shared_data
def test_shared_pubmedqa_and_mirage_load(shared_data):
    questions = load_questions(f"pubmedqa:{shared_data / 'pubmedqa' / 'ori_pqal.json'}")
    assert len(questions) == 1000 and len(questions.split("test")) == 500
    mirage = shared_data / "mirage" / "benchmark.json"
    sizes = {
        s: len(load_questions(f"mirage:{mirage}#{s}"))
        for s in ("medqa", "medmcqa", "pubmedqa", "mmlu")
    }
    assert sizes == {"medqa": 1273, "medmcqa": 4183, "pubmedqa": 500, "mmlu": 1089}
