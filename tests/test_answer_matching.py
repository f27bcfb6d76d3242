"""How final answers are read: wrappers that models write around an answer, negated verdicts, and
that neither opens a way to name several answers at once."""

from __future__ import annotations

import pytest

from medr3_env.corpora.records import QAItem
from medr3_env.rewards.answer import choose_verdict, score_answer, unwrap_latex, unwrap_markup

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


@pytest.mark.parametrize(
    "answer",
    [
        "**Answer: B**",
        "B) Metoprolol",
        "\\boxed{\\text{B. Metoprolol}}",
        "(**B**)",
        "\\(\\boxed{B}\\)",
        "\\[\\boxed{B}\\]",
        "Final answer: B",
        "**Final Answer:** \\boxed{B}",
        "The final answer is $\\boxed{B}$.",
        "My answer is B",
        "### Answer: B",
        "\\textit{B}",
        "\\fbox{B}",
        "\\boxed{{B}}",
        "**B**: Metoprolol",
        "The answer is **(B) Metoprolol**.",
        "Meto\\text{prolol}",
    ],
)
def test_answers_models_write_read_as_the_option(answer: str) -> None:
    assert score_answer(MCQ, answer) == 1.0


@pytest.mark.parametrize(
    "answer",
    [
        "\\boxed{A}. Metoprolol",  # a wrapped letter with another option's text
        "**A**) Metoprolol",
        "A) B)",
        "A)**B**",
        "C or D. Adenosine",
        "Metoprolol (option A)",
        "Metoprolol, A.",
        "`A` B. Metoprolol",
        "A Adenosine",
        "\\boxed{Metoprolol} \\boxed{D}",
        "A\\text{B}",
        "**A**B",
    ],
)
def test_an_answer_that_writes_two_letters_or_a_letter_and_a_text_picks_neither(
    answer: str,
) -> None:
    for gold in OPTIONS:
        item = MCQ.model_copy(update={"answer": gold})
        assert score_answer(item, answer) == 0.0, gold


def test_letters_inside_option_texts_are_not_other_options() -> None:
    options = {"A": "Vitamin A", "B": "Hepatitis B", "C": "beta blocker", "D": "Type D"}
    item = QAItem(id="q-l", question="Which?", options=options, answer="B", answer_type="mcq")
    for answer in ("B. Hepatitis B", "Hepatitis B", "**Hepatitis B**", "(B) Hepatitis B"):
        assert score_answer(item, answer) == 1.0, answer
    assert score_answer(item.model_copy(update={"answer": "A"}), "A. Vitamin A") == 1.0
    assert score_answer(item.model_copy(update={"answer": "C"}), "A beta blocker") == 1.0
    assert score_answer(item, "Hepatitis B or D") == 0.0


def test_markup_inside_a_word_joins_it() -> None:
    # "**n**ot yes" renders as "not yes": a negated verdict, not "yes".
    for answer in ("**n**ot yes", "n\\text{ot} yes", "no`t` yes"):
        assert unwrap_markup(answer) == "not yes"
        assert score_answer(YES, answer) == 0.0
    # Between capitals or a capital and a word, a wrapper stays a space: two letters stay two.
    assert unwrap_markup("`A`**B**") == "A B"


@pytest.mark.parametrize("answer", ["isn`t yes", "isnt yes", "neither yes nor no", "dont yes"])
def test_negations_written_other_ways_name_no_verdict(answer: str) -> None:
    assert score_answer(YES, answer) == 0.0


