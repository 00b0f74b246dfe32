"""The flow docs/architecture.md draws matches the imports (issue 12, item 1).

Nothing in the analysis reaches into the generators, and only the modules that resolve or
orchestrate a run take the whole configuration.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TAKE_THE_CONFIGURATION = {
    "farm.resolve",
    "farm.binding",
    "farm.limits",
    "farm.runner",
    "farm.measurement",
    "farm.closure",
    "farm.samples.generate",
    "farm.analysis.pipeline",
    "farm.analysis.run_inputs",
    "farm.analysis.nominal_flux",
    "farm.cli.config",
}
"""Modules that import FarmConfig: the boundary and the orchestration (docs/architecture.md)."""


def _imports() -> dict[str, list[tuple[str, str]]]:
    """Per farm module, (imported module, imported name) of every ``from … import``, lazy too."""
    out = {}
    for path in sorted((ROOT / "farm").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found = []
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found += [(node.module, alias.name) for alias in node.names]
            elif isinstance(node, ast.Import):
                found += [(alias.name, "") for alias in node.names]
        out[module] = found
    return out


def test_the_analysis_imports_nothing_from_the_generators() -> None:
    offending = [
        (module, source)
        for module, found in _imports().items()
        if module.startswith("farm.analysis")
        for source, _ in found
        if source.startswith("farm.samples")
    ]
    assert offending == []


def test_no_module_imports_a_private_name_of_the_generators() -> None:
    offending = [
        (module, source, name)
        for module, found in _imports().items()
        if not module.startswith("farm.samples")
        for source, name in found
        if source.startswith("farm.samples") and name.startswith("_")
    ]
    assert offending == []


def test_only_the_boundary_and_the_orchestration_take_the_whole_configuration() -> None:
    takers = {
        module
        for module, found in _imports().items()
        for _, name in found
        if name == "FarmConfig" and module != "farm.config"
    }
    assert takers <= TAKE_THE_CONFIGURATION, sorted(takers - TAKE_THE_CONFIGURATION)
    for layer in (
        "farm.flux",
        "farm.ingest",
        "farm.store",
        "farm.weights",
        "farm.reweight",
        "farm.systematics",
        "farm.physics",
    ):
        assert not any(m.startswith(layer) for m in takers), layer


def test_the_architecture_page_lists_the_modules_that_take_the_configuration() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    for module in TAKE_THE_CONFIGURATION:
        assert f"`{module}`" in text, module
