"""Cheap baselines and leak checks for a question set: what a policy scores without answering
(longest option, first option, stem-overlap option, majority verdict) and what crosses splits."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from itertools import combinations

from pydantic import BaseModel

from medr3_env.corpora.records import Document, QAItem
from medr3_env.search.query import STOPWORDS

_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")
# Function words plus question scaffolding: overlap on these says nothing about the answer.
_STOP = STOPWORDS | frozenset(
    [
        "yes",
        "following",
        "best",
        "likely",
        "next",
        "step",
        "option",
        "options",
        "patient",
        "patients",
        "year",
        "old",
        "man",
        "woman",
        "presents",
        "presented",
        "given",
        "shows",
    ]
)

THRESHOLDS = {
    "longest_over_chance": 0.08,
    "overlap_over_chance": 0.10,
    "max_gold_letter_share": 0.35,
    "min_mcq_for_letter_check": 20,
    "max_majority_verdict": 0.55,
    "question_jaccard": 0.5,
    "same_gold_question_jaccard": 0.2,
    "passage_jaccard": 0.35,
}
"""Limits the starter set is held to (issue #12): baselines per split, similarity for duplicates."""


def content_words(text: str) -> set[str]:
    """Lower-cased content words of ``text``, plural ``-s`` stripped so "drugs" meets "drug"."""
    words = set()
    for word in _WORD.findall(text.lower()):
        if word in _STOP or len(word) < 2:
            continue
        if len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        words.add(word)
    return words


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def normalised(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def _pick_share(item: QAItem, scores: dict[str, float]) -> float:
    """Expected accuracy of picking the top-scoring option, ties broken uniformly at random."""
    best = max(scores.values())
    top = [key for key, value in scores.items() if value == best]
    return (item.answer in top) / len(top)


def longest_option_share(item: QAItem) -> float:
    """1 when the gold is the single longest option (by characters), 1/k when k options tie."""
    assert item.options is not None
    return _pick_share(item, {k: float(len(v.strip())) for k, v in item.options.items()})


def overlap_option_share(item: QAItem) -> float:
    """Same for the option sharing most content words with the stem (no passage read)."""
    assert item.options is not None
    stem = content_words(item.question)
    return _pick_share(
        item, {k: float(len(content_words(v) & stem)) for k, v in item.options.items()}
    )


class SplitReport(BaseModel):
    """The cheap baselines on one split. Accuracies are over that split's mcq or yes/no items."""

    split: str
    n: int
    n_mcq: int
    n_yesno: int
    n_free: int
    n_needs_corpus: int
    n_multi_hop: int
    chance: float | None
    always_longest: float | None
    first_option: float | None
    question_overlap: float | None
    gold_letters: dict[str, float]
    majority_verdict: float | None
    majority_label: str | None


def split_report(split: str, items: Sequence[QAItem]) -> SplitReport:
    mcq = [q for q in items if q.answer_type == "mcq" and q.options]
    yesno = [q for q in items if q.answer_type == "yesno"]

    def mean(values: Iterable[float]) -> float | None:
        values = list(values)
        return round(sum(values) / len(values), 4) if values else None

    letters = Counter(q.answer for q in mcq)
    verdicts = Counter(q.answer.lower() for q in yesno)
    label, top = verdicts.most_common(1)[0] if verdicts else (None, 0)
    return SplitReport(
        split=split,
        n=len(items),
        n_mcq=len(mcq),
        n_yesno=len(yesno),
        n_free=sum(q.answer_type == "free" for q in items),
        n_needs_corpus=sum(q.metadata.get("needs_corpus") is True for q in items),
        n_multi_hop=sum(q.metadata.get("hops") == 2 for q in items),
        chance=mean(1 / len(q.options or {}) for q in mcq),
        always_longest=mean(longest_option_share(q) for q in mcq),
        first_option=mean(float(q.answer == sorted(q.options or {})[0]) for q in mcq),
        question_overlap=mean(overlap_option_share(q) for q in mcq),
        gold_letters={k: round(v / len(mcq), 4) for k, v in sorted(letters.items())},
        majority_verdict=round(top / len(yesno), 4) if yesno else None,
        majority_label=label,
    )


def split_reports(items: Sequence[QAItem]) -> list[SplitReport]:
    """One report per split (in train/dev/test order, then others), then one over everything."""
    by_split: dict[str, list[QAItem]] = defaultdict(list)
    for item in items:
        by_split[item.split or "none"].append(item)
    order = sorted(
        by_split,
        key=lambda s: (
            ("train", "dev", "test").index(s) if s in ("train", "dev", "test") else 9,
            s,
        ),
    )
    return [split_report(s, by_split[s]) for s in order] + [split_report("all", list(items))]


def baseline_violations(reports: Sequence[SplitReport]) -> list[str]:
    """Each threshold of :data:`THRESHOLDS` a split breaks, as a readable sentence."""
    out = []
    for r in reports:
        if r.split == "all":
            continue
        if r.chance is not None and r.always_longest is not None:
            if r.always_longest > r.chance + THRESHOLDS["longest_over_chance"]:
                out.append(
                    f"{r.split}: always-longest {r.always_longest:.3f} > chance {r.chance:.3f} + 0.08"
                )
            if (
                r.question_overlap is not None
                and r.question_overlap > r.chance + THRESHOLDS["overlap_over_chance"]
            ):
                out.append(
                    f"{r.split}: question-overlap {r.question_overlap:.3f} > chance {r.chance:.3f} + 0.10"
                )
        if r.n_mcq >= THRESHOLDS["min_mcq_for_letter_check"]:
            for letter, share in r.gold_letters.items():
                if share > THRESHOLDS["max_gold_letter_share"]:
                    out.append(f"{r.split}: gold letter {letter} share {share:.3f} > 0.35")
        if (
            r.majority_verdict is not None
            and r.majority_verdict > THRESHOLDS["max_majority_verdict"]
        ):
            out.append(
                f"{r.split}: yes/no majority '{r.majority_label}' {r.majority_verdict:.3f} > 0.55"
            )
    return out


def gold_only_qualifiers(items: Sequence[QAItem]) -> list[str]:
    """Ids of mcq items where only the gold option carries a parenthetical (a tell-tale hedge)."""
    out = []
    for item in items:
        if item.answer_type != "mcq" or not item.options:
            continue
        marked = [k for k, v in item.options.items() if "(" in v]
        if marked == [item.answer]:
            out.append(item.id)
    return out


def long_golds(items: Sequence[QAItem], *, ratio: float = 1.5) -> list[str]:
    """Ids of mcq items whose gold is over ``ratio`` times the mean distractor length."""
    out = []
    for item in items:
        if item.answer_type != "mcq" or not item.options or len(item.options) < 2:
            continue
        gold = len(item.options[item.answer])
        others = [len(v) for k, v in item.options.items() if k != item.answer]
        if gold > ratio * (sum(others) / len(others)):
            out.append(item.id)
    return out


# ---- leaks across splits -------------------------------------------------------------------


def evidence_in_several_splits(items: Sequence[QAItem]) -> dict[str, list[str]]:
    """Passage id -> the splits in which it is gold evidence, for passages used in two or more."""
    splits: dict[str, set[str]] = defaultdict(set)
    for item in items:
        for doc_id in item.evidence_ids:
            splits[doc_id].add(item.split or "none")
    return {d: sorted(s) for d, s in sorted(splits.items()) if len(s) > 1}


def topics_in_several_splits(items: Sequence[QAItem]) -> dict[str, list[str]]:
    """``metadata.topic`` -> splits, for topics whose questions sit in more than one split."""
    splits: dict[str, set[str]] = defaultdict(set)
    for item in items:
        topic = item.metadata.get("topic")
        if isinstance(topic, str) and topic:
            splits[topic].add(item.split or "none")
    return {t: sorted(s) for t, s in sorted(splits.items()) if len(s) > 1}


class QuestionPair(BaseModel):
    a: str
    b: str
    splits: tuple[str, str]
    stem_jaccard: float
    same_gold: bool
    gold: str


def _gold_key(item: QAItem) -> str:
    return "" if item.answer_type == "yesno" else normalised(item.answer_text)


def near_duplicate_questions(
    items: Sequence[QAItem], *, cross_split_only: bool = True
) -> list[QuestionPair]:
    """Question pairs that ask the same thing: stems with content-word Jaccard ≥ 0.5, or the same
    normalised gold answer (not yes/no) with stems of Jaccard ≥ 0.2 (a reworded stem)."""
    words = {q.id: content_words(q.question) for q in items}
    pairs = []
    for a, b in combinations(items, 2):
        if cross_split_only and a.split == b.split:
            continue
        score = jaccard(words[a.id], words[b.id])
        gold_a, gold_b = _gold_key(a), _gold_key(b)
        same_gold = bool(gold_a) and gold_a == gold_b
        if score >= THRESHOLDS["question_jaccard"] or (
            same_gold and score >= THRESHOLDS["same_gold_question_jaccard"]
        ):
            pairs.append(
                QuestionPair(
                    a=a.id,
                    b=b.id,
                    splits=(a.split or "none", b.split or "none"),
                    stem_jaccard=round(score, 3),
                    same_gold=same_gold,
                    gold=a.answer_text if same_gold else "",
                )
            )
    return sorted(pairs, key=lambda p: -p.stem_jaccard)


def same_gold_across_splits(items: Sequence[QAItem]) -> list[tuple[str, str, str]]:
    """(id, id, gold) for questions in different splits with the same normalised non-verdict gold."""
    by_gold: dict[str, list[QAItem]] = defaultdict(list)
    for item in items:
        if key := _gold_key(item):
            by_gold[key].append(item)
    return [
        (a.id, b.id, a.answer_text)
        for group in by_gold.values()
        for a, b in combinations(group, 2)
        if a.split != b.split
    ]


def repeated_titles(documents: Sequence[Document]) -> dict[str, list[str]]:
    """Normalised title -> passage ids, for titles used by more than one passage."""
    by_title: dict[str, list[str]] = defaultdict(list)
    for doc in documents:
        by_title[normalised(doc.title)].append(doc.id)
    return {t: ids for t, ids in sorted(by_title.items()) if len(ids) > 1}


def near_duplicate_passages(
    documents: Sequence[Document], *, threshold: float | None = None
) -> list[tuple[str, str, float]]:
    """(id, id, Jaccard) for passage pairs whose content words overlap by ``threshold`` or more."""
    limit = THRESHOLDS["passage_jaccard"] if threshold is None else threshold
    words = [(d.id, content_words(f"{d.title} {d.content}")) for d in documents]
    pairs = [
        (a, b, round(jaccard(wa, wb), 3))
        for (a, wa), (b, wb) in combinations(words, 2)
        if jaccard(wa, wb) >= limit
    ]
    return sorted(pairs, key=lambda p: -p[2])


def bare_number_aliases(items: Sequence[QAItem]) -> list[tuple[str, str]]:
    """(id, alias) for free-text golds or aliases that are a number with no unit."""
    bare = re.compile(r"^\s*[<>≤≥~]?\s*\d+(?:[.,]\d+)?(?:\s*[-–]\s*\d+(?:[.,]\d+)?)?\s*$")
    return [
        (q.id, text)
        for q in items
        if q.answer_type == "free"
        for text in (q.answer, *q.aliases)
        if bare.match(text)
    ]
