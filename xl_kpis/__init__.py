"""xl-kpis: TikTok shop sales KPIs as Excel functions, a Python API and a workbook CLI.

The public API is the pure KPI functions (numpy only); importing this package
loads nothing else.  The Excel functions live in :mod:`xl_kpis.functions`
(registered with xlwings by :mod:`xl_kpis.udfs`).
"""

from .metrics import *  # noqa: F403
from .metrics import __all__

__version__ = "0.1.0"
