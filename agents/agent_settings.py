"""Where the OpenRLHF agent gets its configuration: environment variables.

OpenRLHF builds the agent executor with no arguments inside each vLLM actor, so the stage and the
corpus come from the process environment. The stage file (``MEDR3_STAGE_CONFIG``) may carry the
data itself (``corpus:``, ``index_dir:`` ...); a variable that is set overrides the file:

=========================  ==================================================================
``MEDR3_STAGE``            ``reasoning``, ``retrieval`` or ``joint`` (or 1, 2, 3); default joint
``MEDR3_STAGE_CONFIG``     a stage YAML file (overrides ``MEDR3_STAGE``)
``MEDR3_CORPUS``           corpus spec, e.g. ``medrag:/data/textbooks.jsonl``; default: the
                           stage file's, else the starter corpus
``MEDR3_INDEX_DIR``        a prebuilt index (``medr3 index build --out``)
``MEDR3_CACHE_DIR``        index cache (read by the search module itself)
``MEDR3_BACKEND``          search backend; default: the stage file's, else ``whoosh``
``MEDR3_SEARCH_URL``       a shared retrieval server (``medr3 serve``) instead of a local index
``MEDR3_ENTITY_EXTRACTOR`` ``auto``, ``lexicon``, ``spacy:MODEL`` ... (default: the stage file's)
=========================  ==================================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from medr3_env.agents.stage_config import StageConfig, load_stage_config
from medr3_env.config import EnvConfig

ENV_FIELDS: dict[str, str] = {
    "MEDR3_CORPUS": "corpus",
    "MEDR3_INDEX_DIR": "index_dir",
    "MEDR3_CACHE_DIR": "cache_dir",
    "MEDR3_BACKEND": "backend",
    "MEDR3_SEARCH_URL": "search_url",
    "MEDR3_ENTITY_EXTRACTOR": "entity_extractor",
}
"""Each variable and the :class:`EnvConfig` field it sets."""
ENV_VARS = ("MEDR3_STAGE", "MEDR3_STAGE_CONFIG", *ENV_FIELDS)


class AgentSettings(BaseModel):
    """The resolved configuration of the agent in one process: the stage and what the
    environment variables override (``None``: the stage file's value)."""

    model_config = ConfigDict(frozen=True)

    stage: StageConfig
    corpus: str | None = None
    index_dir: Path | None = None
    cache_dir: Path | None = None
    backend: str | None = None
    search_url: str | None = None
    entity_extractor: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> AgentSettings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        stage_file = get("MEDR3_STAGE_CONFIG")
        stage = load_stage_config(Path(stage_file) if stage_file else get("MEDR3_STAGE") or "joint")
        given = {field: get(var) for var, field in ENV_FIELDS.items()}
        return cls(stage=stage, **given)

    def env_config(self) -> EnvConfig:
        """The :class:`EnvConfig` of every episode this agent runs (its questions come from the
        prompt labels, so the split is ``all``)."""
        fields: dict[str, Any] = {field: getattr(self, field) for field in ENV_FIELDS.values()}
        fields["split"] = "all"
        if self.search_url:
            fields["backend"] = "remote"
        return self.stage.env_config(**fields)


@lru_cache(maxsize=8)
def _cached(values: tuple[str | None, ...]) -> AgentSettings:
    return AgentSettings.from_environ(
        {name: value for name, value in zip(ENV_VARS, values, strict=True) if value is not None}
    )


def current_settings() -> AgentSettings:
    """Settings for the current process environment (resolved once per distinct environment)."""
    return _cached(tuple(os.environ.get(name) for name in ENV_VARS))
