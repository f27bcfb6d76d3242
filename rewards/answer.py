"""``answer``: is the final answer correct?

* multiple choice: the option letter ("B", "(B)", "B. Digoxin", "Option B") or the option's text;
* yes/no/maybe: the single verdict word ("not yes" names no verdict);
* free text: normalised exact match against the gold answer and its aliases, or token F1
  (``EnvConfig.answer_metric="f1"``); a gold that is one quantity with a unit ("8-10 mmol/L",
  "48 hours") also matches the same quantity written differently (:mod:`.numeric`).

In option and verdict answers, Markdown emphasis, code ticks and LaTeX wrappers (``**B**``,
```B```, ``$\\boxed{B}$``) are read as the text they wrap; free text reads through LaTeX wrappers
only. An answer that names several options (or several verdicts) is wrong. In stages that require
reasoning (``min_reasoning_words``), an answer given without that many real words of reasoning
(distinct content words: filler repeated, stop words and numbers do not count) scores 0.
"""

from __future__ import annotations

import re

from medr3_env.corpora.records import QAItem
from medr3_env.rewards.answer_text import exact_match, normalise_answer, token_f1
from medr3_env.rewards.context import EpisodeContext
from medr3_env.rewards.guards import real_word_count
from medr3_env.rewards.numeric import numeric_match
from medr3_env.rewards.registry import register_reward
from medr3_env.text_norm import clean_text, map_confusables

_LETTER_PREFIX = re.compile(
    r"^\s*(?:(?:the\s+)?(?:correct\s+)?(?:option|answer|choice)\s*(?:is\s*)?[:\-]?\s*)?"
    r"[\(\[]?([A-Za-z])(?:[\)\]\.:]|\s*$|\s+(?=\S))",
    re.IGNORECASE,
)
_LETTER_LIST = re.compile(
    r"^[\s\(\[]*([A-Za-z])[\)\]]?(?:\s*(?:,|and|or|/|&|\+)\s*[\(\[]?([A-Za-z])[\)\]]?)+\s*\.?\s*$",
    re.IGNORECASE,
)
_VERDICTS = ("yes", "no", "maybe")
_NEGATIONS = frozenset({"not", "never", "t"})  # "t": what normalising leaves of "isn't"
_LATEX_WRAPPER = re.compile(r"\\(?:boxed|text|textbf|mathrm|mathbf)\s*\{([^{}]*)\}")
_MARKUP = re.compile(r"[*`$]|(?<!\w)_+|_+(?!\w)")


def unwrap_markup(answer: str) -> str:
    """``answer`` without Markdown emphasis, code ticks and LaTeX wrappers: ``**B**``,
    ``\\boxed{\\text{B}}`` and ```B``` all read as ``B``; each wrapper becomes its text between
    spaces, so ``\\boxed{A}\\boxed{B}`` still names two options."""
    return " ".join(_MARKUP.sub(" ", unwrap_latex(answer)).split())


def unwrap_latex(answer: str) -> str:
    """``answer`` with ``\\boxed{...}``, ``\\text{...}`` and the like replaced by their contents."""
    previous = None
    while previous != answer:
        previous, answer = answer, _LATEX_WRAPPER.sub(r" \1 ", answer)
    return " ".join(answer.split())


def _contains_phrase(haystack: str, needle: str) -> bool:
    return bool(needle) and f" {needle} " in f" {haystack} "


