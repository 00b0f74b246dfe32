"""The configuration reference (docs/config.md), generated from the pydantic schema.

Every key's description is its docstring in farm.config (read as pydantic's
``use_attribute_docstrings`` would: :func:`farm.config._base.attribute_docstrings`), ending with
its units in brackets (``[MeV]``, ``[fraction]``, ``[readout units: PE or keVee]``);
a key that holds no number has none. ``python3 -m farm.config.reference --write docs/config.md``
rewrites the file; tests/test_config_reference.py checks that the committed file is this
output and that every key has a description and every number its units.
"""

from __future__ import annotations

import re
import sys
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from farm.config._base import Section

__all__ = ["Key", "keys", "knob_units", "main", "markdown", "split_units"]

_UNITS = re.compile(r"\s*\[(?P<units>[^\[\]]+)\]\.?\s*$")


@dataclass(frozen=True)
class Key:
    table: str
    name: str
    type: str
    default: str
    units: str
    description: str
    numeric: bool


def split_units(text: str | None) -> tuple[str, str]:
    """(description without its trailing ``[units]``, the units or ``""``)."""
    text = " ".join((text or "").split())
    match = _UNITS.search(text)
    if match is None:
        return text, ""
    description = text[: match.start()].rstrip()
    return description + ("" if description.endswith((".", ")")) else "."), match["units"]


def _args(annotation: Any) -> tuple[Any, ...]:
    return typing.get_args(annotation)


def _origin(annotation: Any) -> Any:
    return typing.get_origin(annotation)


def _strip(annotation: Any) -> Any:
    """The annotation without ``Annotated`` metadata."""
    while _origin(annotation) is typing.Annotated:
        annotation = _args(annotation)[0]
    return annotation


def _type_text(annotation: Any) -> str:
    a = _strip(annotation)
    origin = _origin(a)
    if origin is Literal:
        return " | ".join(f'"{v}"' if isinstance(v, str) else str(v) for v in _args(a))
    if origin in (typing.Union, types.UnionType):
        parts = [_type_text(x) for x in _args(a) if x is not type(None)]
        text = " | ".join(parts)
        return f"{text} (optional)" if type(None) in _args(a) else text
    if origin in (list, tuple):
        inner = {_type_text(x) for x in _args(a) if x is not Ellipsis}
        kind = "array" if origin is list else f"array of {len(_args(a))}"
        return f"{kind} of {', '.join(sorted(inner))}" if inner else kind
    if origin is dict:
        return f"table of {_type_text(_args(a)[1])}"
    if isinstance(a, type) and issubclass(a, BaseModel):
        return "table"
    name = getattr(a, "__name__", str(a))
    return {"str": "string", "bool": "boolean", "int": "integer", "float": "number"}.get(name, name)


def _numeric(annotation: Any) -> bool:
    a = _strip(annotation)
    if a is bool:
        return False
    if a in (int, float):
        return True
    if _origin(a) is Literal:
        return any(isinstance(v, int | float) and not isinstance(v, bool) for v in _args(a))
    return any(_numeric(x) for x in _args(a) if x is not Ellipsis and x is not type(None))


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None or value is PydanticUndefined:
        return "none"
    if isinstance(value, BaseModel):
        return "(table)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"' if value else '""'
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {v}" for k, v in value.items()) + "}" if value else "{}"
    return f"{value:,}".replace(",", "_") if isinstance(value, int) else str(value)


def _section(annotation: Any) -> tuple[type[Section], bool] | None:
    """(the Section class a key holds, whether it is an array of tables), or None for a leaf."""
    a = _strip(annotation)
    if isinstance(a, type) and issubclass(a, Section):
        return a, False
    if _origin(a) is list:
        inner = _section(_args(a)[0])
        return (inner[0], True) if inner else None
    for x in _args(a) if _origin(a) in (typing.Union, types.UnionType) else ():
        found = _section(x)
        if found:
            return found
    return None


def _tables(cls: type[Section], path: str = "") -> Iterator[tuple[str, type[Section]]]:
    """Every table under ``cls``: (TOML path, its class), ``[[name]]`` for arrays of tables."""
    for name, field in cls.model_fields.items():
        found = _section(field.annotation)
        if found is None:
            continue
        sub, array = found
        where = f"{path}.{name}" if path else name
        yield (f"[[{where}]]" if array else f"[{where}]"), sub
        yield from _tables(sub, where)


