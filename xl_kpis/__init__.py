"""xl-kpis: TikTok shop sales KPIs as Excel functions, a Python API and a workbook CLI.

The public API is the pure KPI functions (numpy only), loaded from
:mod:`xl_kpis.metrics` when one is first asked for: importing the package
alone loads nothing (the command line sets up its process first, see
:mod:`xl_kpis.cli`).  The Excel functions live in :mod:`xl_kpis.functions`
(registered with xlwings by :mod:`xl_kpis.udfs`).
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    """A KPI function (or ``__all__``), taken from :mod:`xl_kpis.metrics` (PEP 562)."""
    metrics = _metrics()
    if name != "__all__" and name not in metrics.__all__:
        raise AttributeError(f"module 'xl_kpis' has no attribute {name!r}")
    globals().update({n: getattr(metrics, n) for n in metrics.__all__}, __all__=metrics.__all__)
    return globals()[name]


def __dir__() -> list[str]:
    return sorted({*globals(), *_metrics().__all__})


def _metrics():
    import importlib

    return importlib.import_module(f"{__name__}.metrics")
