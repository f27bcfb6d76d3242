"""Pydantic validation errors as one readable line, for every place that reports bad input (the
CLI, stage files, trajectory files): ``field: message; field: message``, without the model title,
the echoed input or the documentation URL."""

from __future__ import annotations

from pydantic import ValidationError


def validation_line(exc: ValidationError, *, root: str | None = None, limit: int = 8) -> str:
    """``exc`` as ``field: message; ...``: a nested field is written ``grpo.temperature``, a leading
    ``root`` part of each location is dropped (``env.max_turns`` -> ``max_turns``), missing fields
    are listed together, repeated messages appear once, and past ``limit`` errors the rest are
    counted.

    >>> from pydantic import BaseModel
    >>> class Point(BaseModel):
    ...     x: int
    ...     y: int
    >>> try:
    ...     Point.model_validate({"x": "one"})
    ... except ValidationError as exc:
    ...     print(validation_line(exc))
    missing: y; x: Input should be a valid integer, unable to parse string as an integer
    """
    parts: list[str] = []
    missing: list[str] = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        if root is not None and loc[:1] == [root]:
            loc = loc[1:]
        if error["type"] == "missing" and loc:
            missing.append(".".join(loc))
            continue
        message = " ".join(str(error["msg"]).split()).removeprefix("Value error, ")
        parts.append(f"{'.'.join(loc)}: {message}" if loc else message)
    if missing:
        parts.insert(0, "missing: " + ", ".join(dict.fromkeys(missing)))
    unique = list(dict.fromkeys(parts))
    shown = "; ".join(unique[:limit])
    if len(unique) > limit:
        shown += f"; and {len(unique) - limit} more"
    return shown or type(exc).__name__