def choose_option(answer: str, options: dict[str, str]) -> str | None:
    """The single option letter ``answer`` picks, or ``None`` when it picks none or several."""
    letters = {key.upper(): key for key in options}
    if _LETTER_LIST.match(answer):
        return None  # "A and C", "B, D": several options
    picked: set[str] = set()
    remainder = answer
    prefix = _LETTER_PREFIX.match(answer)
    if prefix and prefix.group(1).upper() in letters:
        letter = letters[prefix.group(1).upper()]
        rest = normalise_answer(answer[prefix.end() :])
        # "B vitamins" is not option B: a letter followed by text must be followed by B's text.
        if (
            not rest
            or _contains_phrase(rest, normalise_answer(options[letter]))
            or prefix.group(0).rstrip()[-1:] in ").]:."
        ):
            picked.add(letter)
            remainder = answer[prefix.end() :]
    text = normalise_answer(remainder)
    if text:
        exact = [key for key, value in options.items() if normalise_answer(value) == text]
        if exact:
            picked.update(exact)
        else:
            named = [
                key
                for key, value in options.items()
                if _contains_phrase(text, normalise_answer(value))
            ]
            # Drop options whose text is only part of a longer named option ("insulin" in "insulin glargine").
            named = [
                key
                for key in named
                if not any(
                    other != key
                    and _contains_phrase(
                        normalise_answer(options[other]), normalise_answer(options[key])
                    )
                    for other in named
                )
            ]
            picked.update(named)
    return picked.pop() if len(picked) == 1 else None


def choose_verdict(answer: str) -> str | None:
    """The single verdict ``answer`` names, or ``None`` when it names none, several, or a negated
    one ("not yes", "definitely not no")."""
    words = normalise_answer(answer).split()
    if any(w in _VERDICTS and i and words[i - 1] in _NEGATIONS for i, w in enumerate(words)):
        return None
    found = [v for v in _VERDICTS if v in words]
    return found[0] if len(found) == 1 else None


def score_answer(item: QAItem, answer: str, metric: str = "em") -> float:
    """Correctness of ``answer`` for ``item`` in [0, 1] (on cleaned text: zero-width characters
    and compatibility forms do not matter, and a look-alike option letter reads as the letter)."""
    # Free text keeps "*" and "$" (products, units): only LaTeX wrappers are read through.
    unwrap = unwrap_markup if item.answer_type in ("mcq", "yesno") else unwrap_latex
    answer = unwrap(clean_text(answer))
    if len(answer.strip(" .()[]")) == 1:
        answer = map_confusables(answer)
    if item.answer_type == "mcq" and item.options:
        return float(choose_option(answer, item.options) == item.answer)
    if item.answer_type == "yesno":
        return float(choose_verdict(answer) == item.answer.lower())
    golds = (item.answer, *item.aliases)
    numeric = [numeric_match(answer, gold) for gold in golds]
    if any(numeric):
        return 1.0
    if metric == "f1" and not any(found is not None for found in numeric):
        # A quantity is right or wrong: token F1 would pay 2/3 of "300 mg" for "mg".
        return token_f1(answer, golds)
    return exact_match(answer, golds)


def final_answer_score(ctx: EpisodeContext) -> float:
    """``score_answer`` of the episode's final answer, 0 without one (use :func:`answer_score`,
    which computes it once per context)."""
    if ctx.final_answer is None:
        return 0.0
    return score_answer(ctx.item, ctx.final_answer, ctx.config.answer_metric)


def answer_score(ctx: EpisodeContext) -> float:
    """``score_answer`` of the final answer (0 without one), ignoring the reasoning gate: the factor
    that gates the process terms (``retrieval``, ``evidence``). Computed once per context and
    shared by the ``answer`` term, the process terms' gate and ``info["correct"]``."""
    return ctx.shared(final_answer_score)


def is_correct(ctx: EpisodeContext) -> bool:
    """Whether the episode's final answer is correct: ``score_answer(item, answer) == 1``, whatever
    the reward weights or the reasoning gate (``info["correct"]``, OpenRLHF's ``scores``)."""
    return answer_score(ctx) >= 1.0


@register_reward("answer", range=(0.0, 1.0))
def answer_reward(ctx: EpisodeContext) -> float:
    """1 for a correct final answer, 0 otherwise (token F1 for free text if configured)."""
    if ctx.final_answer is None:
        return 0.0
    min_words = ctx.config.min_reasoning_words or 0
    if min_words and real_word_count(ctx.reasoning) < min_words:
        return 0.0
    return answer_score(ctx)
