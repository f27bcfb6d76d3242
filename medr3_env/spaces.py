"""A :class:`gymnasium.spaces.Text` that admits any Unicode string up to a length."""

from __future__ import annotations

from typing import Any

from gymnasium.spaces import Text


class UnicodeText(Text):
    """Text of any Unicode characters (``Text`` alone only admits its ``charset``).

    ``sample()`` still draws from the default alphanumeric charset.
    """

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    def __repr__(self) -> str:
        return f"UnicodeText({self.min_length}, {self.max_length})"

    def __eq__(self, other: Any) -> bool:
        return (
            isinstance(other, UnicodeText)
            and self.min_length == other.min_length
            and self.max_length == other.max_length
        )
