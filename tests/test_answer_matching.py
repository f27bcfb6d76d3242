"""How final answers are read: wrappers that models write around an answer, negated verdicts, and
that neither opens a way to name several answers at once."""

from __future__ import annotations

import pytest

from medr3_env.corpora.records import QAItem
from medr3_env.rewards.answer import choose_verdict, score_answer, unwrap_markup

OPTIONS = {"A": "Digoxin", "B": "Metoprolol", "C": "Amiodarone", "D": "Adenosine"}
MCQ = QAItem(id="q-mcq", question="Which drug?", options=OPTIONS, answer="B", answer_type="mcq")
YES = QAItem(id="q-yes", question="Does it help?", answer="yes", answer_type="yesno")
NO = QAItem(id="q-no", question="Does it harm?", answer="no", answer_type="yesno")
FREE = QAItem(id="q-free", question="Target?", answer="140 mmol/L", answer_type="free")


@pytest.mark.parametrize(
    "answer",
    [
        "**B**",
        "__B__",
        "*B*",
        "`B`",
        "\\boxed{B}",
        "$\\boxed{B}$",
        "\\boxed{\\text{B}}",
        "**B. Metoprolol**",
        "The answer is **B**",
        "\\boxed{Metoprolol}",
    ],
)
def test_wrapped_option_reads_as_the_option(answer: str) -> None:
    assert score_answer(MCQ, answer) == 1.0


@pytest.mark.parametrize(
    "answer",
    [
        "\\boxed{A}\\boxed{B}",
        "**A** or **B**",
        "**A**, **B**",
        "`A` `B`",
        "\\boxed{A, B}",
        "\\boxed{B",
        "**C**",
    ],
)
def test_wrappers_never_let_an_answer_name_several_options(answer: str) -> None:
    assert score_answer(MCQ, answer) == 0.0


@pytest.mark.parametrize("answer", ["**yes**", "\\boxed{yes}", "`Yes.`", "$\\boxed{\\text{yes}}$"])
def test_wrapped_verdict_reads_as_the_verdict(answer: str) -> None:
    assert score_answer(YES, answer) == 1.0


@pytest.mark.parametrize(
    "answer",
    ["not yes", "definitely not yes", "isn't yes", "yes, not no", "never yes", "**not** yes"],
)
def test_a_negated_verdict_names_no_verdict(answer: str) -> None:
    assert choose_verdict(unwrap_markup(answer)) is None
    assert score_answer(YES, answer) == 0.0


@pytest.mark.parametrize("answer", ["not no", "not\u200b no"])
def test_not_no_is_not_read_as_no(answer: str) -> None:
    assert score_answer(NO, answer) == 0.0


def test_plain_verdicts_still_read() -> None:
    assert score_answer(NO, "No.") == 1.0
    assert score_answer(YES, "Yes, the trial supports it.") == 1.0
    assert score_answer(NO, "no evidence of benefit, so no") == 1.0


def test_free_text_reads_through_latex_only() -> None:
    assert score_answer(FREE, "\\boxed{140 mmol/L}") == 1.0
    assert score_answer(FREE, "140 mmol/L") == 1.0
    # "*" and "$" are not emphasis in free text: they stay part of the answer.
    assert unwrap_markup("5 * 10") == "5 10"
    assert score_answer(FREE, "**140 mmol/L** or 150 mmol/L") == 0.0
