"""The plug-in package under ``tests/plugin_pkg`` (one reward term, corpus format, entity
extractor and search backend, registered only through entry points) used end to end."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import pytest
from typer.testing import CliRunner

import medr3_env  # noqa: F401  (registers MedR3-v0)
from medr3_env.cli import app
from medr3_env.config import EnvConfig
from medr3_env.plugins import PluginError, UnknownPluginError, registry
from medr3_env.search import build_searcher, open_index
from medr3_env.search.base import IndexedDocument, IndexSearcher, Match, Searcher

plugins = pytest.importorskip(
    "medr3_test_plugins",
    reason="the test plug-in package is not installed: pip install -e tests/plugin_pkg",
)

ENTRY_POINTS = {
    "rewards": "cites_a_document",
    "formats": "tsvdocs",
    "extractors": "capitalised",
    "backends": "keyword",
}
DOCS = [
    (
        "kw-1",
        "Digoxin toxicity",
        "Digoxin toxicity causes nausea and visual changes. Potassium matters.",
    ),
    ("kw-2", "Warfarin reversal", "Vitamin K reverses Warfarin. Bleeding needs urgent care."),
    ("kw-3", "Asthma inhalers", "Salbutamol relieves Asthma attacks within minutes."),
]


@pytest.fixture
def tsv(tmp_path: Path) -> Path:
    path = tmp_path / "docs.tsv"
    path.write_text("".join(f"{i}\t{t}\t{c}\n" for i, t, c in DOCS), encoding="utf-8")
    return path


def test_medr3_plugins_lists_each_entry_point_plugin():
    result = CliRunner().invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert set(listed) == set(ENTRY_POINTS)
    for kind, name in ENTRY_POINTS.items():
        entry = next(e for e in listed[kind] if e["name"] == name)
        assert entry["origin"] == "entry point"
        assert entry["distribution"] == "medr3-test-plugins"
        assert entry["source"].startswith("medr3_test_plugins:")
    assert {"whoosh", "tantivy", "remote"} <= {e["name"] for e in listed["backends"]}
    assert all(e["origin"] == "builtin" for e in listed["backends"] if e["name"] != "keyword")


def test_all_four_plugins_in_one_episode(tsv: Path, tmp_path: Path):
    env = gym.make(
        "MedR3-v0",
        corpus=f"tsvdocs:{tsv}",
        backend="keyword",
        entity_extractor="capitalised",
        cache_dir=tmp_path / "cache",
        reward_weights={"format": 0.1, "cites_a_document": 1.0},
    )
    searcher = env.unwrapped.searcher
    assert isinstance(searcher, plugins.KeywordBackend)
    assert searcher.manifest.backend == "keyword"
    assert searcher.manifest.entity_extractor == "capitalised:4"
    assert searcher.manifest.doc_count == len(DOCS)
    env.reset(seed=0)
    obs, _, terminated, _, info = env.step("<search>warfarin bleeding</search>")
    assert not terminated and info["retrieved_ids"][0] == "kw-2"
    obs, _, _, _, info = env.step("<read>kw-2</read>")
    assert info["read_ids"] == ["kw-2"] and "Vitamin K reverses Warfarin" in obs
    # the extractor ran at index time: capitalised words of at least 4 letters, per sentence
    assert searcher.get("kw-2").sentence_entities == (("vitamin", "warfarin"), ("bleeding",))
    _, reward, terminated, _, info = env.step("<think>kw-2 says so.</think><answer>B</answer>")
    assert terminated
    assert info["reward_terms"]["cites_a_document"] == 1.0
    env.reset(seed=0)
    env.step("<search>warfarin bleeding</search>")
    env.step("<read>kw-2</read>")
    _, _, _, _, info = env.step("<think>No citation here.</think><answer>B</answer>")
    assert info["reward_terms"]["cites_a_document"] == 0.0
    env.close()


def test_keyword_backend_ranks_reopens_and_gets(tsv: Path, tmp_path: Path):
    searcher = build_searcher(
        f"tsvdocs:{tsv}", backend="keyword", entity_extractor="none", cache_dir=tmp_path
    )
    hits = searcher.search("asthma salbutamol warfarin", k=3)
    assert [h.doc_id for h in hits] == ["kw-3", "kw-2"]  # kw-3 holds two query words
    assert hits[0].score > hits[1].score and hits[0].rank == 1
    assert hits[0].snippet.startswith("Salbutamol relieves Asthma")
    assert searcher.search("no such words anywhere") == []
    reopened = open_index(searcher.directory)  # the manifest names the plug-in backend
    assert isinstance(reopened, plugins.KeywordBackend)
    assert reopened.get("kw-1").title == "Digoxin toxicity"
    assert reopened.get("missing") is None and reopened.get("\x00") is None
    assert "kw-3" in reopened


def test_cli_search_with_plugin_format_and_backend(tsv: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("MEDR3_CACHE_DIR", str(tmp_path))
    result = CliRunner().invoke(
        app,
        ["search", "--corpus", f"tsvdocs:{tsv}", "--backend", "keyword", "--json", "digoxin"],
    )
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert [h["doc_id"] for h in hits] == ["kw-1"]


def test_cli_help_lists_registered_backends():
    result = CliRunner().invoke(app, ["search", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for name in registry.backends.names():
        assert name in text


def test_unknown_backend_says_did_you_mean():
    with pytest.raises(UnknownPluginError, match=r"did you mean 'keyword'\?.*registered: .*whoosh"):
        build_searcher(backend="keywords")
    with pytest.raises(ValueError, match=r"did you mean 'tantivy'\?"):
        EnvConfig(backend="tantivi")
    result = CliRunner().invoke(app, ["search", "--backend", "whosh", "x"])
    assert result.exit_code != 0
    assert "did you mean 'whoosh'" in str(result.output) + str(result.exception)


def test_duplicate_names_are_errors():
    with pytest.raises(PluginError, match="'keyword' is already registered"):
        registry.backends.register("keyword", _GoodBackend)
    with pytest.raises(PluginError, match="'tsvdocs' is already registered"):
        registry.formats.register("tsvdocs", plugins.Format(corpus=plugins.load_tsv_docs))
    with pytest.raises(PluginError, match="already registered"):
        registry.extractors.register("capitalised", lambda argument="": None)
    with pytest.raises(PluginError, match="already registered"):
        registry.rewards.register("cites_a_document", lambda ctx: 0.0)


class _GoodBackend(IndexSearcher):
    """Everything a local backend needs (used to test registration)."""

    @classmethod
    def build(cls, corpus, directory, extractor, *, progress=None) -> int:
        return 0

    def stems(self, text):
        return text.split()

    def doc_freq(self, stem):
        return 0

    def engine(self, stems, k) -> list[Match]:
        return []

    def fetch(self, doc_id) -> IndexedDocument | None:
        return None


class _NoEngine(IndexSearcher):  # abstract: engine calls missing
    @classmethod
    def build(cls, corpus, directory, extractor, *, progress=None) -> int:
        return 0


class _NoBuild(_GoodBackend):
    build = Searcher.build  # type: ignore[assignment]


class _BadBuild(_GoodBackend):
    @classmethod
    def build(cls, corpus) -> int:  # type: ignore[override]
        return 0


class _BadOpen(_GoodBackend):
    def __init__(self) -> None:  # cannot be given a directory
        pass


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (object, "expected a subclass of medr3_env.search.Searcher"),
        (len, "expected a subclass"),
        (_NoEngine, "does not implement doc_freq, engine, fetch, stems"),
        (_NoBuild, "must define the classmethod build"),
        (_BadBuild, r"build must accept \(corpus, directory, extractor"),
        (_BadOpen, r"must open as _BadOpen\(directory\)"),
    ],
)
def test_bad_backends_are_clear_errors(obj, message):
    with pytest.raises(PluginError, match=message):
        registry.backends.register("bad_backend", obj)
    assert "bad_backend" not in registry.backends


def test_a_good_backend_registers_at_runtime():
    registry.backends.register("runtime_backend", _GoodBackend)
    try:
        info = next(i for i in registry.backends.info() if i.name == "runtime_backend")
        assert info.origin == "runtime"
        assert EnvConfig(backend="runtime_backend").backend == "runtime_backend"
    finally:
        registry.backends.unregister("runtime_backend")
    assert "runtime_backend" not in registry.backends


def test_bad_plugins_of_other_kinds_are_clear_errors():
    with pytest.raises(PluginError, match="expected a medr3_env.corpora.Format"):
        registry.formats.register("bad_format", plugins.load_tsv_docs)
    with pytest.raises(PluginError):
        registry.rewards.register("bad_term", lambda a, b, c: 0.0)
    with pytest.raises(PluginError):
        registry.extractors.register("bad_extractor", 42)
