"""The report: Tables 1-3 beside the paper's, provenance, statistics and figures for the book.

The notebooks use this package as ``from cti_repro import report`` and call the functions below;
each lives in one module: :mod:`~cti_repro.report.tables` (DataFrames and styled tables),
:mod:`~cti_repro.report.figures`, :mod:`~cti_repro.report.stats` (significance tests),
:mod:`~cti_repro.report.provenance`, :mod:`~cti_repro.report.paper` (published numbers),
:mod:`~cti_repro.report.styles` (boxes and table styles).
"""

from cti_repro.report import ablations, beyond, book_pages, claims, data_page, paper, row_page
from cti_repro.report.claims import claims_table
from cti_repro.report.commands import commands_html, report_commands, row_commands, shown_path
from cti_repro.report.figures import default_gallery_queries, gallery, published_vs_reproduced_figure, training_curves
from cti_repro.report.provenance import DEMO_WARNING, provenance, provenance_html
from cti_repro.report.stats import (
    TEST_RULE, bootstrap_ci, holm, matrix_test, score_matrix, seed_query_test, significance, significance_summary,
)
from cti_repro.report.styles import admonition, styled
from cti_repro.report.tables import (
    COMPARISON_COLUMNS, VERDICT_RULE, VERDICTS, ap_norm_table, comparison_frame, load_study, per_query_frame,
    ranking_differences, table1, table1_block, table1_wide, table2, table3, verdict, write_comparison,
)

__all__ = ["ablations", "beyond", "book_pages", "claims", "claims_table", "commands_html", "report_commands", "shown_path",
           "row_commands", "data_page", "paper", "row_page", "VERDICT_RULE", "VERDICTS", "COMPARISON_COLUMNS", "comparison_frame", "per_query_frame", "write_comparison", "DEMO_WARNING", "load_study", "verdict", "table1", "table1_wide",
           "table1_block", "styled", "admonition", "ranking_differences", "provenance", "provenance_html", "table2",
           "table3", "ap_norm_table", "significance", "significance_summary", "bootstrap_ci", "holm", "matrix_test", "seed_query_test", "TEST_RULE",
           "score_matrix", "training_curves", "gallery", "published_vs_reproduced_figure",
           "default_gallery_queries"]
