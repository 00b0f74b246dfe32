"""Shared pydantic base for configuration sections: strict, frozen, unknown keys rejected.

Strict: a boolean is not a count (``throws = true`` is refused, not read as 1), a string is not a
number (``throws = "100"`` is refused), and an integer is not a string; NaN and ±inf are refused
in every number. TOML has arrays and no tuples, so fixed-length keys are annotated with
:data:`AsTuple`, which turns the array into a tuple before the strict check.
"""

from __future__ import annotations

import ast
import functools
import inspect
import itertools
import sys
from typing import Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.fields import FieldInfo

__all__ = ["AsTuple", "Section"]


def _list_to_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


AsTuple = BeforeValidator(_list_to_tuple)
"""``Annotated[tuple[float, float], AsTuple]``: a TOML array of fixed length."""


class Section(BaseModel):
    """A configuration table. Unknown keys are errors, values are validated once and frozen."""

    # a key's docstring (its description, units in brackets at the end) is its schema
    # description: docs/config.md is generated from it (farm.config.reference)
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        validate_default=True,
        strict=True,
        allow_inf_nan=False,
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # runs before pydantic collects the fields: each key's docstring becomes its description
        _describe_fields(cls)
        super().__init_subclass__(**kwargs)


@functools.cache
def _module_classes(path: str) -> dict[str, ast.ClassDef | None]:
    """The classes of the module at ``path`` by qualified name, the file parsed once."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    found: dict[str, ast.ClassDef | None] = {}

    def walk(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                name = prefix + node.name
                # two classes of one name in a module: neither is described (not guessed)
                found[name] = None if name in found else node
                walk(node.body, name + ".")

    walk(tree.body, "")
    return found


def attribute_docstrings(cls: type) -> dict[str, str]:
    """``{key: docstring}`` of the keys ``cls`` annotates itself: the string literal right after
    an annotated assignment, as pydantic's ``use_attribute_docstrings`` reads them.

    pydantic (before Python 3.13) finds a class's source by walking the interpreter's frames and
    searching every module for each class, ≈ 40 ms of every command's start-up for farm's 40-odd
    sections; each module is parsed once here instead.
    """
    module = sys.modules.get(cls.__module__)
    path = getattr(module, "__file__", None)
    if not path or not path.endswith(".py"):
        return {}
    try:
        node = _module_classes(path).get(cls.__qualname__)
    except (OSError, SyntaxError, UnicodeDecodeError):
        return {}
    docs: dict[str, str] = {}
    if node is None:
        return docs
    for before, stmt in itertools.pairwise(node.body):
        if (
            isinstance(before, ast.AnnAssign)
            and isinstance(before.target, ast.Name)
            and isinstance(stmt, ast.Expr)
            and isinstance(stmt.value, ast.Constant)
            and isinstance(stmt.value.value, str)
        ):
            docs[before.target.id] = inspect.cleandoc(stmt.value.value)
    return docs


def _describe_fields(cls: type) -> None:
    annotations = inspect.get_annotations(cls)  # every name attribute_docstrings finds is in it
    for name, doc in attribute_docstrings(cls).items():
        if name.startswith("_") or "ClassVar" in str(annotations[name]):
            continue  # not a field
        value = cls.__dict__.get(name, ...)
        if isinstance(value, FieldInfo):
            if value.description is None:
                # pydantic copies a FieldInfo default by the attributes it records as set
                value.description = doc
                value._attributes_set["description"] = doc
        else:
            setattr(cls, name, Field(value, description=doc))
