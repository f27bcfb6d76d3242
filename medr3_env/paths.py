"""Where MedR3 keeps its caches (indexes, compiled term tables): one neutral module that search,
the term matcher and the CLI all read, so none of them imports another for a path."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir

CACHE_ENV_VAR = "MEDR3_CACHE_DIR"
"""Environment variable that moves every MedR3 cache (default: the platform's user cache dir)."""


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """``cache_dir`` if given, else ``$MEDR3_CACHE_DIR``, else the platform's user cache dir."""
    root = cache_dir or os.environ.get(CACHE_ENV_VAR) or user_cache_dir("medr3", appauthor=False)
    return Path(root).expanduser()
