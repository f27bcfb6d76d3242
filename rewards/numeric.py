"""Numeric free-text answers: numbers with units, ranges and tolerances.

A gold such as ``"8-10 mmol/L"`` is matched by any single number inside the range with the same
unit (``"10 mmol/L"``, ``"9 mmol/l"``); ``"0.9 mg/kg"`` by ``"0.9 mg per kg"``; ``"48 hours"`` by
``"48 h"``. The matcher only applies when the gold is exactly one quantity *with a unit* plus
words that the answer repeats; everything else is left to exact match. It never accepts:

* a number without the gold's unit (``"10"`` or ``"10 mmol"`` for ``"8-10 mmol/L"``);
* an answer naming several quantities (``"5 mg or 10 mg"``): hedging is not an answer;
* an answer range that is not inside the gold range (``"5-15 mmol/L"`` for ``"8-10 mmol/L"``);
* an answer that drops or adds words (``"4 g"`` for ``"magnesium sulfate 4 g"``, ``"not 4 g"``).

Tolerance: ``rel_tol`` widens every gold bound by that fraction; a gold written ``"90 ± 5 mg"``
states its own tolerance (85-95 mg).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+"
_SUPERSCRIPT = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")
_COMPONENT = r"(?:%|[a-zµμ°][a-z0-9µμ°²³]*(?:\s?hg)?)"
_QUANTITY = re.compile(
    rf"(?<![\w.])(?P<low>{_NUMBER})"
    rf"(?:\s*(?:(?P<dash>-|–|—|to)|(?P<pm>±|\+/-|\+-))\s*(?P<high>{_NUMBER}))?"
    r"(?P<unit>"
    r"(?:\s*[x×*]\s*10\s*(?:\^|\*\*)?\s*[0-9⁰¹²³⁴⁵⁶⁷⁸⁹]+)?"
    rf"(?:\s*{_COMPONENT}(?:\s*(?:/|\bper\b)\s*(?:1\.73\s*m(?:2|²|\^2)|24\s*h(?:ours?|rs?)?\b|{_COMPONENT}))*"
    r"|\s*/\s*[a-z]+)?"
    r")",
    re.IGNORECASE,
)
_WORD = re.compile(r"[a-z]+")
# Words that do not change a numeric answer's meaning.
_FILLER = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "about",
        "approximately",
        "around",
        "roughly",
        "circa",
        "some",
        "is",
        "it",
        "its",
        "dose",
        "value",
    ]
)
_UNIT_WORDS = {
    # time
    "h": "h", "hr": "h", "hrs": "h", "hour": "h", "hours": "h",
    "min": "min", "mins": "min", "minute": "min", "minutes": "min",
    "s": "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    "d": "day", "day": "day", "days": "day",
    "wk": "week", "wks": "week", "week": "week", "weeks": "week",
    "mo": "month", "month": "month", "months": "month",
    "y": "year", "yr": "year", "yrs": "year", "year": "year", "years": "year",
    # mass
    "mcg": "mcg", "µg": "mcg", "μg": "mcg", "ug": "mcg", "microgram": "mcg", "micrograms": "mcg",
    "mg": "mg", "milligram": "mg", "milligrams": "mg",
    "g": "g", "gram": "g", "grams": "g", "gm": "g",
    "kg": "kg", "kilogram": "kg", "kilograms": "kg",
    "ng": "ng", "nanogram": "ng", "nanograms": "ng",
    # volume
    "ml": "ml", "millilitre": "ml", "millilitres": "ml", "milliliter": "ml", "milliliters": "ml",
    "l": "l", "litre": "l", "litres": "l", "liter": "l", "liters": "l", "dl": "dl",
    # amount, activity, pressure, rate
    "mmol": "mmol", "millimole": "mmol", "millimoles": "mmol", "µmol": "umol", "μmol": "umol",
    "umol": "umol", "mol": "mol", "meq": "meq", "mosm": "mosm",
    "u": "unit", "iu": "unit", "unit": "unit", "units": "unit",
    "mu": "munit", "miu": "munit",
    "mmhg": "mmhg", "mm hg": "mmhg", "kpa": "kpa", "cmh2o": "cmh2o",
    "bpm": "beat/min", "beat": "beat", "beats": "beat", "breath": "breath", "breaths": "breath",
    "%": "%", "percent": "%", "pct": "%",
    "°c": "°c", "degc": "°c", "°f": "°f", "mm": "mm", "cm": "cm", "m": "m",
    "nmol": "nmol", "pmol": "pmol", "pg": "pg", "fl": "fl", "mosmol": "mosm",
    "µl": "ul", "μl": "ul", "ul": "ul", "mcl": "ul", "microliter": "ul", "microliters": "ul",
    "mm3": "mm3", "m2": "m2", "m²": "m2", "cell": "cell", "cells": "cell",
    "dose": "dose", "doses": "dose", "tablet": "tablet", "tablets": "tablet",
}  # fmt: skip
_KNOWN_UNITS = frozenset(_UNIT_WORDS.values()) | {"1.73m2", "day"}
"""Canonical unit parts; a number followed by any other word has no unit ("GOLD 3 severe")."""
_COMPARATORS = (
    ("<=", " le "),
    (">=", " ge "),
    ("≤", " le "),
    ("≥", " ge "),
    ("<", " lt "),
    (">", " gt "),
)


@dataclass(frozen=True)
class Quantity:
    """A number or closed range ``[low, high]`` with a canonical unit (``""`` when none)."""

    low: float
    high: float
    unit: str
    span: tuple[int, int]


def _number(text: str) -> float:
    return float(text.replace(",", ""))


@lru_cache(maxsize=4096)
def canonical_unit(unit: str) -> str:
    """``"mmol per litre"`` → ``"mmol/l"``, ``"Hours"`` → ``"h"``, ``"x 10^9/L"`` → ``"10^9/l"``."""
    unit = unit.translate(_SUPERSCRIPT).strip().lower()
    unit = re.sub(r"\s*(?:/|\bper\b)\s*", "/", unit)
    unit = re.sub(r"^[x×*]\s*10\s*(?:\^|\*\*)?\s*(\d+)\s*", r"10^\1 ", unit).strip()
    parts = []
    for part in unit.split("/"):
        part = part.strip()
        scale, _, rest = part.partition(" ") if part.startswith("10^") else ("", "", part)
        rest = re.sub(r"\s+", " ", rest.strip())
        if re.fullmatch(r"24\s*h(?:ours?|rs?)?", rest):
            rest = "day"  # "mg/24 h" = "mg/day"
        elif rest.replace(" ", "") in _UNIT_WORDS:
            rest = _UNIT_WORDS[rest.replace(" ", "")]
        elif rest in _UNIT_WORDS:
            rest = _UNIT_WORDS[rest]
        elif rest.startswith("1.73"):
            rest = "1.73m2"
        elif len(rest) > 3 and rest.endswith("s"):
            rest = rest[:-1]  # "tablets" = "tablet"
        parts.append(" ".join(p for p in (scale, rest) if p))
    return "/".join(parts)


def _is_known(unit: str) -> bool:
    return all(
        part.split(" ")[-1] in _KNOWN_UNITS or part.startswith("10^") for part in unit.split("/")
    )


def quantities(text: str) -> list[Quantity]:
    """Every number (or range) in ``text`` with the unit written after it (``""`` when the word
    after the number is not a unit)."""
    found = []
    for match in _QUANTITY.finditer(text):
        low = _number(match["low"])
        high = _number(match["high"]) if match["high"] else low
        if match["pm"]:
            low, high = low - high, low + high
        if high < low:
            low, high = high, low
        unit = canonical_unit(match["unit"] or "")
        span = match.span()
        if unit and not _is_known(unit):
            unit, span = (
                "",
                (match.start(), match.end("high") if match["high"] else match.end("low")),
            )
        found.append(Quantity(low, high, unit, span))
    return found


def _words(text: str, skip: tuple[int, int]) -> set[str]:
    rest = (text[: skip[0]] + " " + text[skip[1] :]).lower()
    for symbol, word in _COMPARATORS:  # "<55 mg/dL" is not "55 mg/dL"
        rest = rest.replace(symbol, word)
    return {w for w in _WORD.findall(rest) if w not in _FILLER}


def _parsed(text: str) -> tuple[tuple[Quantity, ...], frozenset[str] | None]:
    """Quantities of ``text`` and, when there is exactly one, the words around it."""
    found = tuple(quantities(text))
    words = frozenset(_words(text, found[0].span)) if len(found) == 1 else None
    return found, words


# Golds are scored in every episode, so their parse is cached; answers are not (unbounded).
_parsed_gold = lru_cache(maxsize=8192)(_parsed)


def numeric_match(prediction: str, gold: str, *, rel_tol: float = 0.0) -> bool | None:
    """Whether ``prediction`` states ``gold``'s quantity; ``None`` when ``gold`` is not one
    quantity with a unit (the caller then uses its other matchers).

    >>> numeric_match("10 mmol/l", "8-10 mmol/L"), numeric_match("10", "8-10 mmol/L")
    (True, False)
    """
    if rel_tol < 0:
        raise ValueError(f"rel_tol must be >= 0, got {rel_tol}")
    if not any(c.isdigit() for c in gold):
        return None
    gold_q, gold_words = _parsed_gold(gold)
    if len(gold_q) != 1 or not gold_q[0].unit:
        return None
    want = gold_q[0]
    if not any(c.isdigit() for c in prediction):
        return False
    pred_q, pred_words = _parsed(prediction)
    if len(pred_q) != 1:
        return False
    got = pred_q[0]
    if got.unit != want.unit or pred_words != gold_words:
        return False
    low = want.low - abs(want.low) * rel_tol - 1e-9
    high = want.high + abs(want.high) * rel_tol + 1e-9
    return low <= got.low and got.high <= high
