"""The project stands alone: its code, tests and docs cite papers and its own docs/, never a
design file that users do not have, and every doc the README links to exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOREIGN = "design" + ".md"  # spelled apart so this file does not cite it either
SCANNED = ("farm", "workers", "tests", "docs", "examples", "deploy", "docker", "benchmarks")


def _texts() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "BENCHMARKS.md"]
    for top in SCANNED:
        files += [
            p
            for p in (ROOT / top).rglob("*")
            if p.is_file() and p.suffix in {".py", ".md", ".toml", ".yaml", ".sh", ".ipynb", ""}
        ]
    return [p for p in files if p.is_file() and "__pycache__" not in p.parts]


def test_nothing_cites_a_design_file_users_do_not_have() -> None:
    offenders = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in _texts()
        for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
        if FOREIGN in line
    ]
    assert offenders == [], "cite docs/physics.md, docs/internals.md or a paper instead"


def test_every_doc_the_readme_links_exists() -> None:
    readme = (ROOT / "README.md").read_text()
    links = set(re.findall(r"\((docs/[\w./-]+\.md)\)", readme))
    assert {"docs/physics.md", "docs/detector-knobs.md"} <= links
    missing = sorted(link for link in links if not (ROOT / link).is_file())
    assert missing == []
