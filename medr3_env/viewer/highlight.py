"""What the viewer highlights, taken from the facts a trajectory records (never re-derived).

The environment reports what the evidence term counted in ``info["evidence"]``: the matched
entities and the documents the term used. :class:`~medr3_env.trajectory.TrajectoryRecorder` stores
them as ``evidence_entities`` and ``evidence_doc_ids``, and the viewer marks exactly those
entities in

* the turn text of every valid turn (the reasoning the term reads; invalid turns do not count), and
* the feedback of every ``read`` turn whose document the term used.

Only the positions are looked up, with the extractor of the episode's config. Records without
``evidence_entities`` (the term was not weighted, or the file predates it) get no highlights;
records without ``evidence_doc_ids`` (before schema 3) get them in the turn text only.
"""

from __future__ import annotations

from medr3_env.entities import EntityExtractor
from medr3_env.trajectory import TrajectoryRecord, TurnRecord

Span = tuple[int, int, str]


def entity_spans(extractor: EntityExtractor, text: str) -> list[Span]:
    """``(start, end, entity)`` character spans of the entities ``extractor`` finds in ``text``,
    in order."""
    return sorted(extractor.extract_spans(text))


def matched_entities(record: TrajectoryRecord) -> frozenset[str]:
    """The entities the evidence term counted in the episode, as recorded (empty when none were
    recorded)."""
    return frozenset(record.evidence_entities or ())


def highlighted_texts(record: TrajectoryRecord) -> list[tuple[TurnRecord, bool, bool]]:
    """``(turn, mark its turn text, mark its feedback)`` for each turn of the episode.

    The turn text is marked for valid turns; the feedback for ``read`` turns whose document is
    one of the recorded ``evidence_doc_ids``.
    """
    used = set(record.evidence_doc_ids or ())
    return [
        (
            turn,
            turn.action != "invalid",
            turn.action == "read" and turn.argument in used and bool(turn.observation),
        )
        for turn in record.turns
    ]
