"""The action grammar: one model turn is free reasoning (optionally inside ``<think>``) followed by
exactly one ``<search>query</search>``, ``<read>doc-id</read>`` or ``<answer>text</answer>``.

:func:`parse_action` never raises: malformed turns come back as ``kind="invalid"`` with an
``error_code`` and a message written for the model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

ActionKind = Literal["search", "read", "answer", "invalid"]

ACTION_TAGS = ("search", "read", "answer")
THINK_TAG = "think"
ENV_TAGS = ("information", "error", "document")
"""Tags only the environment writes; a model turn containing them is a fake observation."""

MAX_ACTION_CHARS = 65_536
MAX_ARGUMENT_CHARS = 4_000

_TAG = re.compile(r"<\s*(/?)\s*([A-Za-z][A-Za-z0-9_-]{0,31})\s*(?:\s[^<>]{0,200})?>")
_THINK_BLOCK = re.compile(r"<\s*think\s*>(.*?)<\s*/\s*think\s*>", re.IGNORECASE | re.DOTALL)


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


def _invalid(code: str, message: str, reasoning: str = "") -> ParsedAction:
    return ParsedAction(kind="invalid", reasoning=reasoning, error_code=code, error=message)


def parse_action(text: str) -> ParsedAction:
    """Parse one model turn. Never raises; returns ``kind="invalid"`` with a reason instead."""
    if not isinstance(text, str):
        return _invalid("not_text", "The turn must be text.")
    if len(text) > MAX_ACTION_CHARS:
        return _invalid("too_long", f"The turn is longer than {MAX_ACTION_CHARS} characters.")
    text = text.replace("\x00", "")
    # Chat templates of reasoning models often open <think> in the prompt: accept a lone </think>.
    lone_close = re.search(r"<\s*/\s*think\s*>", text, re.IGNORECASE)
    if lone_close and not re.search(r"<\s*think\s*>", text[: lone_close.start()], re.IGNORECASE):
        text = "<think>" + text

    thoughts = [m.group(1).strip() for m in _THINK_BLOCK.finditer(text)]
    rest = _THINK_BLOCK.sub(" ", text)
    reasoning_before = "\n".join(thoughts)

    opens: list[re.Match[str]] = []
    closes: list[re.Match[str]] = []
    for match in _TAG.finditer(rest):
        closing, name = match.group(1) == "/", match.group(2).lower()
        if name in ENV_TAGS:
            return _invalid(
                "env_tag",
                f"Do not write <{name}>: the environment writes observations itself. "
                "End your turn with one action tag.",
                reasoning_before,
            )
        if name == THINK_TAG:
            return _invalid(
                "unclosed_tag", "Every <think> needs a matching </think>.", reasoning_before
            )
        if name not in ACTION_TAGS:
            return _invalid(
                "unknown_tag",
                f"Unknown tag <{name}>. Use <search>, <read> or <answer>.",
                reasoning_before,
            )
        (closes if closing else opens).append(match)

    if not opens and not closes:
        return _invalid(
            "no_action",
            "No action found. End your turn with <search>query</search>, <read>doc-id</read> "
            "or <answer>your answer</answer>.",
            "\n".join([reasoning_before, rest.strip()]).strip(),
        )
    if len(opens) > 1:
        names = ", ".join(f"<{m.group(2).lower()}>" for m in opens)
        return _invalid(
            "multiple_actions",
            f"Exactly one action per turn; found {len(opens)} ({names}).",
            reasoning_before,
        )
    if not opens:
        return _invalid(
            "stray_closing_tag", "Found a closing tag without its opening tag.", reasoning_before
        )
    opening = opens[0]
    name = opening.group(2).lower()
    if len(closes) != 1 or closes[0].group(2).lower() != name or closes[0].start() < opening.end():
        return _invalid(
            "unclosed_tag", f"<{name}> must be closed with </{name}>.", reasoning_before
        )

    argument = rest[opening.end() : closes[0].start()].strip()
    reasoning = "\n".join(
        part for part in (reasoning_before, rest[: opening.start()].strip()) if part
    )
    if not argument:
        what = {"search": "query", "read": "document id", "answer": "answer"}[name]
        return _invalid("empty_argument", f"The {what} inside <{name}> is empty.", reasoning)
    if len(argument) > MAX_ARGUMENT_CHARS:
        return _invalid(
            "argument_too_long",
            f"The text inside <{name}> exceeds {MAX_ARGUMENT_CHARS} characters.",
            reasoning,
        )
    trailing = bool(rest[closes[0].end() :].strip())
    return ParsedAction(kind=name, argument=argument, reasoning=reasoning, trailing_text=trailing)  # type: ignore[arg-type]
