"""Parsers for TikTok exports: export file in, normalised rows for a workbook table out.

Pure data: nothing here writes a workbook.

* :func:`parse_ads` — Ads Manager report (CSV/xlsx) → ``Campaigns``;
* :func:`parse_orders` — Seller Center order export (CSV/xlsx) → ``Orders``;
  :func:`read_order_columns` — the KPI columns of a (possibly huge) order
  export as numpy arrays;
* :func:`parse_studio` — TikTok Studio analytics (zip/folder of CSVs) →
  ``Videos`` and ``Brand`` (a :class:`StudioImport`).

Each returns :class:`ImportResult` s (rows keyed by canonical names from
:mod:`xl_kpis.imports.aliases`); a file that is not what it claims raises
:class:`ExportFormatError` (a ``ValueError``) with a one-line message.
:mod:`xl_kpis.imports.synth` writes synthetic order exports for benchmarks.
"""

from .ads import parse_ads
from .clean import ExportFormatError, ImportResult
from .orders import OrderColumns, parse_orders, read_order_columns
from .studio import StudioImport, parse_studio

__all__ = ["parse_ads", "parse_orders", "read_order_columns", "parse_studio",
           "ImportResult", "ExportFormatError", "StudioImport", "OrderColumns"]
