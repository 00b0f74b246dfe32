"""``farm report``: plots and one HTML page of a published result, for analysts who want to look.

Layout: :mod:`~farm.report.quantities` computes what is shown (pure numpy on the dataset),
``plot_*`` modules draw matplotlib figures from the dataset (pure: they return figures),
:mod:`~farm.report.page` assembles the HTML, :mod:`~farm.report.write` is the only file I/O.
"""

from __future__ import annotations

from farm.report.page import FIGURES, format_chi2, render_page
from farm.report.write import PAGE, figure_builders, write_report

__all__ = ["FIGURES", "PAGE", "figure_builders", "format_chi2", "render_page", "write_report"]
