"""The README's table of the result dataset, generated from the registry of
:mod:`farm.analysis.metadata` (tests/test_metadata.py checks that the README holds it).

    python3 -m farm.analysis.dataset_table              # print the table
    python3 -m farm.analysis.dataset_table --write README.md
"""

from __future__ import annotations

import sys

from farm.analysis.metadata import _fill
from farm.analysis.variables import VARIABLES

__all__ = ["README_BEGIN", "README_END", "dimensions_of", "markdown_table", "with_table"]


_README_UNITS = {
    "{share}": "cm² per target",
    "{share2}": "cm⁴",
    "{sigma}": "cm² (/unit of x) per target",
    "{sigma2}": "(σ's units)²",
    "{sigma_factor}": "1 (1/unit of x)",
    "{truth}": "truth variable's",
    "{reco}": "observable's",
    "{fluence}": "ν / cm² over the exposure",
    "{knob_units}": "the knob's",
}


def markdown_table() -> str:
    """The README's table of the dataset: every registry entry, its dimensions and units."""
    dims = _dimensions()
    rows = ["| name | dimensions | units | meaning |", "| --- | --- | --- | --- |"]
    for key in _readme_order():
        meta = VARIABLES[key]
        name = key.replace("{c}", "‹c›").replace("{t}", "‹t›").replace("{knob}", "‹knob›")
        units = _README_UNITS.get(meta.units, meta.units)
        text = _fill(
            meta.description,
            {"c": "‹c›", "t": "‹t›", "knob": "‹knob›", "knob_text": "see the knob's kind"},
        )
        dim = ", ".join(dims.get(key, ())) or "scalar"
        rows.append(f"| `{name}` | {dim} | {units} | {text} |")
    return "\n".join(rows) + "\n"


def _readme_order() -> list[str]:
    """What a reader wants first: σ as quoted, then S_j and its tests, the diagnostics, the raw
    vectors and the coordinates (the registry lists them the other way round)."""
    keys = list(VARIABLES)
    starts = [
        keys.index(k) for k in ("data_counts", "xsec_{c}", "positive_definite_{c}", "sigma_{c}")
    ]
    blocks = [keys[a:b] for a, b in zip([0, *starts], [*starts, len(keys)], strict=True)]
    return [k for block in reversed(blocks) for k in block]


def _dimensions() -> dict[str, tuple[str, ...]]:
    """The dimensions of each registry entry (fixed by farm.analysis.dataset)."""
    d = {
        "U": "universe",
        "R": "reco_bin",
        "T": "truth_bin",
        "T2": "truth_bin_2",
        "F": "flux_bin",
        "G": "group",
        "S": "systematic",
        "M": "model",
        "J": "joint_bin",
        "J2": "joint_bin_2",
    }
    shapes = {
        "universe": "U",
        "universe_systematic": "U",
        "universe_group": "U",
        "reco_bin": "R",
        "reco_lo": "R",
        "reco_hi": "R",
        "truth_bin": "T",
        "truth_bin_2": "T2",
        "truth_lo": "T",
        "truth_hi": "T",
        "flux_bin": "F",
        "flux_bin_flavor": "F",
        "flux_bin_lo_mev": "F",
        "flux_bin_hi_mev": "F",
        "group": "G",
        "systematic": "S",
        "systematic_kind": "S",
        "systematic_group": "S",
        "model": "M",
        "joint_bin": "J",
        "joint_bin_2": "J2",
        "data_counts": "R",
        "signal_reco": "U R",
        "background_reco": "U R",
        "truth_counts": "U T",
        "response": "U R T",
        "efficiency": "U T",
        "smearing_nominal": "U R T",
        "flux": "U F",
        "flux_ratio": "U F",
        "integrated_flux": "U",
        "weight_clamped": "U",
        "reco_edges": "reco_edge",
        "truth_edges": "truth_edge",
        "bootstrap_replica": "U",
        "throw_index": "U",
        "flux_rule_enu": "flux_rule_node",
        "flux_rule_fluence": "flux_rule_node",
        "flux_rule_flavor": "flux_rule_node",
        "knob_{knob}": "U",
        "xsec_{c}": "U T",
        "pred_{c}": "U T",
        "model_pred_{c}": "M U T",
        "additional_smearing_{c}": "T T2",
        "additional_smearing_universes_{c}": "U T T2",
        "cov_{c}": "T T2",
        "cov_stat_{c}": "T T2",
        "cov_group_{c}": "G T T2",
        "cov_systematic_{c}": "S T T2",
        "cov_total_{c}": "T T2",
        "corr_{c}": "T T2",
        "joint_cov_{c}": "M J J2",
        "chi2_{c}_joint": "M",
        "chi2_{c}_uncorrelated": "M",
        "pvalue_{c}_{t}": "M",
        "chi2_{c}_{t}_mc_error": "M",
        "chi2_{c}_{t}_mc_bias": "M",
        "chi2_dof": "",
        "positive_definite_{c}": "",
        "condition_number_{c}": "",
        "cov_mc_error_{c}": "T T2",
        "mc_rel_error_{c}": "S",
        "cov_rank_{c}": "S",
        "rank_limited_{c}": "S",
        "n_universes": "S",
        "universes_needed": "S",
        "universes_converged": "S",
        "sigma_{c}": "U T",
        "sigma_factor_{c}": "U T",
        "model_sigma_{c}": "M U T",
        "cov_sigma_{c}": "T T2",
        "cov_stat_sigma_{c}": "T T2",
        "cov_total_sigma_{c}": "T T2",
        "cov_group_sigma_{c}": "G T T2",
    }
    return {k: tuple(d.get(s, s) for s in v.split()) for k, v in shapes.items()}


def dimensions_of(key: str) -> tuple[str, ...]:
    """The dimensions the README states for a registry entry (checked against real datasets)."""
    return _dimensions()[key]


README_BEGIN = (
    "<!-- dataset table: generated by `python3 -m farm.analysis.dataset_table --write README.md` -->"
)
README_END = "<!-- end dataset table -->"


def with_table(text: str) -> str:
    """``text`` (the README) with the table between its markers replaced by :func:`markdown_table`."""
    start, end = text.index(README_BEGIN) + len(README_BEGIN), text.index(README_END)
    return text[:start] + "\n" + markdown_table() + text[end:]


def main(argv: list[str] | None = None) -> int:
    """Print the table, or (``--write README.md``) put it between the README's markers."""
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="a Markdown file holding the table's markers")
    args = parser.parse_args(argv)
    if args.write is None:
        sys.stdout.write(markdown_table())
        return 0
    text = args.write.read_text(encoding="utf-8")
    args.write.write_text(with_table(text), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
