"""Render trajectory records as one self-contained HTML page (``medr3 view``).

The page is ``assets/template.html`` with ``viewer.css`` and ``viewer.js`` inlined and the episodes
embedded as JSON in a ``<script type="application/json">`` block. Texts are stored once in a string
table (documents repeat across episodes); the script renders one page of episodes at a time and
builds every node with ``textContent``, so documents and model output are never parsed as HTML.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from medr3_env.entities import EntityExtractor, load_extractor
from medr3_env.trajectory import TrajectoryRecord
from medr3_env.viewer.highlight import entity_spans, highlighted_texts, matched_entities

ASSETS = Path(__file__).with_name("assets")
_MARKER = re.compile(r"__MEDR3_(TITLE|CSS|JS|DATA)__")


class _StringTable:
    """Deduplicated texts; episodes refer to them by index."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self._index: dict[str, int] = {}

    def add(self, text: str) -> int:
        index = self._index.get(text)
        if index is None:
            index = self._index[text] = len(self.items)
            self.items.append(text)
        return index


def _utf16_offsets(text: str, spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Code-point offsets → UTF-16 offsets (what JavaScript string indices count)."""
    if all(ord(c) < 0x10000 for c in text):
        return spans
    prefix = [0]
    for char in text:
        prefix.append(prefix[-1] + (2 if ord(char) >= 0x10000 else 1))
    return [(prefix[s], prefix[e], entity) for s, e, entity in spans]


def _round(value: float) -> float:
    return round(float(value), 6)


def _episode(number: int, record: TrajectoryRecord, strings: _StringTable) -> dict[str, Any]:
    item = record.item
    return {
        "n": number,
        "id": item.id,
        "stage": record.stage,
        "type": item.answer_type,
        "ok": record.correct,
        "total": _round(record.reward_total),
        "terms": {k: _round(v) for k, v in record.reward_terms.items()},
        "weights": dict(record.reward_weights),
        "q": strings.add(item.question),
        "opts": dict(item.options) if item.options else None,
        "gold": item.answer,
        "gold_text": item.answer_text,
        "final": record.final_answer,
        "trunc": record.truncated,
        "ent": [],
        "turns": [
            {
                "i": turn.index,
                "k": turn.action,
                "e": turn.error,
                "a": strings.add(turn.action_text),
                "o": strings.add(turn.observation) if turn.observation else None,
                "r": _round(turn.reward),
                "t": {k: _round(v) for k, v in turn.reward_terms.items()},
                "hits": [[doc_id, _round(score)] for doc_id, score in turn.retrieved],
                "doc": turn.argument if turn.action == "read" else None,
                "m": 0,
            }
            for turn in record.turns
        ],
    }


def _add_entities(
    records: list[TrajectoryRecord], episodes: list[dict[str, Any]], strings: _StringTable
) -> tuple[list[str], dict[str, list[Any]]]:
    """Fill each episode's matched entity ids (the recorded ``evidence_entities``) and return the
    entity names and the spans, per string, where the texts :func:`highlighted_texts` picks
    mention them."""
    names: dict[str, int] = {}
    spans: dict[str, list[Any]] = {}
    extractors: dict[str, EntityExtractor] = {}
    done: set[tuple[str, int, frozenset[str]]] = set()
    for record, episode in zip(records, episodes, strict=True):
        matched = matched_entities(record)
        if not matched:
            continue
        episode["ent"] = sorted(names.setdefault(e, len(names)) for e in matched)
        spec = str(record.config.get("entity_extractor", "auto"))
        if spec not in extractors:
            extractors[spec] = load_extractor(spec)
        extractor = extractors[spec]
        for (_, mark_text, mark_feedback), shown in zip(
            highlighted_texts(record), episode["turns"], strict=True
        ):
            shown["m"] = int(mark_text) | 2 * int(mark_feedback)
            for index in (shown["a"] if mark_text else None, shown["o"] if mark_feedback else None):
                if index is None or (spec, index, matched) in done:
                    continue
                done.add((spec, index, matched))
                text = strings.items[index]
                found = [s for s in entity_spans(extractor, text) if s[2] in matched]
                flat = [v for s, e, ent in _utf16_offsets(text, found) for v in (s, e, names[ent])]
                if flat:
                    known = spans.setdefault(str(index), [])
                    have = {tuple(known[i : i + 3]) for i in range(0, len(known), 3)}
                    for i in range(0, len(flat), 3):
                        if tuple(flat[i : i + 3]) not in have:
                            known.extend(flat[i : i + 3])
    return list(names), spans


def build_payload(
    records: Iterable[TrajectoryRecord],
    *,
    title: str = "MedR3 trajectories",
    highlight_entities: bool = True,
) -> dict[str, Any]:
    """The JSON document the page's script reads (episodes, string table, entities, spans)."""
    from medr3_env.version import __version__

    records = list(records)
    strings = _StringTable()
    episodes = [_episode(n, r, strings) for n, r in enumerate(records, start=1)]
    terms: dict[str, None] = {}
    for record in records:
        terms.update(dict.fromkeys(record.reward_weights))
        terms.update(dict.fromkeys(record.reward_terms))
    entities, spans = _add_entities(records, episodes, strings) if highlight_entities else ([], {})
    return {
        "title": title,
        "generator": f"medr3_env {__version__}",
        "terms": list(terms),
        "entities": entities,
        "strings": strings.items,
        "spans": spans,
        "episodes": episodes,
    }


def embed_json(data: Any) -> str:
    """JSON that is safe inside ``<script type="application/json">``: ``</`` becomes ``<\\/`` and
    ``<!--`` becomes ``\\u003c!--``, so no text can end the element or open a comment state."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("</", "<\\/").replace("<!--", "\\u003c!--")


def render_string(
    records: Iterable[TrajectoryRecord],
    *,
    title: str = "MedR3 trajectories",
    highlight_entities: bool = True,
) -> str:
    """The complete HTML page as a string."""
    payload = build_payload(records, title=title, highlight_entities=highlight_entities)
    template = (ASSETS / "template.html").read_text(encoding="utf-8")
    script = (ASSETS / "viewer.js").read_text(encoding="utf-8")
    css = (ASSETS / "viewer.css").read_text(encoding="utf-8")
    if "</script" in script.lower() or "</style" in css.lower():
        raise ValueError("viewer assets must not contain closing script or style tags")
    parts = {"TITLE": html.escape(title), "CSS": css, "JS": script, "DATA": embed_json(payload)}
    # One pass: text inserted for one marker is never scanned for another.
    return _MARKER.sub(lambda match: parts[match.group(1)], template)


def render_html(
    records: Iterable[TrajectoryRecord],
    out: str | Path,
    *,
    title: str = "MedR3 trajectories",
    highlight_entities: bool = True,
) -> Path:
    """Write the viewer page for ``records`` to ``out`` (parent folders are created)."""
    out = Path(out)
    records = list(records)
    if not records:
        raise ValueError("no trajectory records to render")
    page = render_string(records, title=title, highlight_entities=highlight_entities)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return out
