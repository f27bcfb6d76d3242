"""The action grammar: one model turn is free reasoning (optionally inside ``<think>``) followed by
exactly one ``<search>query</search>``, ``<read>doc-id</read>`` or ``<answer>text</answer>``.

:func:`parse_action` never raises and runs in linear time: malformed turns come back as
``kind="invalid"`` with an ``error_code`` and a message written for the model.

Tags are recognised on folded text (:func:`medr3_env.text_norm.fold_text`: NFKC, zero-width and
bidi characters removed, look-alike letters mapped to Latin, case-folded), so ``<ｉｎｆｏｒｍａｔｉｏｎ>``,
``<inf\u200bormation>`` and ``<іnformation>`` (Cyrillic і) are all the environment's own markup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, NamedTuple

from medr3_env.text_norm import fold_text

ActionKind = Literal["search", "read", "answer", "invalid"]

ACTION_TAGS = ("search", "read", "answer")
THINK_TAG = "think"
ENV_TAGS = ("information", "error", "document")
"""Tags only the environment writes; a model turn containing them is a fake observation."""

MAX_ACTION_CHARS = 65_536
MAX_ARGUMENT_CHARS = 4_000
MAX_TAG_CHARS = 240
"""The longest ``<...>`` run read as one tag; longer runs are text."""

# "<" and its NFKC equivalents open action tags; angle-bracket look-alikes (‹ 〈 ⟨) also open
# fake observation tags, which are refused in every spelling.
_OPENERS = "<\uff1c\ufe64"
_LOOKALIKE_OPENERS = "\u2039\u3008\u2329\u27e8"
_CLOSERS = ">\uff1e\ufe65\u203a\u3009\u232a\u27e9"
# A tag candidate: an opener, then (after optional white space and "/") a letter, up to the next
# closer. Requiring the letter keeps "a <5 mg> dose" and runs of "<" out of the Python loop.
_CANDIDATE = re.compile(
    f"[{_OPENERS}](?=\\s{{0,8}}(?:/\\s{{0,8}})?[^\\W\\d_])"
    f"([^{_OPENERS}{_CLOSERS}]{{0,{MAX_TAG_CHARS}}})[{_CLOSERS}]"
)
_TAG_BODY = re.compile(r"\s*(?:(/)\s*)?([a-z][a-z0-9_-]{0,31})(.*)\Z", re.DOTALL)
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-/")
# Folding one character at a time covers these; the rest of the astral planes and the CJK,
# Hangul and private-use blocks hold no character that folds to a tag-name character.
_FOLD_RANGES = (
    (0x80, 0x3400), (0x4DC0, 0x4E00), (0xA000, 0xAC00), (0xD7A4, 0xD800), (0xF900, 0x10000),
    (0x110BD, 0x110BE), (0x110CD, 0x110CE), (0x13430, 0x13440), (0x1BCA0, 0x1BCA4),
    (0x1D173, 0x1D17B), (0x1D400, 0x1D800), (0x1F100, 0x1F200), (0xE0000, 0xE0080),
)  # fmt: skip


@lru_cache(maxsize=1)
def _tag_fold_table() -> dict[int, str | None]:
    """``str.translate`` table that folds tag bodies one character at a time: a character whose
    :func:`fold_text` is only tag-name characters, "/" or white space maps to it (or is dropped
    when it folds to nothing); any other character stays, and no tag name contains it. Built once,
    on the first non-ASCII tag candidate (folding each candidate whole made 64 KB of ``<ж>`` cost
    ~100 ms)."""
    table: dict[int, str | None] = dict.fromkeys(range(0xD800, 0xE000))
    for low, high in _FOLD_RANGES:
        for code in range(low, high):
            folded = fold_text(chr(code))
            if not folded:
                table[code] = None
            elif all(c in _NAME_CHARS or c.isspace() for c in folded):
                table[code] = folded
    return table


@lru_cache(maxsize=1)
def _wide_candidate() -> re.Pattern[str]:
    """:data:`_CANDIDATE` for non-ASCII turns: the letter after the opener must be one that folds
    to a Latin letter, so bodies such as ``<ж>`` or CJK never reach the Python loop (a tag name
    starts with a-z after folding, so nothing else could be a tag)."""
    codes = sorted(
        code
        for code, folded in _tag_fold_table().items()
        if code <= 0xFFFF and folded and folded[0].isalpha() and chr(code).isalpha()
    )
    ranges: list[list[int]] = []
    for code in codes:
        if ranges and code == ranges[-1][1] + 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    letters = "".join(f"\\u{a:04x}-\\u{b:04x}" for a, b in ranges)
    # Astral math and enclosed letters as two whole blocks (a superset; _tag_at decides).
    letters += "\\U0001d400-\\U0001d7ff\\U0001f100-\\U0001f1ff"
    return re.compile(
        f"[{_OPENERS}](?=\\s{{0,8}}(?:/\\s{{0,8}})?[A-Za-z{letters}])"
        f"([^{_OPENERS}{_CLOSERS}]{{0,{MAX_TAG_CHARS}}})[{_CLOSERS}]"
    )


_THINK = re.compile(f"[{_OPENERS}]\\s{{0,8}}(?:(/)\\s{{0,8}})?think\\s{{0,8}}[{_CLOSERS}]", re.I)
_THINK_CLOSE = re.compile(f"[{_OPENERS}]\\s{{0,8}}/\\s{{0,8}}think\\s{{0,8}}[{_CLOSERS}]", re.I)
_ANY_OPENER = re.compile(f"[{_OPENERS}{_LOOKALIKE_OPENERS}]")
_LETTER = re.compile(r"[^\W\d_]")
# Searched on folded text, where fullwidth and small-form brackets are already "<".
_ENV_TAG = re.compile(
    f"[<{_LOOKALIKE_OPENERS}][\\s/]{{0,17}}(information|error|document)(?![a-z0-9_-])"
)


@dataclass(frozen=True)
class ParsedAction:
    """The result of parsing one turn."""

    kind: ActionKind
    argument: str = ""
    reasoning: str = ""
    error_code: str | None = None
    error: str | None = None
    trailing_text: bool = False

    @property
    def valid(self) -> bool:
        return self.kind != "invalid"


class _Tag(NamedTuple):
    start: int
    end: int
    name: str
    closing: bool
    self_closing: bool


def _invalid(code: str, message: str, reasoning: str = "") -> ParsedAction:
    return ParsedAction(kind="invalid", reasoning=reasoning, error_code=code, error=message)


def _env_tag_message(name: str) -> str:
    return (
        f"Do not write <{name}>: the environment writes observations itself. "
        "End your turn with one action tag."
    )


def _env_tag(text: str) -> str | None:
    """The environment tag written anywhere in ``text`` (inside ``<think>`` too), in any spelling."""
    if not _ANY_OPENER.search(text) or not _LETTER.search(text):
        return None  # no bracket, or no letter to spell a name with: nothing can be a tag
    folded = text.lower() if text.isascii() else fold_text(text)
    if not any(name in folded for name in ENV_TAGS):
        return None  # the common case, decided by three substring scans
    found = _ENV_TAG.search(folded)
    return found.group(1) if found else None


_PLAIN_TAGS = {
    body: (body.lstrip("/"), body.startswith("/"))
    for name in (*ACTION_TAGS, THINK_TAG)
    for body in (name, f"/{name}")
}


def _tag_at(text: str, match: re.Match[str]) -> _Tag | None:
    body = match.group(1)
    plain = _PLAIN_TAGS.get(body)
    if plain is not None:  # the common spelling, without a regex
        return _Tag(match.start(), match.end(), plain[0], plain[1], False)
    view = body.lower() if body.isascii() else body.translate(_tag_fold_table()).lower()
    parsed = _TAG_BODY.match(view)
    if parsed is None:
        return None  # "dose <5 mg>" and similar are text
    tail = parsed.group(3).strip()
    if parsed.group(3) and not (parsed.group(3)[0].isspace() or tail == "/"):
        return None
    return _Tag(
        start=match.start(),
        end=match.end(),
        name=parsed.group(2),
        closing=parsed.group(1) == "/",
        self_closing=tail.endswith("/"),
    )


def _visible(text: str) -> bool:
    return bool(fold_text(text).strip())


# A "<" that could start a tag: one followed by white space or slashes and a letter. Tag
# candidates, think tags and environment tags all start with one (on ASCII text).
_TAG_LIKE = re.compile(r"<(?=[\s/]*[A-Za-z])")
# On other text (which is folded, so invisible characters disappear) control codes may stand
# between the "<" and the letter, and any non-ASCII character after the "<" counts too (a letter
# that folds to Latin, an invisible or fullwidth character); the shortcut is not taken at all
# when the turn holds a character that is, or folds to, another opener: these (tested to be
# every such code point).
_WIDE_TAG_LIKE = re.compile(r"<(?=[\s/\x00-\x08\x0e-\x1b\x7f]*(?:[A-Za-z]|[^\x00-\x7f]))")
OTHER_OPENERS = "\u2039\u226e\u2329\u27e8\u3008\ufe3f\ufe64\uff1c"
_OTHER_OPENER = re.compile(f"[{OTHER_OPENERS}]")


def parse_action(text: str) -> ParsedAction:
    """Parse one model turn. Never raises; returns ``kind="invalid"`` with a reason instead."""
    if not isinstance(text, str):
        return _invalid("not_text", "The turn must be text.")
    if len(text) > MAX_ACTION_CHARS:
        return _invalid("too_long", f"The turn is longer than {MAX_ACTION_CHARS} characters.")
    text = text.replace("\x00", "")
    if text.isascii():
        common = _parse_common(text, _TAG_LIKE)
    else:
        common = None if _OTHER_OPENER.search(text) else _parse_common(text, _WIDE_TAG_LIKE)
    return common if common is not None else _parse_general(text)


def _parse_common(text: str, tag_like: re.Pattern[str]) -> ParsedAction | None:
    """The common turn, ``[text][<think>text</think>]text<action>text</action>text`` with no
    other ``tag_like`` ``<``, read with one scan and a few slices; ``None`` for any other turn.
    Gives what :func:`_parse_general` gives on such a turn (tested)."""
    found: list[int] = []
    for match in tag_like.finditer(text):
        found.append(match.start())
        if len(found) > 4:
            return None
    if len(found) == 4:
        think, think_end, opening, closing = found
        if not (text.startswith("<think>", think) and text.startswith("</think>", think_end)):
            return None
        thought = text[think + 7 : think_end].strip()
        rest = f"{text[:think]} {text[think_end + 8 : opening]}"
    elif len(found) == 2:
        opening, closing = found
        thought, rest = "", text[:opening]
    else:
        return None
    end = text.find(">", opening)
    name = text[opening + 1 : end]
    if end < 0 or name not in ACTION_TAGS or not text.startswith(f"</{name}>", closing):
        return None
    reasoning = "\n".join(part for part in (thought, rest.strip()) if part)
    after = text[closing + len(name) + 3 :]
    return _action(name, text[end + 1 : closing].strip(), reasoning, after)


def _parse_general(text: str) -> ParsedAction:
    """:func:`parse_action` for any turn: one left-to-right pass (linear time)."""
    # One left-to-right pass with a cursor: think blocks become reasoning (a block is skipped with
    # one search for its closing tag), everything else is the "rest", where exactly one action
    # must stand. Each character is looked at a bounded number of times.
    thoughts: list[str] = []
    rest_parts: list[str] = []
    actions: list[tuple[_Tag, int, int]] = []  # tag, its start and end offsets in the rest
    rest_len = 0
    position = 0
    problem: tuple[str, str] | None = None
    first_think = _THINK.search(text)
    if first_think is not None and first_think.group(1):
        # Chat templates of reasoning models often open <think> in the prompt: a lone leading
        # </think> closes a block that starts at the beginning of the turn.
        thoughts.append(text[: first_think.start()].strip())
        rest_parts.append(" ")
        rest_len, position = 1, first_think.end()
    candidates = _CANDIDATE if text.isascii() else _wide_candidate()
    while problem is None:
        match = candidates.search(text, position)
        if match is None:
            break
        tag = _tag_at(text, match)
        if tag is None:
            # Not a tag: keep scanning just after its "<" (a later "<" may open a real tag).
            segment = text[position : match.start() + 1]
            rest_parts.append(segment)
            rest_len += len(segment)
            position = match.start() + 1
            continue
        segment = text[position : tag.start]
        rest_parts.append(segment)
        rest_len += len(segment)
        position = tag.end
        if tag.name == THINK_TAG:
            if tag.closing or tag.self_closing:
                problem = ("unclosed_tag", "Every <think> needs a matching </think>.")
                break
            close = _THINK_CLOSE.search(text, tag.end)
            if close is None:
                thoughts.append(text[tag.end :].strip())
                problem = ("unclosed_tag", "Every <think> needs a matching </think>.")
                position = len(text)
                break
            thoughts.append(text[tag.end : close.start()].strip())
            rest_parts.append(" ")
            rest_len += 1
            position = close.end()
            continue
        if tag.name not in ACTION_TAGS:
            problem = (
                "unknown_tag",
                f"Unknown tag <{tag.name}>. Use <search>, <read> or <answer>.",
            )
            break
        tag_text = text[tag.start : tag.end]
        rest_parts.append(tag_text)
        actions.append((tag, rest_len, rest_len + len(tag_text)))
        rest_len += len(tag_text)
        if (
            sum(1 for a in actions if not a[0].closing) > 1
            or sum(1 for a in actions if a[0].closing) > 1
        ):
            break  # already malformed; the rest cannot make it valid
    rest_parts.append(text[position:])
    rest = "".join(rest_parts)
    reasoning_before = "\n".join(t for t in thoughts if t)

    env_tag = _env_tag(text)
    if env_tag is not None:
        return _invalid("env_tag", _env_tag_message(env_tag), reasoning_before)
    if problem is not None:
        return _invalid(problem[0], problem[1], reasoning_before)
    opens = [a for a in actions if not a[0].closing]
    closes = [a for a in actions if a[0].closing]
    if not opens and not closes:
        return _invalid(
            "no_action",
            "No action found. End your turn with <search>query</search>, <read>doc-id</read> "
            "or <answer>your answer</answer>.",
            "\n".join([reasoning_before, rest.strip()]).strip(),
        )
    if len(opens) > 1:
        names = ", ".join(f"<{tag.name}>" for tag, _, _ in opens)
        return _invalid(
            "multiple_actions",
            f"Exactly one action per turn; found {len(opens)} ({names}).",
            reasoning_before,
        )
    if not opens:
        return _invalid(
            "stray_closing_tag", "Found a closing tag without its opening tag.", reasoning_before
        )
    opening, open_start, open_end = opens[0]
    name = opening.name
    if (
        opening.self_closing
        or len(closes) != 1
        or closes[0][0].name != name
        or closes[0][1] < open_end
    ):
        return _invalid(
            "unclosed_tag", f"<{name}> must be closed with </{name}>.", reasoning_before
        )
    close_tag, close_start, _ = closes[0]
    argument = rest[open_end:close_start].strip()
    reasoning = "\n".join(part for part in (reasoning_before, rest[:open_start].strip()) if part)
    return _action(name, argument, reasoning, text[close_tag.end :])


def _action(name: str, argument: str, reasoning: str, after: str) -> ParsedAction:
    """The action ``<name>argument</name>`` (stripped ``argument``), its reasoning, and the text
    ``after`` its closing tag; invalid when the argument is empty or too long."""
    if not _visible(argument):
        what = {"search": "query", "read": "document id", "answer": "answer"}[name]
        return _invalid("empty_argument", f"The {what} inside <{name}> is empty.", reasoning)
    if len(argument) > MAX_ARGUMENT_CHARS:
        return _invalid(
            "argument_too_long",
            f"The text inside <{name}> exceeds {MAX_ARGUMENT_CHARS} characters.",
            reasoning,
        )
    # Anything visible after the closing tag is trailing text, including a later <think> block.
    trailing = _visible(after)
    return ParsedAction(kind=name, argument=argument, reasoning=reasoning, trailing_text=trailing)  # type: ignore[arg-type]
