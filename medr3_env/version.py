"""The package version, in a module of its own so that any module can read it without importing
the package root (whose ``__init__`` imports the environment, search and rewards)."""

__version__ = "0.1.0"