def test_unclosed_and_stray_braces_never_add_an_option() -> None:
    assert unwrap_latex("\\boxed{B") == "\\boxed{B"  # unclosed: stays as written
    assert score_answer(MCQ, "\\boxed{B") == 0.0
    assert unwrap_latex("\\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"  # another command's braces stay
    assert score_answer(MCQ, "\\boxed{A}}}{B}") == 0.0


def test_deep_nesting_is_unwrapped_in_one_pass() -> None:
    depth = 30_000  # a pass per nesting level would take minutes here
    assert unwrap_latex("\\boxed{" * depth + "B" + "}" * depth) == "B"
    assert score_answer(MCQ, "\\boxed{" * depth + "\\text{B}" + "}" * depth) == 1.0
    assert unwrap_latex("\\boxed{" * depth + "B") == "\\boxed{" * depth + "B"


def test_free_text_reads_math_delimiters_spacing_and_percent() -> None:
    percent = QAItem(id="q-p", question="Share?", answer="40%", answer_type="free")
    assert score_answer(FREE, "\\(140\\,\\text{mmol/L}\\)") == 1.0
    assert score_answer(percent, "$40\\%$") == 1.0


def test_a_look_alike_letter_with_other_text_is_still_a_letter() -> None:
    # Cyrillic "А" and "В" standing alone are the letters A and B.
    assert score_answer(MCQ, "\u0412) Metoprolol") == 1.0
    for gold in OPTIONS:
        item = MCQ.model_copy(update={"answer": gold})
        assert score_answer(item, "\u0410. Metoprolol") == 0.0, gold  # A with B's text


def test_option_texts_with_markup_and_letters_read_like_the_answer() -> None:
    options = {"A": "$\\text{CO}_2$ retention", "B": "A and B", "C": "**None** of these"}
    item = QAItem(id="q-o", question="Which?", options=options, answer="A", answer_type="mcq")
    assert score_answer(item, "\\text{CO}_2 retention") == 1.0
    assert score_answer(item, "$\\text{CO}_2$ retention") == 1.0
    assert score_answer(item.model_copy(update={"answer": "B"}), "A and B") == 1.0
    assert score_answer(item.model_copy(update={"answer": "C"}), "None of these") == 1.0


@pytest.mark.parametrize("answer", ["Not Metoprolol", "never metoprolol", "no Metoprolol"])
def test_a_negated_option_text_picks_nothing(answer: str) -> None:
    for gold in OPTIONS:
        assert score_answer(MCQ.model_copy(update={"answer": gold}), answer) == 0.0


def test_greek_letters_in_option_texts_still_match() -> None:
    options = {"A": "\u03b2-blocker", "B": "\u03b1-agonist", "C": "Digoxin"}
    item = QAItem(id="q-g", question="Which?", options=options, answer="A", answer_type="mcq")
    assert score_answer(item, "\u03b2-blocker") == 1.0
    assert score_answer(item, "A. \u03b2-blocker") == 1.0
    assert score_answer(item, "**\u03b2-blocker**") == 1.0
    free = QAItem(id="q-f", question="Which?", answer="\u03b1-thalassaemia", answer_type="free")
    assert score_answer(free, "\u03b1-thalassaemia") == 1.0


@pytest.mark.parametrize(
    "answer",
    ["Option B is correct.", "B is the answer", "**B** is the correct answer", "B is right"],
)
def test_a_letter_then_an_affirmation_is_the_letter(answer: str) -> None:
    assert score_answer(MCQ, answer) == 1.0
    assert score_answer(MCQ, answer.replace("B", "A", 1)) == 0.0


def test_an_affirmation_does_not_hide_another_option() -> None:
    for gold in OPTIONS:
        item = MCQ.model_copy(update={"answer": gold})
        assert score_answer(item, "B is correct, or C") == 0.0, gold
        assert score_answer(item, "B is correct (option D)") == 0.0, gold


def test_a_bare_letter_is_a_letter_even_where_option_texts_are_letters() -> None:
    options = {"A": "O", "B": "A", "C": "B", "D": "AB"}
    item = QAItem(id="q-b", question="Blood group?", options=options, answer="C", answer_type="mcq")
    assert score_answer(item, "C") == 1.0
    assert score_answer(item, "B") == 0.0  # letter B (text "A"), not the option whose text is B
    assert score_answer(item.model_copy(update={"answer": "D"}), "AB") == 1.0
