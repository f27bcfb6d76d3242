"""The cheap-baseline and leak measures of ``medr3_env.corpora.shortcuts`` on small hand-made sets,
and the benchmark script end to end on the starter set."""

import json
import subprocess
import sys
from pathlib import Path

from medr3_env.corpora import shortcuts as sc
from medr3_env.corpora.records import Document, QAItem

ROOT = Path(__file__).resolve().parents[1]


def mcq(qid: str, gold: str, options: dict[str, str], split: str = "train", stem: str = "?"):
    return QAItem(
        id=qid, question=stem, answer_type="mcq", options=options, answer=gold, split=split
    )


def yesno(qid: str, verdict: str, split: str = "train"):
    return QAItem(id=qid, question="Is it?", answer_type="yesno", answer=verdict, split=split)


EVEN = {"A": "aaaa", "B": "bbbb", "C": "cccc", "D": "dddd"}


def test_longest_option_counts_ties_as_a_random_pick():
    longest = mcq("q1", "B", {"A": "x", "B": "a much longer gold", "C": "y", "D": "z"})
    assert sc.longest_option_share(longest) == 1.0
    assert sc.longest_option_share(mcq("q2", "A", EVEN)) == 0.25


def test_overlap_option_uses_stem_content_words_only():
    stem = "Which drug reverses dabigatran anticoagulation?"
    item = mcq(
        "q", "C", {"A": "Protamine", "B": "Vitamin K", "C": "Idarucizumab", "D": "Andexanet"}
    )
    assert sc.overlap_option_share(item) == 0.25  # nothing shared: a four-way tie
    echo = mcq("q", "C", {**item.options, "C": "Dabigatran antibody"}, stem=stem)  # type: ignore[dict-item]
    assert sc.overlap_option_share(echo) == 1.0


def test_a_biased_split_is_reported_and_a_balanced_one_is_not():
    balanced = [mcq(f"b{i}", "ABCD"[i % 4], EVEN) for i in range(24)]
    balanced += [yesno(f"y{i}", "yes" if i % 2 else "no") for i in range(10)]
    assert sc.baseline_violations(sc.split_reports(balanced)) == []

    long_gold = {"A": "short", "B": "short", "C": "short", "D": "short"}
    biased = [
        mcq(f"l{i}", "ABCD"[i % 4], {**long_gold, "ABCD"[i % 4]: "the only long option here"})
        for i in range(24)
    ]
    biased += [yesno(f"n{i}", "no") for i in range(7)] + [yesno(f"s{i}", "yes") for i in range(3)]
    biased += [mcq(f"a{i}", "A", EVEN) for i in range(12)]  # gold letter A in 18 of 36
    problems = " ".join(sc.baseline_violations(sc.split_reports(biased)))
    assert "always-longest" in problems
    assert "yes/no majority 'no' 0.700" in problems
    assert "gold letter A" in problems


def test_gold_only_parentheticals_and_long_golds_are_flagged():
    tell = mcq(
        "t",
        "B",
        {"A": "Warfarin", "B": "Heparin (unfractionated)", "C": "Aspirin", "D": "Clopidogrel"},
    )
    fair = mcq(
        "f", "B", {"A": "Warfarin (oral)", "B": "Heparin (IV)", "C": "Aspirin", "D": "Clopidogrel"}
    )
    assert sc.gold_only_qualifiers([tell, fair]) == ["t"]
    assert sc.long_golds([tell, fair]) == ["t"]


def test_leaks_across_splits_are_found():
    items = [
        QAItem(
            id="x1", question="Dose of alteplase for a 110 kg patient with stroke?",
            answer_type="free", answer="90 mg", evidence_ids=("p1",), split="train",
        ),
        QAItem(
            id="x2", question="Alteplase dose for a stroke patient weighing 110 kg?",
            answer_type="free", answer="90 mg", evidence_ids=("p1",), split="test",
        ),
        QAItem(
            id="x3", question="Antidote for magnesium toxicity?", answer_type="free",
            answer="Calcium gluconate", evidence_ids=("p2",), split="test",
        ),
    ]  # fmt: skip
    assert sc.evidence_in_several_splits(items) == {"p1": ["test", "train"]}
    [pair] = sc.near_duplicate_questions(items)
    assert (pair.a, pair.b, pair.same_gold) == ("x1", "x2", True)
    assert sc.same_gold_across_splits(items) == [("x1", "x2", "90 mg")]


def test_titles_duplicate_passages_and_bare_numbers():
    text = "Sepsis is a life-threatening organ dysfunction caused by a dysregulated host response"
    docs = [
        Document(id="a", title="Sepsis", content=text),
        Document(id="b", title="sepsis.", content=text + " to infection"),
        Document(id="c", title="Gout", content="Urate crystals deposit in joints and tophi"),
    ]
    assert sc.repeated_titles(docs) == {"sepsis": ["a", "b"]}
    assert [p[:2] for p in sc.near_duplicate_passages(docs)] == [("a", "b")]
    free = QAItem(id="f", question="?", answer_type="free", answer="60 mL/min", aliases=("60",))
    assert sc.bare_number_aliases([free]) == [("f", "60")]


def test_benchmark_script_writes_json_for_a_group(tmp_path):
    out = tmp_path / "shortcuts.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "shortcuts.py"), "--no-scripted",
         "--group", "obgi", "--out", str(out), "--dupes-md", str(tmp_path / "d.md")],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert {r["split"] for r in data["splits"]} >= {"train", "all"}
    assert all(r["n"] > 0 for r in data["splits"])
    assert "near_duplicate_questions" in data["leaks"]
    assert "# Duplicates" in (tmp_path / "d.md").read_text()
