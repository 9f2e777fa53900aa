"""The public API, declared here on purpose (as httpx does): a name added to or dropped from
the package is a deliberate change that shows up in this file's diff."""

import inspect
import re

import xl_kpis
from xl_kpis import functions, udfs

KPIS = [
    # engagement
    "total_views", "engagement_rate", "completion_rate", "profile_visit_rate", "ctr",
    # sales and ads
    "conversion_rate", "aov", "roas", "cac", "cpm", "cpc", "cpa", "roi", "breakeven_roas",
    # lifetime value
    "clv", "discounted_clv", "ltv_cac", "cac_payback",
    # orders, loyalty and feedback
    "order_count", "order_revenue", "buyer_count", "repeat_purchase_rate", "average_rating",
    "positive_rating_share", "review_rate",
    # products and content
    "top_products", "content_resonance",
    # brand
    "follower_growth_rate", "share_of_voice", "support_query_rate",
    # predictive lifetime value and retention
    "predicted_clv", "customer_clv", "clv_parameters", "p_alive_buckets", "cohort_retention",
]


def test_package_exports_exactly_the_declared_kpis_in_group_order():
    assert xl_kpis.__all__ == KPIS
    assert all(callable(getattr(xl_kpis, n)) for n in KPIS)


def test_excel_functions_are_the_kpis_upper_cased_in_the_same_order():
    assert functions.__all__ == [n.upper() for n in KPIS]
    assert udfs.__all__ == functions.__all__            # each registered with xlwings


def test_every_argument_help_text_is_taken_from_the_kpi_docstring():
    # the help Excel's wizard shows is the KPI's own numpydoc text, not a second copy
    def words(text):
        return " ".join(re.sub(r"[`*]", "", text).split())

    for name, docs in functions.ARG_DOCS.items():
        source = words(inspect.getdoc(functions.KPI_OF[name]))
        for arg, doc in docs.items():
            if arg in functions.LAYOUT_OPTIONS.get(name, ()):
                assert doc in inspect.getsource(functions), (name, arg)
                continue
            core_text = words(doc).removesuffix(" (optional).").removesuffix(".")
            assert core_text and core_text in source, (name, arg, doc)


def test_a_parameter_missing_from_the_docstring_cannot_register():
    @xl_kpis.metrics._kpi.kpi(a=xl_kpis.metrics._kpi.COUNT)
    def undocumented(a):
        """No parameters section."""
        return a

    try:
        functions._udf(undocumented)(lambda a: a)
    except KeyError as e:
        assert "a" in str(e)
    else:
        raise AssertionError("a UDF with an undocumented argument registered")
    finally:
        functions.KPI_OF.pop("<lambda>", None)
        functions.ARG_DOCS.pop("<lambda>", None)
