"""Imports the built-in terms so that they register: answer, format, retrieval, evidence."""

from medr3_env.rewards import answer, evidence, format_term, retrieval  # noqa: F401
