"""The template workbook: its schema, its formulas' evaluation, the builder and the demo shop.

Use :func:`build_workbook` to write the template (``xl-kpis build``),
:func:`evaluate_book` to compute every formula's value from input columns
(what a refresher patches into a workbook), and :mod:`xl_kpis.book.schema`
for everything about the workbook's layout (tables, headers, canonical keys,
computed columns, KPI rows).

The names below are loaded from their modules when first asked for (PEP 562):
a command that only evaluates (``report``) never imports the writer.
"""

import importlib

#: public name -> the submodule that defines it
_FROM = {"build_workbook": "build", "write_workbook": "build",
         "evaluate_book": "evaluate", "Evaluation": "evaluate",
         "TABLES": "schema", "TABLE": "schema", "SETTINGS": "schema",
         "NATIVE_FUNCTIONS": "schema", "plan": "schema", "rows_to_columns": "schema"}

__all__ = list(_FROM)


def __getattr__(name: str):
    """A public name of the package, imported from its module on first access."""
    if name not in _FROM:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_FROM[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
