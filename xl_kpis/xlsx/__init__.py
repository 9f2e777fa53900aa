"""Excel's file-format facts, in one place: what a workbook file says and how to read it.

Each fact is defined here once and every other module takes it from here
(the book commands :mod:`xl_kpis.book`, the export readers
:mod:`xl_kpis.imports`, the cell rules :mod:`xl_kpis.cells`):

* :mod:`~xl_kpis.xlsx.errors`: the error values a cell can hold
  (``#DIV/0!`` ...);
* :mod:`~xl_kpis.xlsx.dates`: dates and times as serial numbers (the 1900
  date system);
* :mod:`~xl_kpis.xlsx.refs`: A1 cell references (column letters, cells,
  ranges, sheet-qualified references), on XlsxWriter's
  :mod:`xlsxwriter.utility`;
* :mod:`~xl_kpis.xlsx.values`: a typed value as a cell's ``t`` attribute and
  ``<v>`` text, and back;
* :mod:`~xl_kpis.xlsx.books`: opening a book safely (within the bounds of
  :mod:`xl_kpis.package`) and reading its parts (sheets, tables, defined
  names).

The facts are split into modules by what they import: :mod:`xl_kpis.cells`
runs inside Pyodide and travels in xlwings Lite's ``main.py``
(:mod:`xl_kpis.book.litecode` embeds every module it imports), so
:mod:`~xl_kpis.xlsx.errors` and :mod:`~xl_kpis.xlsx.dates` import nothing
beyond the standard library, and this package's ``__init__`` imports nothing
at all.  What a book command does with these facts (rewriting cached values,
appending rows, copying sheets) lives in :mod:`xl_kpis.book`.
"""
