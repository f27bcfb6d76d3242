"""Answer-string normalisation and token F1 (the SQuAD / Search-R1 convention)."""

from __future__ import annotations

import re
import string
from collections import Counter

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans({c: " " for c in string.punctuation + "‘’“”–—"})


def normalise_answer(text: str) -> str:
    """Lower case, punctuation and articles removed, white space collapsed."""
    text = text.lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, golds: list[str] | tuple[str, ...]) -> float:
    pred = normalise_answer(prediction)
    return float(any(pred == normalise_answer(g) for g in golds if g))


def token_f1(prediction: str, golds: list[str] | tuple[str, ...]) -> float:
    """The best token-level F1 of ``prediction`` against any gold string."""
    pred_tokens = normalise_answer(prediction).split()
    best = 0.0
    for gold in golds:
        gold_tokens = normalise_answer(gold).split()
        common = Counter(pred_tokens) & Counter(gold_tokens)
        overlap = sum(common.values())
        if overlap == 0:
            continue
        precision, recall = overlap / len(pred_tokens), overlap / len(gold_tokens)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best
