"""Every tolerance in the test suite must be able to fail.

``pytest.approx(x, rel=r)`` also accepts anything within its default absolute tolerance of 1e-12,
so for a cross section of 1e-39 cm² it accepts every value of that size (and 0):
``2e-39 == pytest.approx(1.44e-39, rel=0.01)`` is True. ``numpy.allclose`` and ``numpy.isclose``
have a default ``atol=1e-8``, as vacuous for cm² (or a covariance in cm⁴) as approx's. So every
``pytest.approx`` in tests/ must say ``abs=`` and every ``numpy.allclose`` / ``numpy.isclose`` must
say ``atol=`` (``abs=0`` / ``atol=0`` unless the quantity is O(1) and a non-zero floor is meant);
``numpy.testing.assert_allclose`` has ``atol=0`` by default and is not flagged.

This file scans tests/*.py with :mod:`ast` and reports each offender as ``file:line``.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent

#: call -> the keyword that must be given explicitly
REQUIRED_KEYWORD = {"approx": "abs", "allclose": "atol", "isclose": "atol"}
_OWNERS = {"approx": {"pytest"}, "allclose": {"np", "numpy"}, "isclose": {"np", "numpy"}}


def _imported_names(tree: ast.AST) -> dict[str, str]:
    """Local names bound by ``from pytest import approx`` / ``from numpy import isclose as c``."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("pytest", "numpy"):
            for alias in node.names:
                if alias.name in REQUIRED_KEYWORD:
                    names[alias.asname or alias.name] = alias.name
    return names


def _called(node: ast.Call, imported: dict[str, str]) -> str | None:
    """'approx', 'allclose' or 'isclose' when ``node`` calls one of the checked functions."""
    func = node.func
    if isinstance(func, ast.Name):
        return imported.get(func.id)
    if (
        isinstance(func, ast.Attribute)
        and func.attr in REQUIRED_KEYWORD
        and isinstance(func.value, ast.Name)
        and func.value.id in _OWNERS[func.attr]
    ):
        return func.attr
    return None


def vacuous_tolerances(source: str, filename: str = "<snippet>") -> list[str]:
    """``file:line: message`` for each approx/allclose/isclose without its explicit keyword."""
    tree = ast.parse(source, filename=filename)
    imported = _imported_names(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _called(node, imported)
        if name is None:
            continue
        keyword = REQUIRED_KEYWORD[name]
        given = {
            k.arg
            for k in node.keywords
            if not (isinstance(k.value, ast.Constant) and k.value.value is None)
        }  # abs=None is the default again
        if keyword not in given:
            found.append(
                f"{filename}:{node.lineno}: {name}(...) without {keyword}= (its default "
                f"absolute tolerance swallows small physical quantities)"
            )
    return sorted(found, key=lambda s: (s.split(":")[0], int(s.split(":")[1])))


def test_no_test_relies_on_a_default_absolute_tolerance() -> None:
    offenders = []
    for path in sorted(TESTS.glob("*.py")):
        offenders += vacuous_tolerances(path.read_text(encoding="utf-8"), path.name)
    assert not offenders, "\n".join(offenders)


def test_the_scanner_flags_a_vacuous_approx() -> None:
    snippet = (
        "import numpy as np\n"
        "import numpy\n"
        "import pytest\n"
        "from pytest import approx as near\n"
        "from numpy import isclose\n"
        "def test_xsec():\n"
        "    assert 2e-39 == pytest.approx(1.44e-39, rel=0.01)\n"  # line 7: True, vacuous
        "    assert 2e-39 == pytest.approx(1.44e-39, rel=0.01, abs=0)\n"
        "    assert 2e-39 == near(1.44e-39)\n"  # line 9
        "    assert np.allclose([2e-39], [1.44e-39])\n"  # line 10
        "    assert np.allclose([2e-39], [1.44e-39], atol=0)\n"
        "    assert numpy.isclose(2e-39, 1.44e-39, rtol=0.01)\n"  # line 12
        "    assert isclose(2e-39, 1.44e-39)\n"  # line 13
        "    np.testing.assert_allclose([2e-39], [1.44e-39], rtol=0.01)\n"
        "    assert 2e-39 == pytest.approx(1.44e-39, rel=0.01, abs=None)\n"  # line 15
    )
    # the premise: with approx's default abs (1e-12) the comparison above really passes
    import pytest

    assert 2e-39 == pytest.approx(1.44e-39, rel=0.01, abs=1e-12)
    assert 2e-39 != pytest.approx(1.44e-39, rel=0.01, abs=0)
    flagged = vacuous_tolerances(snippet, "snippet.py")
    assert [int(line.split(":")[1]) for line in flagged] == [7, 9, 10, 12, 13, 15]
    assert flagged[0].startswith("snippet.py:7: approx(...) without abs=")
    assert flagged[2].startswith("snippet.py:10: allclose(...) without atol=")
