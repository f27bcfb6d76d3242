"""``MedR3Env``: the search-read-answer environment. ``reset`` poses a question; each ``step``
parses one model turn, acts on it, renders feedback and scores it with the reward terms."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym

from medr3_env.actions import MAX_ACTION_CHARS, ParsedAction, parse_action
from medr3_env.config import EnvConfig
from medr3_env.corpora.records import Corpus, QAItem, QuestionSet
from medr3_env.corpora.specs import load_corpus, load_questions
from medr3_env.entities import load_extractor
from medr3_env.observations import (
    question_prompt,
    render_document,
    render_error,
    render_search,
    system_prompt,
)
from medr3_env.rewards.answer import is_correct
from medr3_env.rewards.composer import RewardComposer, StepRewards
from medr3_env.rewards.context import EpisodeContext, Turn
from medr3_env.rewards.evidence import episode_evidence
from medr3_env.search import Searcher, backend_class, build_searcher
from medr3_env.search.base import Hit, IndexedDocument
from medr3_env.spaces import UnicodeText

logger = logging.getLogger(__name__)

MAX_OBSERVATION_CHARS = 1_000_000
_SURROGATE = re.compile("[\ud800-\udfff]")

_SEARCHERS: dict[tuple, Searcher] = {}
_CORPORA: dict[str, Corpus] = {}
_QUESTION_SETS: dict[tuple[str, object], QuestionSet] = {}
_WHOLE = object()  # shared_questions: the whole set, not a split
_SEARCHERS_LOCK = threading.Lock()
_BUILD_LOCK = threading.Lock()


def searcher_key(config: EnvConfig, questions: QuestionSet) -> tuple:
    """What identifies the index an environment searches: the corpus content fingerprint and the
    backend (plus the entity extractor, which changes the index), or the server / index folder."""
    if not backend_class(config.backend).local:
        return (config.backend, config.search_url)
    if config.index_dir is not None:
        return ("index_dir", str(Path(config.index_dir).expanduser().resolve()))
    corpus = _corpus_of(config, questions)
    return ("corpus", corpus.fingerprint(), config.backend, config.entity_extractor)


def _corpus_of(config: EnvConfig, questions: QuestionSet) -> Corpus:
    spec: Any = config.corpus if config.corpus is not None else questions.corpus
    if spec is None or isinstance(spec, str):
        spec = spec or "starter"
        with _SEARCHERS_LOCK:
            if spec not in _CORPORA:
                _CORPORA[spec] = load_corpus(spec)
            return _CORPORA[spec]
    return spec


def shared_searcher(config: EnvConfig, questions: QuestionSet) -> Searcher:
    """One searcher per corpus content and backend per process, shared by all environments, so
    any number of ``gym.make`` calls hold one index and one result cache and a vector env can
    batch their searches. Keyed by :func:`searcher_key`."""
    key = searcher_key(config, questions)
    with _SEARCHERS_LOCK:
        found = _SEARCHERS.get(key)
    if found is not None:
        return found
    corpus = None if key[0] != "corpus" else _corpus_of(config, questions)
    with _BUILD_LOCK:  # one build per key, however many threads ask at once
        with _SEARCHERS_LOCK:
            found = _SEARCHERS.get(key)
        if found is None:
            found = build_searcher(
                corpus,
                backend=config.backend,
                cache_dir=config.cache_dir,
                index_dir=config.index_dir,
                entity_extractor=config.entity_extractor,
                url=config.search_url,
            )
            with _SEARCHERS_LOCK:
                _SEARCHERS[key] = found
    return found


def shared_questions(spec: str, split: str | None | object = _WHOLE) -> QuestionSet:
    """The question set of a spec string (one ``split`` of it, if given), loaded once per process
    and shared by environments (question sets are read-only), so an environment's own footprint
    stays small and making one stays cheap."""
    key = (spec, split)
    with _SEARCHERS_LOCK:
        found = _QUESTION_SETS.get(key)
    if found is None:
        whole = load_questions(spec) if split is _WHOLE else shared_questions(spec)
        found = whole if split is _WHOLE else whole.split(split)  # type: ignore[arg-type]
        with _SEARCHERS_LOCK:
            found = _QUESTION_SETS.setdefault(key, found)
    return found


class _EpisodeDocuments(Mapping[str, IndexedDocument]):
    """Lazy, cached lookup of the documents an episode touched (for reward terms)."""

    def __init__(self, searcher: Searcher | None, ids: tuple[str, ...]) -> None:
        self._searcher = searcher
        self._ids = ids
        self._cache: dict[str, IndexedDocument | None] = {}

    def __getitem__(self, doc_id: str) -> IndexedDocument:
        if doc_id not in self._ids or self._searcher is None:
            raise KeyError(doc_id)
        if doc_id not in self._cache:
            self._cache[doc_id] = self._searcher.get(doc_id)
        doc = self._cache[doc_id]
        if doc is None:
            raise KeyError(doc_id)
        return doc

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)


class MedR3Env(gym.Env[str, str]):
    """Answer a medical question by searching, reading and reasoning.

    Observations and actions are text. ``reset`` returns the instructions plus the question;
    ``step(turn)`` returns the environment's feedback for that turn (search results, a document,
    or an error), the reward for the step, and ``info`` with the parsed action, retrieved and read
    ids, per-term rewards and the full chat ``messages``.

    Args:
        config: an :class:`EnvConfig` or a dict of its fields.
        searcher: an already-built :class:`Searcher` (overrides ``corpus``/``backend``).
        questions: an already-loaded :class:`QuestionSet` (overrides ``dataset``/``split``).
        render_mode: ``"ansi"`` returns the conversation as text from :meth:`render`.
        **overrides: :class:`EnvConfig` fields, e.g. ``stage="reasoning"``, ``top_k=3``.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(
        self,
        config: EnvConfig | Mapping[str, Any] | None = None,
        *,
        searcher: Searcher | None = None,
        questions: QuestionSet | None = None,
        render_mode: str | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__()
        base = (
            config.model_dump(exclude_unset=True)
            if isinstance(config, EnvConfig)
            else dict(config or {})
        )
        self.config = EnvConfig.model_validate({**base, **overrides})
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}")
        self.render_mode = render_mode

        if questions is not None:
            loaded, self.questions = questions, questions.split(self.config.split)
        else:
            loaded = shared_questions(self.config.dataset)
            self.questions = shared_questions(self.config.dataset, self.config.split)
        needs_index = (
            self.config.search_enabled or self.config.reward_weights.get("evidence", 0.0) != 0.0
        )
        self.searcher = (
            searcher
            if searcher is not None
            else (shared_searcher(self.config, loaded) if needs_index else None)
        )
        if searcher is None:
            self.config = _with_index_backend(self.config, self.searcher)
        if self.searcher is not None and self.config.reward_weights.get("evidence", 0.0) != 0.0:
            extractor = load_extractor(self.config.entity_extractor).name
            if extractor != self.searcher.entity_extractor:
                raise ValueError(
                    f"the index was built with entity extractor {self.searcher.entity_extractor!r} but "
                    f"this environment uses {extractor!r}; rebuild the index or set entity_extractor"
                )
        self.rewards = RewardComposer(
            self.config.reward_weights, on_error=self.config.on_reward_error
        )
        self.system_prompt = system_prompt(
            self.config.allowed_actions,
            top_k=self.config.top_k,
            max_turns=self.config.max_turns,
            max_searches=self.config.max_searches,
        )
        self.observation_space = UnicodeText(min_length=0, max_length=MAX_OBSERVATION_CHARS)
        self.action_space = UnicodeText(min_length=0, max_length=MAX_ACTION_CHARS)

        self._item: QAItem | None = None
        self._turns: list[Turn] = []
        self._messages: list[dict[str, str]] = []
        self._term_totals: dict[str, float] = {}
        self._return = 0.0
        self._done = False
        self._prefetched: tuple[str, tuple[Hit, ...]] | None = None

    @property
    def current_item(self) -> QAItem:
        """The question of the current episode."""
        if self._item is None:
            raise RuntimeError("call reset() first")
        return self._item

    # ------------------------------------------------------------------ gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Start an episode. ``options={"item_id": ...}`` picks a question, otherwise it is drawn
        with ``self.np_random`` (deterministic for a given ``seed``)."""
        super().reset(seed=seed)
        options = options or {}
        if "item_id" in options:
            self._item = self.questions.get(str(options["item_id"]))
        elif "item" in options:
            self._item = QAItem.model_validate(options["item"])
        else:
            self._item = self.questions[int(self.np_random.integers(len(self.questions)))]
        self._turns = []
        self._term_totals = {name: 0.0 for name in self.config.reward_weights}
        self._return = 0.0
        self._done = False
        self._prefetched = None
        user = question_prompt(self._item)
        self._messages = [
            {"role": "system", "content": self.system_prompt},
            {"role": "user", "content": user},
        ]
        observation = f"{self.system_prompt}\n\n{user}"
        info = {
            "item_id": self._item.id,
            "question": self._item.question,
            "options": dict(self._item.options or {}),
            "answer_type": self._item.answer_type,
            "messages": [dict(m) for m in self._messages],
            "allowed_actions": list(self.config.allowed_actions),
            "turn": 0,
        }
        return observation, info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Apply one model turn. Malformed turns never raise: they return an ``<error>`` block,
        a format penalty, and still count as a turn."""
        if self._item is None:
            raise RuntimeError("call reset() before step()")
        if self._done:
            raise RuntimeError("the episode has ended; call reset() to start a new one")
        if isinstance(action, bytes):
            action = action.decode("utf-8", errors="replace")
        text = action if isinstance(action, str) else ""
        if not text.isascii():
            # A lone surrogate cannot be encoded (JSON logs, tokenizers, HTTP): the turn keeps a
            # replacement character in its place, as a bytes turn would.
            text = _SURROGATE.sub("\ufffd", text)
        turn_index = len(self._turns) + 1
        parsed = parse_action(text if isinstance(action, str) else action)  # else: not_text
        turn, feedback = self._act(turn_index, text, parsed)
        self._prefetched = None
        self._turns.append(turn)

        terminated = turn.kind == "answer"
        truncated = not terminated and turn_index >= self.config.max_turns
        self._done = terminated or truncated
        context = EpisodeContext(
            item=self._item,
            turns=tuple(self._turns),
            config=self.config,
            documents=_EpisodeDocuments(self.searcher, self._touched_ids()),
            terminated=terminated,
            truncated=truncated,
        )
        scored = self.rewards.evaluate(context, final=self._done)
        for name, value in scored.values.items():
            if name in self._term_totals:  # a term that failed this episode stays out
                self._term_totals[name] += value
        for name in scored.errors:
            self._term_totals.pop(name, None)
        self._return += scored.total

        self._messages.append({"role": "assistant", "content": text})
        observation = "" if self._done else feedback
        if not self._done:
            self._messages.append({"role": "user", "content": feedback})
        return (
            observation,
            float(scored.total),
            terminated,
            truncated,
            self._info(turn, parsed, scored, context),
        )

    def pending_search(self, action: object) -> str | None:
        """The query ``step(action)`` would search for, else ``None``. With :meth:`prefetch` this
        lets a vector env run the searches of all its sub-environments as one batch."""
        if self._item is None or self._done or self.searcher is None or not isinstance(action, str):
            return None
        parsed = parse_action(action)
        if parsed.kind != "search" or "search" not in self.config.allowed_actions:
            return None
        return parsed.argument if self._searches_left() else None

    def prefetch(self, query: str, hits: Sequence[Hit]) -> None:
        """Hits for ``query`` searched ahead by a vector env; used by the next step only."""
        self._prefetched = (query, tuple(hits))

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in self._messages)

    # ------------------------------------------------------------------ internals
    def _touched_ids(self) -> tuple[str, ...]:
        ids = [h.doc_id for t in self._turns for h in t.hits]
        ids += [t.read_id for t in self._turns if t.read_id]
        return tuple(dict.fromkeys(ids))

    def _searches_left(self) -> bool:
        return sum(1 for t in self._turns if t.kind == "search") < self.config.max_searches

    def _act(self, index: int, text: str, parsed: ParsedAction) -> tuple[Turn, str]:
        base: dict[str, Any] = {"index": index, "text": text, "reasoning": parsed.reasoning}
        if not parsed.valid:
            return Turn(kind="invalid", error_code=parsed.error_code, **base), render_error(
                parsed.error or ""
            )
        kind, argument = parsed.kind, parsed.argument

        def invalid(code: str, message: str) -> tuple[Turn, str]:
            return Turn(kind="invalid", argument=argument, error_code=code, **base), render_error(
                message
            )

        if kind not in self.config.allowed_actions:
            allowed = ", ".join(f"<{a}>" for a in self.config.allowed_actions)
            return invalid(
                "not_allowed",
                f"<{kind}> is not available in the {self.config.stage} stage. Use {allowed}.",
            )
        if kind == "search":
            if not self._searches_left():
                return invalid(
                    "search_budget",
                    f"You have used all {self.config.max_searches} searches. Read a result or answer.",
                )
            assert self.searcher is not None
            prefetched, self._prefetched = self._prefetched, None
            if prefetched is not None and prefetched[0] == argument:
                hits = prefetched[1]
            else:
                hits = tuple(self.searcher.search(argument, self.config.top_k))
            turn = Turn(
                kind="search",
                argument=argument,
                hits=hits,
                trailing_text=parsed.trailing_text,
                **base,
            )
            return turn, render_search(argument, hits)
        if kind == "read":
            doc_id = argument.strip()
            assert self.searcher is not None
            document = self.searcher.get(doc_id)
            if document is None:
                return invalid(
                    "unknown_doc",
                    f"There is no document with id {doc_id[:80]!r}. Read an id from your search results.",
                )
            retrieved = {h.doc_id for t in self._turns for h in t.hits}
            if self.config.require_search_before_read and doc_id not in retrieved:
                return invalid(
                    "read_before_search",
                    f"Document {doc_id!r} was not in your search results. Search first, then read an id you were shown.",
                )
            turn = Turn(
                kind="read",
                argument=doc_id,
                read_id=doc_id,
                trailing_text=parsed.trailing_text,
                **base,
            )
            return turn, render_document(document, self.config.max_doc_chars)
        return Turn(
            kind="answer", argument=argument, trailing_text=parsed.trailing_text, **base
        ), ""

    def _info(
        self, turn: Turn, parsed: ParsedAction, scored: StepRewards, context: EpisodeContext
    ) -> dict[str, Any]:
        info: dict[str, Any] = {
            "item_id": self._item.id if self._item else None,
            "turn": turn.index,
            "action_text": turn.text,
            "parsed_action": {
                "kind": parsed.kind,
                "valid": parsed.valid,
                "argument": parsed.argument,
                "reasoning": parsed.reasoning,
                "trailing_text": parsed.trailing_text,
                "error_code": parsed.error_code,
                "error": parsed.error,
            },
            "action": turn.kind,
            "error": turn.error_code,
            "query": turn.argument if turn.kind == "search" else None,
            "retrieved_ids": [h.doc_id for h in turn.hits],
            "retrieved_scores": [h.score for h in turn.hits],
            "read_ids": list(context.read_ids),
            "step_reward_terms": dict(scored.values),
            "reward_terms": dict(self._term_totals),
            "reward_weights": dict(self.config.reward_weights),
            "reward_not_applicable": sorted(scored.not_applicable),
            "term_documents": _term_documents(scored, context),
            "reward_total": self._return,
            "messages": [dict(m) for m in self._messages],
            "allowed_actions": list(self.config.allowed_actions),
        }
        if scored.errors:
            info["reward_errors"] = dict(scored.errors)
        if self._done:
            info["final_answer"] = context.final_answer
            info["correct"] = is_correct(context)
            if self.config.reward_weights.get("evidence", 0.0) != 0.0:
                match = context.shared(episode_evidence)
                info["evidence"] = {
                    "doc_ids": list(match.doc_ids),
                    "entities": sorted(match.matched),
                }
        return info


