"""The bundled starter corpus and question set: original passages and questions over 15 medical
specialties, shipped as package data so everything works offline."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

from medr3_env.corpora.medrag import load_medrag
from medr3_env.corpora.native import load_native_questions
from medr3_env.corpora.records import Corpus, QuestionSet

STARTER_SPLITS = ("train", "dev", "test")


def starter_dir() -> Path:
    """The folder holding ``passages/``, ``questions/`` (one JSONL file per topic group, e.g.
    ``card.jsonl``) and ``lexicon.jsonl``."""
    return Path(str(resources.files("medr3_env.corpora") / "starter"))


def starter_files(kind: str) -> list[Path]:
    """The topic files of ``kind`` (``"passages"`` or ``"questions"``), in name order."""
    files = sorted((starter_dir() / kind).glob("*.jsonl"))
    if not files:
        raise FileNotFoundError(f"no starter {kind} files in {starter_dir() / kind}")
    return files


def load_starter_corpus() -> Corpus:
    """The starter passages (MedRAG chunk schema), loaded through the MedRAG loader."""
    return load_medrag(starter_dir() / "passages", name="starter")


def load_starter_questions() -> QuestionSet:
    """The starter questions (all splits) with the starter corpus attached."""
    items = [
        item
        for path in starter_files("questions")
        for item in load_native_questions(path, name="starter").items
    ]
    return QuestionSet("starter", items, load_starter_corpus())


@lru_cache(maxsize=1)
def load_starter_lexicon() -> tuple[dict, ...]:
    """Lexicon entries ``{"name", "label", "synonyms"}`` written for the starter corpus."""
    path = starter_dir() / "lexicon.jsonl"
    with path.open(encoding="utf-8") as handle:
        return tuple(json.loads(line) for line in handle if line.strip())
