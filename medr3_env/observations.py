"""What the policy reads: the system instructions, the question, and the feedback markup.

Feedback is wrapped in ``<information>…</information>`` (the Search-R1 convention) so prompts and
data written for Search-R1 transfer; errors use ``<error>…</error>``. Both tags belong to the
environment: a model turn that writes them is rejected as a fake observation.
"""

from __future__ import annotations

from collections.abc import Sequence

from medr3_env.corpora.records import QAItem
from medr3_env.search.base import Hit, IndexedDocument

_ACTION_HELP = {
    "search": "<search>query</search> searches the medical corpus and returns the top {k} passages "
    "(id, title, snippet).",
    "read": "<read>doc-id</read> returns the full text of one passage from your search results.",
    "answer": "<answer>...</answer> gives your final answer and ends the episode.",
}


def system_prompt(
    allowed_actions: Sequence[str], *, top_k: int, max_turns: int, max_searches: int
) -> str:
    """Instructions with the action grammar for the allowed actions."""
    lines = [
        "You are a careful medical expert answering a question.",
        "Each turn, think step by step inside <think>...</think>, then end the turn with exactly one action:",
    ]
    for action in ("search", "read", "answer"):
        if action in allowed_actions:
            lines.append("- " + _ACTION_HELP[action].format(k=top_k))
    if "search" in allowed_actions:
        lines.append(
            f"Search results and documents arrive inside <information>...</information>. "
            f"You may search at most {max_searches} times."
        )
    else:
        lines.append("Answer from your own knowledge: searching is not available.")
    lines.append(
        "For multiple-choice questions answer with the option letter; for yes/no questions answer "
        "yes, no or maybe; otherwise answer with a short phrase."
    )
    lines.append(
        f"You have at most {max_turns} turns. Never write <information> or <error> yourself."
    )
    return "\n".join(lines)


def question_prompt(item: QAItem) -> str:
    """The question as the user turn (options listed for multiple-choice questions)."""
    parts = [f"Question: {item.question}"]
    if item.options:
        parts.append("Options:")
        parts.extend(f"{letter}. {text}" for letter, text in item.options.items())
    if item.answer_type == "yesno":
        parts.append("Answer yes, no or maybe.")
    return "\n".join(parts)


def render_search(query: str, hits: Sequence[Hit]) -> str:
    """The feedback of a search: one entry per hit (rank, id, title, score, snippet)."""
    if not hits:
        body = f'No passages match "{query}". Try other words.'
    else:
        body = "\n".join(
            f"Doc {hit.rank} (id: {hit.doc_id} | title: {hit.title} | score: {hit.score:.2f})\n{hit.snippet}"
            for hit in hits
        )
    return f"<information>\n{body}\n</information>"


def render_document(document: IndexedDocument, max_chars: int) -> str:
    """The feedback of a read: id, title and text, cut at ``max_chars`` with the cut marked."""
    text = document.content
    if len(text) > max_chars:
        text = text[:max_chars].rstrip() + f" [... cut at {max_chars} characters]"
    return f"<information>\nDocument {document.id} | {document.title}\n{text}\n</information>"


def render_error(message: str) -> str:
    """The feedback of a malformed or refused turn."""
    return f"<error>\n{message}\n</error>"
