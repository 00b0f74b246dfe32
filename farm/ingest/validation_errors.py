"""Describe a failed validation of a TOML file: the file, each key, and what is allowed there.

Pydantic reports where a problem is (``loc``) and what it is; for an unknown key this adds the
keys the table does accept, found by walking the model's annotations along ``loc``.
"""

from __future__ import annotations

import typing
from typing import Annotated, Any

from pydantic import BaseModel, Tag, ValidationError

__all__ = ["allowed_keys", "format_validation_error"]


def format_validation_error(
    source: str, err: ValidationError, model: type[BaseModel], *, what: str = "configuration"
) -> str:
    """One line per problem: the key, what is wrong, and for unknown keys the keys allowed there.

    ``source`` names the file; ``model`` is the one that was validated.
    """
    lines = [f"{source}: invalid {what} ({err.error_count()} problem(s)):"]
    for e in err.errors():
        loc = tuple(e["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        if e["type"] == "extra_forbidden":
            allowed = allowed_keys(model, loc[:-1])
            shown = f"; allowed here: {', '.join(allowed)}" if allowed else ""
            lines.append(f"  [{key}] unknown key{shown}")
        elif e["type"] == "missing":
            lines.append(f"  [{key}] required key is missing")
        else:
            given = e.get("input")
            shown = "" if isinstance(given, dict | list) else f" (got {given!r})"
            message = e["msg"].removeprefix("Value error, ")
            lines.append(f"  [{key}] {message}{shown}")
    return "\n".join(lines)


def allowed_keys(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """Keys a table at ``loc`` (a pydantic error location) of ``model`` accepts; [] if unknown.

    >>> from farm.ingest.mapping import IngestMapping
    >>> allowed_keys(IngestMapping, ("exposure",))
    ['value', 'unit', 'seconds']
    """
    annotation: Any = model
    for part in loc:
        annotation = _step(annotation, part)
        if annotation is None:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _step(annotation: Any, part: str | int) -> Any:
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(str(part))
        return None if field is None else field.annotation
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (list, tuple) and isinstance(part, int) and args:
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    if args:  # a union: a tagged member named by ``part``, else the only model member
        for arm in args:
            tags = [m.tag for m in getattr(arm, "__metadata__", ()) if isinstance(m, Tag)]
            if part in tags:
                return _unwrap(arm)
        models = [
            _unwrap(a)
            for a in args
            if isinstance(_unwrap(a), type) and issubclass(_unwrap(a), BaseModel)
        ]
        if len(models) == 1:
            return _step(models[0], part)
    return None
