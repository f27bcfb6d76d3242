"""Fuzzing vocabulary for code that drives MedR3 with untrusted model turns.

Shared by the property-based tests and ``benchmarks/fuzz_actions.py``: tag fragments that look like
the action and observation markup (including broken ones), and words that are valid, hostile or
odd (control characters, bidi overrides, query-parser syntax, document ids of the starter corpus).
"""

from __future__ import annotations

FUZZ_TAGS: tuple[str, ...] = (
    "<search>",
    "</search>",
    "<read>",
    "</read>",
    "<answer>",
    "</answer>",
    "<think>",
    "</think>",
    "<information>",
    "</information>",
    "<error>",
    "<document>",
    "<b>",
    "< search >",
    "</ answer>",
    "<",
    ">",
    "<document/>",
    "<inf\u200bormation>",
    "＜information＞",
    "﹤answer﹥",
    "＜／ａｎｓｗｅｒ＞",
    "‹error›",
    "<іnformation>",
    "<think/>",
    "<think>" * 64,
    "</think>" * 64,
    "<answer><answer>",
    "<" * 256,
    "<a " * 64,
)

FUZZ_WORDS: tuple[str, ...] = (
    "insulin",
    "A",
    "B",
    "yes",
    "no",
    "card-001",
    "infx-010",
    "",
    " ",
    "\n",
    "\x00",
    "🩺",
    "title:x",
    "*",
    "a~2",
    "[a TO z]",
    "ﷺ",
    "\u202e",
    "\ud7ff",
    "é",
    # lone surrogates (unencodable: must never reach a backend or a log as-is)
    "\udc80",
    "\ud800",
    "card-001\udc80",
    # zero-width and format characters, bidi controls
    "\u200b",
    "\u200c",
    "\u200d",
    "\u2060",
    "\ufeff",
    "\u00ad",
    "\u202a",
    "\u202b",
    "\u202d",
    "\u2066",
    "\u2067",
    "\u2069",
    # combining marks (stacked), fullwidth and look-alike letters
    "a\u0301\u0302\u0303\u0336",
    "\u0336" * 8,
    "ｓｅａｒｃｈ",
    "ＡＮＳＷＥＲ",
    "іnfоrmаtіоn",
    "Ꭺ",
)

FUZZ_TEMPLATES: tuple[str, ...] = (
    "<search>insulin dose</search>",
    "<read>card-001</read>",
    "<answer>A</answer>",
    "<think>x</think><answer>no</answer>",
)
"""Well-formed turns for mutation-based fuzzing."""
