"""The numeric free-text matcher and its use by the answer term."""

import pytest

from medr3_env.corpora.records import QAItem
from medr3_env.rewards.answer import score_answer
from medr3_env.rewards.numeric import canonical_unit, numeric_match, quantities


@pytest.mark.parametrize(
    ("prediction", "gold"),
    [
        ("10 mmol/L", "8-10 mmol/L"),
        ("8 mmol/l", "8-10 mmol/L"),
        ("9.5 mmol per litre", "8-10 mmol/L"),
        ("8 to 10 mmol/L", "8-10 mmol/L"),
        ("0.9 mg per kg", "0.9 mg/kg"),
        ("0.9mg/kg", "0.9 mg/kg"),
        ("48 h", "48 hours"),
        ("48 hrs", "48 hours"),
        ("about 90 mg", "90 mg"),
        ("60 ml/min/1.73m²", "60 mL/min/1.73 m2"),
        ("150 × 10⁹/L", "150 x 10^9/L"),
        ("1,000 mg", "1000 mg"),
        ("7 percent", "7%"),
        ("20 mm Hg", "20 mmHg"),
        ("92 mg", "90 ± 5 mg"),
        ("magnesium sulfate 4 g", "Magnesium sulfate 4 g"),
        ("250 mg/24 h", "250 mg/day"),
        ("250 cells/mm3", "250 cells/mm³"),
        ("<55 mg/dL", "< 55 mg/dL"),
    ],
)
def test_the_same_quantity_written_differently_matches(prediction, gold):
    assert numeric_match(prediction, gold) is True


@pytest.mark.parametrize(
    ("prediction", "gold"),
    [
        ("10", "8-10 mmol/L"),  # bare number: the unit is part of the answer
        ("10 mmol", "8-10 mmol/L"),  # another unit
        ("11 mmol/L", "8-10 mmol/L"),  # outside the range
        ("5-15 mmol/L", "8-10 mmol/L"),  # a wider range hedges
        ("8 mmol/L or 10 mmol/L", "8-10 mmol/L"),  # several quantities hedge
        ("0.9", "0.9 mg/kg"),
        ("0.9 mg", "0.9 mg/kg"),
        ("2 days", "48 hours"),  # no unit conversion
        ("1 g", "1000 mg"),
        ("6 weeks", "6 months"),
        ("96 mg", "90 ± 5 mg"),
        ("4 g", "magnesium sulfate 4 g"),  # drops the drug
        ("not 90 mg", "90 mg"),  # adds a word that changes the meaning
        ("60", "60 mL/min/1.73 m2"),
        (">55 mg/dL", "<55 mg/dL"),  # the comparator is part of the answer
        ("55 mg/dL", "<55 mg/dL"),
    ],
)
def test_other_numbers_units_and_hedges_do_not_match(prediction, gold):
    assert numeric_match(prediction, gold) is False


@pytest.mark.parametrize(
    "gold",
    ["Digoxin", "3", "140/90 mmHg", "5 mg then 10 mg", "GOLD 3 severe", "HIV-1 p24 antigen"],
)
def test_golds_that_are_not_one_quantity_with_a_unit_are_left_to_exact_match(gold):
    assert numeric_match("3 mg", gold) is None


def test_tolerance_widens_the_gold_bounds():
    assert numeric_match("95 mg", "90 mg") is False
    assert numeric_match("95 mg", "90 mg", rel_tol=0.1) is True
    assert numeric_match("100 mg", "90 mg", rel_tol=0.1) is False
    with pytest.raises(ValueError, match="rel_tol"):
        numeric_match("90 mg", "90 mg", rel_tol=-1)


def test_units_and_quantities_are_canonical():
    assert canonical_unit("mmol per litre") == canonical_unit("mmol/L") == "mmol/l"
    assert canonical_unit("Hours") == "h"
    assert canonical_unit("micrograms/kg/min") == "mcg/kg/min"
    [q] = quantities("a target of 8–10 mmol/L")
    assert (q.low, q.high, q.unit) == (8.0, 10.0, "mmol/l")


def test_long_answers_are_parsed_quickly_and_do_not_match():
    answer = "10 mmol/L " + "and more text " * 5_000
    assert numeric_match(answer, "8-10 mmol/L") is False


def _free(answer: str, *aliases: str) -> QAItem:
    return QAItem(id="q", question="?", answer_type="free", answer=answer, aliases=aliases)


def test_answer_term_scores_range_golds_and_never_bare_numbers():
    item = _free("8-10 mmol/L")
    assert score_answer(item, "10 mmol/L") == 1.0
    assert score_answer(item, "9 mmol/L", metric="f1") == 1.0
    assert score_answer(item, "10") == 0.0
    assert score_answer(item, "12 mmol/L") == 0.0
    assert score_answer(_free("Alteplase", "tPA"), "tpa") == 1.0  # exact match unchanged
