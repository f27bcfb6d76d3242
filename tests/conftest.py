"""Shared fixtures: a private index cache per test session and a ready environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("medr3-cache")
    os.environ["MEDR3_CACHE_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def starter_searcher():
    from medr3_env.search import build_searcher

    return build_searcher()


@pytest.fixture()
def env(starter_searcher):
    from medr3_env import MedR3Env

    return MedR3Env(searcher=starter_searcher)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"shared data not found at {SHARED_DATA} (only in the MedR3 dev checkout)")
    return SHARED_DATA
