"""The template workbook: its schema, its formulas' evaluation, the builder and the demo shop.

Use :func:`build_workbook` to write the template (``xl-kpis build``),
:func:`evaluate_book` to compute every formula's value from input columns
(what a refresher patches into a workbook), and :mod:`xl_kpis.book.schema`
for everything about the workbook's layout (tables, headers, canonical keys,
computed columns, KPI rows).
"""

from .build import Evaluation, build_workbook, evaluate_book, write_workbook
from .schema import NATIVE_FUNCTIONS, SETTINGS, TABLE, TABLES, plan, rows_to_columns

__all__ = ["build_workbook", "write_workbook", "evaluate_book", "Evaluation", "TABLES",
           "TABLE", "SETTINGS", "NATIVE_FUNCTIONS", "plan", "rows_to_columns"]
