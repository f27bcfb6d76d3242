"""The ``medr3`` command line. Each module registers its commands on the shared ``app``.

- ``core``: ``demo``, ``search``, ``index build``, ``index info``
- ``serve``: ``serve`` (the shared retrieval server)
- ``training``: ``export-prompts``, ``train``, ``eval``
- ``viewing``: ``replay``, ``view``, ``plot``
- ``plugins``: ``plugins`` (registered reward terms, backends, formats, extractors)
"""

from medr3_env.cli import core, plugins, serve, training, viewing  # noqa: F401  (registers commands)
from medr3_env.cli.app import app


def main() -> None:  # pragma: no cover
    app()


__all__ = ["app", "main"]
