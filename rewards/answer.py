"""``answer``: is the final answer correct?

* multiple choice: the option letter ("B", "(B)", "B. Digoxin", "Option B") or the option's text;
* yes/no/maybe: the single verdict word ("not yes" names no verdict);
* free text: normalised exact match against the gold answer and its aliases, or token F1
  (``EnvConfig.answer_metric="f1"``); a gold that is one quantity with a unit ("8-10 mmol/L",
  "48 hours") also matches the same quantity written differently (:mod:`.numeric`).

In option and verdict answers, Markdown emphasis, code ticks and LaTeX wrappers (``**B**``,
```B```, ``$\\boxed{B}$``) are read as the text they wrap; free text reads through LaTeX wrappers
only. An answer that names several options (or several verdicts) is wrong, including a letter
written next to another option's letter or text ("C or D. Adenosine", "Metoprolol (option A)").
In stages that require reasoning (``min_reasoning_words``), an answer given without that many
real words of reasoning (distinct content words: filler repeated, stop words and numbers do not
count) scores 0.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from medr3_env.corpora.records import QAItem
from medr3_env.rewards.answer_text import exact_match, normalise_answer, token_f1
from medr3_env.rewards.context import EpisodeContext
from medr3_env.rewards.guards import real_word_count
from medr3_env.rewards.numeric import numeric_match
from medr3_env.rewards.registry import register_reward
from medr3_env.text_norm import clean_text, map_confusables

_LETTER_PREFIX = re.compile(
    r"^\s*(?:(?:the\s+|my\s+)?(?:(?:correct|final|best|right)\s+)?(?:option|answer|choice)\s*"
    r"(?:is\s*)?[:\-]?\s*)?"
    r"[\(\[]?([A-Za-z])(?:[\)\]\.:]|\s*$|\s+(?=\S))",
    re.IGNORECASE,
)
_LETTER_LIST = re.compile(
    r"^[\s\(\[]*([A-Za-z])[\)\]]?(?:\s*(?:,|and|or|/|&|\+)\s*[\(\[]?([A-Za-z])[\)\]]?)+\s*\.?\s*$",
    re.IGNORECASE,
)
_OTHER_LETTER = re.compile(
    r"\b(?i:option|choice|answer)\s*[\(\[]?([A-Za-z])(?![A-Za-z0-9])"
    r"|[\(\[]([A-Za-z])[\)\]]"
    r"|(?<![A-Za-z0-9'])([A-Z])(?=\s*(?:[\)\]:,;/&+\-–—]|\.(?!\w)|$)|\s+(?i:or|and)\b)"
    r"|^\W*([A-Z])(?=\s+[^a-z\s])"
)
"""An option letter written as one: "option D", "(D)", or a capital "D" before a bracket, a
colon, a full stop, a list separator, "or"/"and" or the end, or first before a capitalised word
("D Adenosine"); lower-case bare letters are words ("a")."""
_ARTICLE = r"(?-i:(?:[Aa]n?|[Tt]he)\s+(?=[a-z])|(?:An|The)\s+)?"
"""An article before a quoted option text ("A beta blocker"); a capital "A" before a capitalised
text is a letter ("A Adenosine")."""
_AFFIRMATION = re.compile(
    r"(?:is|would be|seems)(?: most likely| probably)?(?: correct| right| best)?"
    r"(?: answer| option| choice)?"
)
"""What may follow a letter without naming anything else ("B is correct", "B is the answer")."""
_BARE_LETTER = re.compile(r"\s*[\(\[]?([A-Za-z])[\)\]]?\s*[.:]?\s*")
_NOT_WORD = re.compile(r"[^\w\s]|_")
_LONE_LETTER = re.compile(r"(?<!\w)\w(?!\w)")
_VERDICTS = ("yes", "no", "maybe")
_NEGATIONS = frozenset(
    ["not", "never", "neither", "nor", "t", "isnt", "arent", "doesnt", "dont", "cannot", "cant"]
)  # "t": what normalising leaves of "isn't"; "isnt": of "isn`t" and of "isnt"
_WRAPPERS = "boxed|fbox|text|textbf|textit|textrm|texttt|emph|underline|mathrm|mathbf|mathit|mathsf"
_LATEX_TOKEN = re.compile(
    rf"\\(?:({_WRAPPERS})\s*\{{|[A-Za-z]+\s*\{{|[()\[\]]|[,;:! ])|\\%|\{{|\}}"
)
"""A wrapper's opening (``\\boxed{``), another command's (``\\frac{``), a math delimiter
(``\\(``, ``\\[``), a spacing command (``\\,``), ``\\%``, a bare brace or a closing brace."""
_MARKUP = re.compile(r"[*`$~{}]|(?<!\w)_+|_+(?!\w)")
_MARKUP_IN_WORD = re.compile(r"(?<=[a-z])[*`]+(?=[a-z])")
_LINE_MARKER = re.compile(r"^[ \t]*(?:#{1,6}|>+)[ \t]+", re.M)
_SPACE_AFTER_OPEN = re.compile(r"([(\[])\s+")
_SPACE_BEFORE_CLOSE = re.compile(r"\s+(?=[)\].,:;!?])")


def unwrap_markup(answer: str) -> str:
    """``answer`` without Markdown emphasis, code ticks, headings and LaTeX wrappers:
    ``**B**``, ``\\boxed{\\text{B}}``, ``\\(B\\)`` and ```B``` all read as ``B``. A wrapper
    between two words becomes a space (``\\boxed{A}\\boxed{B}`` and ``**A** **B**`` still name two
    options), one inside a word joins it (``**n**ot yes`` is ``not yes``); a space the unwrapping
    leaves before a closing bracket or punctuation goes (``(**B**)`` is ``(B)``, ``**A**. Digoxin``
    is ``A. Digoxin``)."""
    text = _LINE_MARKER.sub("", unwrap_latex(answer))
    text = _MARKUP.sub(" ", _MARKUP_IN_WORD.sub("", text))
    text = _SPACE_BEFORE_CLOSE.sub("", _SPACE_AFTER_OPEN.sub(r"\1", " ".join(text.split())))
    return text


def _lower(char: str) -> bool:
    return char.isalpha() and char.islower()


def unwrap_latex(answer: str) -> str:
    """``answer`` with ``\\boxed{...}``, ``\\text{...}`` and the like replaced by their contents,
    math delimiters (``\\(``, ``\\]``) and spacing commands (``\\,``) by spaces, ``\\%`` by
    ``%``. One left-to-right pass (linear in the length, however deep the nesting): braces pair
    up innermost first; an unclosed wrapper stays as written, and so do another command's braces
    (``\\frac{1}{2}``) and bare ones. A wrapper becomes a space unless it touches a letter or
    digit on that side (``n\\text{ot}`` is ``not``)."""
    if "\\" not in answer:
        return " ".join(answer.split())
    out: list[str] = []
    opened: list[tuple[int, str]] = []  # each unclosed "{": (its index in out, what it becomes)
    position = 0
    for token in _LATEX_TOKEN.finditer(answer):
        start, end = token.span()
        out.append(answer[position:start])
        position = end
        text = token.group()
        if text.endswith("{"):
            if token.group(1) is None:  # a bare brace or another command's: kept as written
                replacement = text
            else:
                inside = answer[end : end + 1]
                replacement = "" if _lower(answer[start - 1 : start]) and _lower(inside) else " "
            opened.append((len(out), replacement))
            out.append(text)
        elif text == "}":
            if not opened:
                out.append(text)
                continue
            index, replacement = opened.pop()
            if replacement.endswith("{"):
                out.append(text)
                continue
            out[index] = replacement
            joined = _lower(answer[start - 1 : start]) and _lower(answer[end : end + 1])
            out.append("" if joined else " ")
        elif text == "\\%":
            out.append("%")
        else:
            out.append(" ")
    out.append(answer[position:])
    return " ".join("".join(out).split())


def _words_of(text: str) -> str:
    return " ".join(_NOT_WORD.sub(" ", text.lower()).split())


def _contains_phrase(haystack: str, needle: str) -> bool:
    return bool(needle) and f" {needle} " in f" {haystack} "


class _Options(NamedTuple):
    """A question's options as :func:`choose_option` compares them (built once per option set)."""

    letters: dict[str, str]
    """Upper-case letter → option key."""
    texts: dict[str, str]
    """Key → the option's text, normalised (:func:`normalise_answer`)."""
    words: dict[str, str]
    """Key → the option's words with articles kept (for the whole-answer match)."""
    inside: dict[str, frozenset[str]]
    """Key → the other options whose text contains this option's text ("insulin glargine")."""
    quoted: tuple[re.Pattern[str], ...]
    """Each option's text (longest first) as it may be quoted in an answer, with its article."""


@lru_cache(maxsize=4096)
def _option_set(options: tuple[tuple[str, str], ...]) -> _Options:
    read = {key: _option_text(value) for key, value in options}
    texts = {key: normalise_answer(value) for key, value in read.items()}
    inside = {
        key: frozenset(
            other for other in texts if other != key and _contains_phrase(texts[other], text)
        )
        for key, text in texts.items()
    }
    quoted = tuple(
        re.compile(rf"(?<!\w){_ARTICLE}{re.escape(value.strip())}(?!\w)", re.IGNORECASE)
        for value in sorted(read.values(), key=len, reverse=True)
        if value.strip()
    )
    return _Options(
        letters={key.upper(): key for key in read},
        texts=texts,
        words={key: _words_of(value) for key, value in read.items()},
        inside=inside,
        quoted=quoted,
    )


def choose_option(answer: str, options: dict[str, str]) -> str | None:
    """The single option letter ``answer`` picks, or ``None`` when it picks none or several
    (``answer`` as :func:`score_answer` passes it: cleaned and unwrapped; the option texts are
    read the same way here)."""
    known = _option_set(tuple(options.items()))
    letters, texts = known.letters, known.texts
    bare = _BARE_LETTER.fullmatch(answer)
    if bare:  # the common answer: "B", "(B)", "B." (a letter, even where an option's text is "B")
        return letters.get(bare.group(1).upper())
    # The whole answer is one option's text, articles kept ("A and B" as an option's text; while
    # "A. Digoxin" is a letter and a text, not the text "a digoxin").
    answer_words = _words_of(answer)
    exact = [key for key, words in known.words.items() if words == answer_words]
    if len(exact) == 1:
        return exact[0]
    if _LETTER_LIST.match(answer):
        return None  # "A and C", "B, D": several options
    whole = normalise_answer(answer)
    picked: set[str] = set()
    picked_by_prefix: set[str] = set()
    remainder = answer
    prefix = _LETTER_PREFIX.match(answer)
    if prefix and prefix.group(1).upper() in letters:
        letter = letters[prefix.group(1).upper()]
        rest = normalise_answer(answer[prefix.end() :])
        # "B vitamins" is not option B: a letter followed by text must be followed by B's text.
        if (
            not rest
            or _AFFIRMATION.fullmatch(rest)
            or _contains_phrase(rest, texts[letter])
            or prefix.group(0).rstrip()[-1:] in ").]:."
        ):
            picked.add(letter)
            picked_by_prefix.add(letter)
            remainder = answer[prefix.end() :]
    text = normalise_answer(remainder)
    if text:
        exact = [key for key, value in texts.items() if value == text]
        if exact:
            picked.update(exact)
        else:
            named = {key for key, value in texts.items() if _contains_phrase(text, value)}
            # Drop options whose text is only part of a longer named option ("insulin" in "insulin glargine").
            picked.update(key for key in named if not known.inside[key] & named)
    if len(picked) != 1:
        return None
    choice = picked.pop()
    if choice not in picked_by_prefix and _negated(whole, texts[choice]):
        return None  # "not metoprolol"
    leftover = remainder if choice in picked_by_prefix else answer
    return None if _names_other_letter(leftover, choice, known) else choice


def _negated(text: str, phrase: str) -> bool:
    return any(_contains_phrase(text, f"{word} {phrase}") for word in _NEGATIONS | {"no"})


def _names_other_letter(text: str, choice: str, known: _Options) -> bool:
    """Whether ``text``, without the option texts it quotes, still writes another option's letter
    ("C or D. Adenosine", "Metoprolol (option A)")."""
    for quoted in known.quoted:
        text = quoted.sub(" ", text)
    others = set(known.letters) - {choice.upper()}
    for found in _OTHER_LETTER.finditer(text):
        letter = next(g for g in found.groups() if g)
        if letter.upper() in others:
            return True
    return False


def choose_verdict(answer: str) -> str | None:
    """The single verdict ``answer`` names, or ``None`` when it names none, several, or a negated
    one ("not yes", "definitely not no")."""
    words = normalise_answer(answer).split()
    if any(w in _VERDICTS and i and words[i - 1] in _NEGATIONS for i, w in enumerate(words)):
        return None
    found = [v for v in _VERDICTS if v in words]
    return found[0] if len(found) == 1 else None


def _option_text(text: str) -> str:
    """An option answer or an option's text as :func:`choose_option` reads it: cleaned, wrappers
    read through, and a look-alike letter standing alone mapped to the letter ("В) Metoprolol",
    "А. Digoxin"; the same on both sides, so "β-blocker" still matches its option)."""
    text = unwrap_markup(clean_text(text))
    if text.isascii():
        return text
    return _LONE_LETTER.sub(lambda m: map_confusables(m.group()), text)


def score_answer(item: QAItem, answer: str, metric: str = "em") -> float:
    """Correctness of ``answer`` for ``item`` in [0, 1] (on cleaned text: zero-width characters
    and compatibility forms do not matter, and a look-alike option letter reads as the letter)."""
    # Free text keeps "*" and "$" (products, units): only LaTeX wrappers are read through.
    unwrap = unwrap_markup if item.answer_type in ("mcq", "yesno") else unwrap_latex
    if item.answer_type == "mcq" and item.options:
        return float(choose_option(_option_text(answer), item.options) == item.answer)
    answer = unwrap(clean_text(answer))
    if len(answer.strip(" .()[]")) == 1:
        answer = map_confusables(answer)
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
