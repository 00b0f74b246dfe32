"""examples/theorist_release.ipynb runs from top to bottom (nbclient, a real Jupyter kernel) and
says what it promises: χ² with and without the measured–predicted correlation and the
nominal-flux comparison for two models, from the shipped record tests/data/theorist_record.

The shipped record is also what tests/data/make_theorist_record.py writes today.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "theorist_release.ipynb"
RECORD = ROOT / "tests" / "data" / "theorist_record"


def test_the_theorist_notebook_runs_and_reports_both_chi_squares() -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()
    text = "\n".join(
        str(output.get("text", ""))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    assert "real, joint" in text and "real, uncorrelated" in text and "nominal flux" in text
    assert "A: M_A = 1.0 GeV" in text and "B: M_A = 1.35 GeV" in text
    errors = [
        o
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "error"
    ]
    assert errors == []


def test_the_shipped_record_is_what_its_script_writes(tmp_path: Path) -> None:
    script = ROOT / "tests" / "data" / "make_theorist_record.py"
    code = (
        "import sys, runpy; from pathlib import Path; "
        f"module = runpy.run_path({str(script)!r}); module['make'](Path({str(tmp_path / 'r')!r}))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
    for shipped in sorted(RECORD.iterdir()):
        assert (tmp_path / "r" / shipped.name).read_text() == shipped.read_text(), shipped.name
