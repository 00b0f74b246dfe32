"""Input files refused in words that never repeat the file's content.

numpy's own errors quote what they could not parse (``could not convert string 'ten' to
float64``: a secret in a wrongly chosen file ends up in the logs) and answer a text file given
as ``.npy`` with advice to set ``allow_pickle``; PyYAML quotes the offending line. These helpers
look at a ``.npy`` header before numpy loads it (:func:`npy_problem`), read a text file of
numbers themselves, naming the line and entry that is not a number but never its text
(:func:`read_text_numbers`), and say where a YAML file is broken (:func:`yaml_problem`).
"""

from __future__ import annotations

import os
import re

import numpy as np

__all__ = ["NPY_MAGIC", "is_npy", "npy_problem", "read_text_numbers", "yaml_problem"]

NPY_MAGIC = b"\x93NUMPY"
_SEPARATORS = re.compile(r"[\s,;]+")


def is_npy(path: str | os.PathLike[str]) -> bool:
    """Whether the file starts with NumPy's ``.npy`` magic."""
    with open(path, "rb") as f:
        return f.read(len(NPY_MAGIC)) == NPY_MAGIC


def npy_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` is not a ``.npy`` array of numbers, judged from its header alone; None if
    it looks like one (``np.load(path, allow_pickle=False)`` then reads it)."""
    with open(path, "rb") as f:
        if f.read(len(NPY_MAGIC)) != NPY_MAGIC:
            return (
                "it is not a .npy file (it does not start with NumPy's \\x93NUMPY header: a "
                "text file, or another format); write the array with numpy.save"
            )
        f.seek(0)
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                _, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                _, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                return None  # a later format: numpy judges it
        except (ValueError, OSError, EOFError, SyntaxError):
            return "its .npy header is damaged; write the array again with numpy.save"
    if dtype.hasobject:
        return (
            "it holds Python objects (a pickle), which the farm never loads; save a numeric "
            "array (numpy.save of a float64 array)"
        )
    return None


def read_text_numbers(path: str | os.PathLike[str], where: str, hint: str) -> np.ndarray:
    """The numbers of a text file (separated by blanks, commas or semicolons; ``#`` comments).

    Raises
    ------
    ValueError
        ``WHERE: line L, entry E is not a number; HINT`` (the entry itself is not shown), or
        the file is not text.
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError:
        msg = f"{where}: is neither a .npy file nor UTF-8 text; {hint}"
        raise ValueError(msg) from None
    values: list[float] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        body = line.split("#", 1)[0].strip()
        if not body:
            continue
        for entry, token in enumerate(_SEPARATORS.split(body), start=1):
            try:
                values.append(float(token))
            except ValueError:
                msg = (
                    f"{where}: line {lineno}, entry {entry} is not a number (its text is not "
                    f"shown); {hint}"
                )
                raise ValueError(msg) from None
    return np.asarray(values, dtype=np.float64)


def yaml_problem(exc: Exception) -> str:
    """What PyYAML found wrong and where (line, column), without the snippet of the file it
    quotes."""
    problem = getattr(exc, "problem", None) or "it cannot be parsed"
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"