def _with_index_backend(config: EnvConfig, searcher: Searcher | None) -> EnvConfig:
    """``config`` naming the backend that built its ``index_dir``, which is the one that searches
    (so trajectories record it); a different ``backend`` given with it is logged, not obeyed."""
    built = getattr(getattr(searcher, "manifest", None), "backend", None)
    if (
        config.index_dir is None
        or built is None
        or built == config.backend
        or not backend_class(config.backend).local  # a server was searched: index_dir unused
    ):
        return config
    if "backend" in config.model_fields_set:
        logger.warning(
            "backend=%r ignored: the index at %s was built with %r, which searches it",
            config.backend,
            config.index_dir,
            built,
        )
    return config.model_copy(update={"backend": built})


def _term_documents(scored: StepRewards, context: EpisodeContext) -> dict[str, list[str]]:
    """The documents each built-in term that reads documents used on this step, for the terms
    that were evaluated and applied: ``retrieval`` scores every id the searches returned,
    ``evidence`` the documents of :func:`~medr3_env.rewards.evidence.evidence_documents`."""
    applied = set(scored.values) - scored.not_applicable
    used: dict[str, list[str]] = {}
    if "retrieval" in applied:
        used["retrieval"] = list(context.retrieved_ids)
    if "evidence" in applied:
        used["evidence"] = list(context.shared(episode_evidence).doc_ids)
    return used
