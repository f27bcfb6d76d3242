"""Imports the built-in terms so that they register: answer, format, retrieval, evidence."""

from medr3_env.rewards import answer, evidence, format, retrieval  # noqa: F401,A004