def keys(cls: type[Section], table: str) -> list[Key]:
    """The leaf keys of one table."""
    out = []
    for name, field in cls.model_fields.items():
        if _section(field.annotation) is not None:
            continue
        description, units = split_units(field.description)
        numeric = _numeric(field.annotation)
        out.append(
            Key(
                table=table,
                name=name,
                type=_type_text(field.annotation),
                default=_default(field),
                units=units or ("" if numeric else "—"),
                description=description,
                numeric=numeric,
            )
        )
    return out


def knob_units(text: str) -> str:
    """The units of a knob's ``sigma`` from its description in farm.config.analysis.KNOBS."""
    if "in MeV" in text:
        return "MeV"
    if "readout units" in text:
        return "readout units (PE or keVee)"
    if text.startswith("absolute"):
        return "1 (an absolute shift)"
    return "fraction (0.1 = 10 %)"


def _by_table() -> dict[tuple[str, type[Section]], list[str]]:
    from farm.config import _BY_GENERATOR

    found: dict[tuple[str, type[Section]], list[str]] = {}
    for generator, cls in _BY_GENERATOR.items():
        for table, sub in _tables(cls):
            found.setdefault((table, sub), []).append(generator)
    return found


_ROLE = re.compile(r":(?:func|class|mod|data|attr|meth):`~?([^`]+)`")


def _cell(text: str) -> str:
    """Docstring markup as Markdown in a table cell: ``x`` and :func:`x` as `x`, | escaped."""
    text = _ROLE.sub(r"`\1`", text).replace("``", "`")
    return text.replace("|", "\\|").replace("\n", " ")


def markdown() -> str:
    """docs/config.md."""
    from farm.config import _BY_GENERATOR
    from farm.config.analysis import KNOBS

    generators = list(_BY_GENERATOR)
    lines = [
        "# Configuration reference",
        "",
        "<!-- generated by `python3 -m farm.config.reference --write docs/config.md` from the "
        "docstrings of farm/config; edit those, not this file -->",
        "",
        "Every key of a run configuration (`examples/*.toml`; `farm config check FILE` validates "
        "one), table by table, with its type, default, units and meaning. `[sample] generator` "
        "decides which `[source]`, `[detector]`, `[physics]` and `[backgrounds]` apply; the "
        "generators a table applies to are named under it. Units: `fraction` is a dimensionless "
        "share (0.1 = 10 %), `factor` a dimensionless multiplier (1 = nominal), `—` a key that "
        "holds no number or a number without units (a seed, an index); `readout units` are the "
        'detector\'s readout, photoelectrons (`readout = "pe"`) or keVee (`readout = '
        '"kevee"`). Unknown keys are errors; so is a string where a number belongs.',
        "",
    ]
    tables = _by_table()
    paths = [table for table, _ in tables]
    for (table, cls), where in tables.items():
        several = paths.count(table) > 1  # [source] of a π-DAR, a reactor or a beam
        lines.append(f"## `{table}`" + (f" ({', '.join(where)})" if several else ""))
        lines.append("")
        applies = "every generator" if where == generators else ", ".join(where)
        doc = " ".join((cls.__doc__ or "").split()) if cls.__doc__ != Section.__doc__ else ""
        lines.append(f"{doc} (Generators: {applies}.)".strip())
        lines.append("")
        rows = keys(cls, table)
        if rows:
            lines.append("| key | type | default | units | description |")
            lines.append("| --- | --- | --- | --- | --- |")
            lines += [
                f"| `{k.name}` | {_cell(k.type)} | {_cell(k.default)} | {_cell(k.units)} | "
                f"{_cell(k.description)} |"
                for k in rows
            ]
            lines.append("")
    lines += [
        "## Knobs: `parameter` and the units of `sigma`",
        "",
        'A `[[systematics]]` entry with `kind = "knob"` shifts one parameter by `sigma` per '
        "standard deviation; `sigma` is in the parameter's own units:",
        "",
        "| parameter | units of `sigma` | what it shifts |",
        "| --- | --- | --- |",
    ]
    lines += [f"| `{name}` | {knob_units(text)} | {_cell(text)} |" for name, text in KNOBS.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(description="print (or --write) docs/config.md")
    parser.add_argument("--write", type=Path, help="the file to write (docs/config.md)")
    args = parser.parse_args(argv)
    text = markdown()
    if args.write is None:
        sys.stdout.write(text)
    else:
        args.write.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
