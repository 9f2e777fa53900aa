"""Pure KPI functions (numpy only), grouped as the metrics seed groups them.

Each group is one module with its own ``__all__``; this package re-exports them all, in the
order of :data:`GROUPS`, so a new KPI is listed by adding it to its module only.  The
predictive models (:mod:`xl_kpis.metrics.predictive`) also use scipy, imported inside the
functions that need it: importing this package loads numpy only.
"""

from . import brand, content, engagement, lifetime, loyalty, predictive, sales

#: The KPI groups, in the order the README's function reference and ``__all__`` list them.
GROUPS = {
    engagement: "Engagement", sales: "Sales and ads", lifetime: "Lifetime value",
    loyalty: "Orders, loyalty and feedback", content: "Products and content", brand: "Brand",
    predictive: "Predictive lifetime value and retention",
}

__all__ = [name for group in GROUPS for name in group.__all__]
globals().update({name: getattr(group, name) for group in GROUPS for name in group.__all__})
